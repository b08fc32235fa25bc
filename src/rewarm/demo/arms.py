"""The demo's sizes and its five arms, written as ordinary run configs.

Stage 1 trains on `python-docs` (English prose), stage 2 on `python-code` (the
standard library's source); every arm uses the `llama-small` preset and one BPE
tokenizer trained locally on both corpora. The arms (SCIENCE.md section 1):

1. `retrain`: from scratch on docs + code together (mixed in the ratio of the two
   stage budgets), the total token budget of both stages, one cosine schedule. The
   baseline every other arm is compared with.
2. `naive`: stage 1 (cosine) then code at the LR stage 1 ended at (final_ratio x
   peak), no re-warm, no replay.
3. `rewarm`: re-warm linearly from that LR to the stage-1 peak, then cosine
   re-decay (Gupta et al. 2023, "Continual Pre-Training of LLMs: How to (re)warm
   your model?"; Ibrahim et al. 2024), no replay.
4. `rewarm+replay`: as 3, with 5% of every batch replaced by docs windows that
   stage 1 trained on (Ibrahim et al. 2024, "Simple and Scalable Strategies to
   Continually Pre-train LLMs").
5. `infinite+replay`: the infinite schedule over both stages (warmup, cosine
   cooldown to a constant ratio c, constant through the stage boundary, an
   exponential anneal over the last part of stage 2; Ibrahim et al. 2024; Singh
   et al. 2025, "Beyond Cosine Decay"), with the same 5% replay.

Arms 2-4 share stage 1 exactly (same config, seed and data order), so it is
trained once and the others branch from its stage-end checkpoint (see
`rewarm.demo.runner`). The infinite arm's stage 1 is a different model by
definition (it ends in the constant phase, not decayed), so it trains its own
stage 1; its compute is counted in full.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

ARMS: tuple[str, ...] = ("retrain", "naive", "rewarm", "rewarm+replay", "infinite+replay")
BRANCHING: tuple[str, ...] = ("naive", "rewarm", "rewarm+replay")
"""Arms that continue the one shared (cosine) stage-1 model."""

DESCRIPTIONS: dict[str, str] = {
    "retrain": "from scratch on docs + code, both budgets, one cosine (baseline)",
    "naive": "continue on code at the LR stage 1 ended at; no re-warm, no replay",
    "rewarm": "re-warm to the stage-1 peak, cosine re-decay; no replay",
    "rewarm+replay": "re-warm + re-decay, 5% replay of docs seen in stage 1",
    "infinite+replay": "infinite schedule over both stages (own stage 1), 5% replay",
}
REPLAY_FRACTION = 0.05
FINAL_RATIO = 0.1
"""LR floor of every decay (f): cosine stage 1, re-decay, infinite anneal."""
CONSTANT_RATIO = 0.5
"""Infinite schedule: constant phase at c x peak (Singh et al. sweep: 0.25-0.75)."""
COOLDOWN_END = 0.3
"""Infinite schedule: the cooldown 1 -> c ends at this fraction of the whole run."""
ANNEAL_START = 0.8
"""Infinite schedule: the anneal c -> f starts at this fraction of the whole run."""


@dataclass(frozen=True, kw_only=True)
class DemoSize:
    """Token budgets and model/data settings; `DEFAULT` and `QUICK` below."""

    preset: str
    """Model preset (`rewarm.model.presets`)."""
    stage1_tokens: int
    stage2_tokens: int
    seq_len: int
    batch_tokens: int
    lr: float
    """Peak LR of stage 1, of the re-warm and of the infinite schedule."""
    warmup_tokens: int
    """Linear warmup from 0 at the start of stage 1 (and of retrain)."""
    rewarm_tokens: int
    """Re-warm length at the start of stage 2 (rewarm arms)."""
    eval_every: int
    eval_tokens: int
    """Held-out tokens per domain and evaluation (a fixed sample)."""
    vocab_size: int
    sample_bytes: int
    """Text the BPE tokenizer is trained on (split over the two corpora)."""
    docs_max_bytes: int
    code_max_bytes: int
    heldout_min_tokens: int

    @property
    def total_tokens(self) -> int:
        return self.stage1_tokens + self.stage2_tokens


DEFAULT = DemoSize(
    preset="llama-small",
    stage1_tokens=98_304,
    stage2_tokens=81_920,
    seq_len=128,
    batch_tokens=512,
    lr=3e-3,
    warmup_tokens=8192,
    rewarm_tokens=8192,
    eval_every=8192,
    eval_tokens=2048,
    vocab_size=4096,
    sample_bytes=2_000_000,
    docs_max_bytes=0,
    code_max_bytes=2_000_000,
    heldout_min_tokens=8192,
)
QUICK = DemoSize(
    preset="llama-tiny",
    stage1_tokens=6144,
    stage2_tokens=4096,
    seq_len=64,
    batch_tokens=512,
    lr=3e-3,
    warmup_tokens=1024,
    rewarm_tokens=512,
    eval_every=1024,
    eval_tokens=512,
    vocab_size=1024,
    sample_bytes=300_000,
    docs_max_bytes=400_000,
    code_max_bytes=300_000,
    heldout_min_tokens=2048,
)


def _base(name: str, out_dir: str, seed: int, size: DemoSize) -> dict[str, Any]:
    """Everything but the stages; identical in every arm so they share shards."""
    return {
        "run": {"name": name, "out_dir": out_dir, "seed": seed},
        "model": {"init": "scratch", "preset": size.preset},
        "tokenizer": {
            "kind": "bpe",
            "vocab_size": size.vocab_size,
            "sample_bytes": size.sample_bytes,
        },
        "data": {"heldout_min_tokens": size.heldout_min_tokens},
        "domains": {
            "docs": {"source": "python-docs", "max_bytes": size.docs_max_bytes},
            "code": {"source": "python-code", "max_bytes": size.code_max_bytes},
        },
        "train": {
            "seq_len": size.seq_len,
            "batch_tokens": size.batch_tokens,
            "lr": size.lr,
            "device": "cpu",
        },
        "eval": {"every_tokens": size.eval_every, "tokens_per_domain": size.eval_tokens},
    }


def _cosine_stage1(size: DemoSize) -> dict[str, Any]:
    return {
        "name": "docs",
        "tokens": size.stage1_tokens,
        "mix": {"docs": 1.0},
        "schedule": {"kind": "cosine", "warmup": size.warmup_tokens, "final_ratio": FINAL_RATIO},
    }


def _replay() -> dict[str, Any]:
    # source "seen" (the default): only docs windows stage 1 actually trained on.
    return {"fraction": REPLAY_FRACTION, "policy": "uniform", "domains": ["docs"]}


def stages(arm: str, size: DemoSize) -> list[dict[str, Any]]:
    """The `[[stages]]` of one arm."""
    s1, s2 = size.stage1_tokens, size.stage2_tokens
    code: dict[str, Any] = {"name": "code", "tokens": s2, "mix": {"code": 1.0}}
    if arm == "retrain":
        return [
            {
                "name": "docs+code",
                "tokens": s1 + s2,
                "mix": {"docs": s1 / (s1 + s2), "code": s2 / (s1 + s2)},
                "schedule": {
                    "kind": "cosine",
                    "warmup": size.warmup_tokens,
                    "final_ratio": FINAL_RATIO,
                },
            }
        ]
    if arm == "naive":
        # constant at the LR stage 1 ended at: stage peak = f x peak, multiplier 1
        code |= {"schedule": {"kind": "constant"}, "lr": FINAL_RATIO * size.lr}
        return [_cosine_stage1(size), code]
    if arm in ("rewarm", "rewarm+replay"):
        code["schedule"] = {
            "kind": "rewarm",
            "warmup": size.rewarm_tokens,
            "start": "previous",
            "shape": "cosine",
            "final_ratio": FINAL_RATIO,
        }
        if arm == "rewarm+replay":
            code["replay"] = _replay()
        return [_cosine_stage1(size), code]
    if arm == "infinite+replay":
        total = s1 + s2
        cooldown_end = round(COOLDOWN_END * total)
        anneal_start = round(ANNEAL_START * total) - s1
        if not size.warmup_tokens <= cooldown_end <= s1 or not 0 <= anneal_start <= s2:
            raise ValueError(f"infinite schedule phases do not fit the stages of {size}")
        docs = {
            "name": "docs",
            "tokens": s1,
            "mix": {"docs": 1.0},
            "schedule": {
                "kind": "infinite",
                "warmup": size.warmup_tokens,
                "cooldown_end": cooldown_end,
                "constant_ratio": CONSTANT_RATIO,
            },
        }
        code["schedule"] = {
            "kind": "infinite",
            "constant_ratio": CONSTANT_RATIO,
            "anneal_start": anneal_start,
            "final_ratio": FINAL_RATIO,
        }
        code["replay"] = _replay()
        return [docs, code]
    raise ValueError(f"unknown demo arm {arm!r}")


def run_name(arm: str) -> str:
    """Run directory name of an arm (the arm name itself: '+' is a safe file name)."""
    return arm


def arm_config(arm: str, out_dir: str, seed: int, size: DemoSize) -> dict[str, Any]:
    """The raw config dict of one arm (validate with `rewarm.config.config_from_dict`)."""
    return {**_base(run_name(arm), out_dir, seed, size), "stages": stages(arm, size)}
