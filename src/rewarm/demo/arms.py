"""The demo's sizes and its five arms, written as ordinary run configs.

Stage 1 trains on the old corpus, stage 2 on the new one: by default `python-docs`
(English prose) then `python-code` (the standard library's source), named `docs`
and `code`; `rewarm demo --old SRC --new SRC` puts the user's corpora in their place
(`rewarm.demo.settings`). Every arm uses the same model preset and one BPE
tokenizer trained locally on both corpora. The arms (SCIENCE.md section 1):

1. `retrain`: from scratch on old + new together (mixed in the ratio of the two
   stage budgets), the total token budget of both stages, one cosine schedule. The
   baseline every other arm is compared with.
2. `naive`: stage 1 (cosine) then the new corpus at the LR stage 1 ended at
   (final_ratio x peak), no re-warm, no replay.
3. `rewarm`: re-warm linearly from that LR to the stage-1 peak, then cosine
   re-decay (Gupta et al. 2023, "Continual Pre-Training of LLMs: How to (re)warm
   your model?"; Ibrahim et al. 2024), no replay.
4. `rewarm+replay`: as 3, with 5% of every batch replaced by old-corpus windows
   that stage 1 trained on (Ibrahim et al. 2024, "Simple and Scalable Strategies to
   Continually Pre-train LLMs").
5. `infinite+replay`: the infinite schedule over both stages (warmup, cosine
   cooldown to a constant ratio c, constant through the stage boundary, an
   exponential anneal over the last part of stage 2; Ibrahim et al. 2024; Singh
   et al. 2025, "Beyond Cosine Decay"), with the same 5% replay.

Arms 2-4 share stage 1 exactly (same config, seed and data order), so it is
trained once: the first of them hosts it, the others are branches of its stage-1-end
checkpoint (`run.branch_from`, see `rewarm.train.branch` and `rewarm.demo.runner`).
The infinite arm's stage 1 is a different model by definition (it ends in the
constant phase, not decayed), so it trains its own stage 1; its compute is counted
in full.

Sizes live in `DemoSize` (`DEFAULT`, `QUICK`); a settings TOML or `--set` changes
any field (`rewarm.demo.settings`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

ARMS: tuple[str, ...] = ("retrain", "naive", "rewarm", "rewarm+replay", "infinite+replay")
BRANCHING: tuple[str, ...] = ("naive", "rewarm", "rewarm+replay")
"""Arms that continue the one shared (cosine) stage-1 model."""

DESCRIPTIONS: dict[str, str] = {
    "retrain": "from scratch on {old} + {new}, both budgets, one cosine (baseline)",
    "naive": "continue on {new} at the LR stage 1 ended at; no re-warm, no replay",
    "rewarm": "re-warm to the stage-1 peak, cosine re-decay; no replay",
    "rewarm+replay": "re-warm + re-decay, 5% replay of {old} seen in stage 1",
    "infinite+replay": "infinite schedule over both stages (own stage 1), 5% replay",
}
"""One line per arm; `{old}` and `{new}` stand for the corpora's names."""
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
    old_max_bytes: int
    """Read at most this much text of the old corpus (0 = all)."""
    new_max_bytes: int
    """Read at most this much text of the new corpus (0 = all)."""
    heldout_min_tokens: int
    model_overrides: dict[str, Any] = field(default_factory=dict)
    """`model.overrides` of every arm: LlamaConfig keys changed from the preset (e.g.
    `{ num_hidden_layers = 2, tie_word_embeddings = true }`)."""

    @property
    def total_tokens(self) -> int:
        return self.stage1_tokens + self.stage2_tokens

    @property
    def stage1_steps(self) -> int:
        """Optimizer steps of stage 1 (`rewarm.config.derived.stage_steps`)."""
        return -(-self.stage1_tokens // self.batch_tokens)


DEFAULT = DemoSize(
    preset="llama-tiny",
    stage1_tokens=1_310_720,
    stage2_tokens=327_680,
    seq_len=128,
    batch_tokens=512,
    lr=3e-3,
    warmup_tokens=8192,
    rewarm_tokens=8192,
    eval_every=32_768,
    eval_tokens=4096,
    vocab_size=4096,
    sample_bytes=2_000_000,
    old_max_bytes=0,
    new_max_bytes=2_000_000,
    heldout_min_tokens=8192,
    model_overrides={
        "hidden_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "num_key_value_heads": 2,
        "intermediate_size": 192,
        "tie_word_embeddings": True,
    },
)
"""The default demo (docs/demo.md, "Why these sizes"): a 0.37M-parameter model (two
64-wide layers, tied embeddings) on 1.31M old-corpus tokens then 0.33M new ones. At
these budgets the loss per token is set by the tokens seen, not the model's size
(0.37M to 6.3M parameters end within about 0.02 bits per byte), so the smallest
model buys the most tokens per minute: enough for every arm to end far below the
unigram level in under 10 minutes on 2 CPU cores."""
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
    old_max_bytes=400_000,
    new_max_bytes=300_000,
    heldout_min_tokens=2048,
)


@dataclass(frozen=True, kw_only=True)
class Corpus:
    """One of the demo's two corpora: its domain name and what a domain accepts."""

    name: str
    """The domain's name in configs, tables and the report."""
    source: str | list[str]
    """Any `domains.NAME.source` (docs/data.md): globs, .jsonl, .parquet, a `datasets`
    directory or a built-in corpus name."""
    field: str = "text"
    """Text field of .jsonl / column of .parquet and `datasets` sources."""


OLD = Corpus(name="docs", source="python-docs")
NEW = Corpus(name="code", source="python-code")
"""The built-in shift: English prose, then Python source."""


@dataclass(frozen=True, kw_only=True)
class Layout:
    """Where one seed's arms live: run directories under `runs`, shards under `data`."""

    runs: str
    data: str


def _base(
    name: str, where: Layout, seed: int, size: DemoSize, old: Corpus, new: Corpus
) -> dict[str, Any]:
    """Everything but the stages; identical in every arm so they share shards."""
    return {
        "run": {"name": name, "out_dir": where.runs, "seed": seed},
        "model": {
            "init": "scratch",
            "preset": size.preset,
            "overrides": dict(size.model_overrides),
        },
        "tokenizer": {
            "kind": "bpe",
            "vocab_size": size.vocab_size,
            "sample_bytes": size.sample_bytes,
        },
        "data": {"dir": where.data, "heldout_min_tokens": size.heldout_min_tokens},
        "domains": {
            old.name: {"source": old.source, "field": old.field, "max_bytes": size.old_max_bytes},
            new.name: {"source": new.source, "field": new.field, "max_bytes": size.new_max_bytes},
        },
        "train": {
            "seq_len": size.seq_len,
            "batch_tokens": size.batch_tokens,
            "lr": size.lr,
            "device": "cpu",
        },
        "eval": {"every_tokens": size.eval_every, "tokens_per_domain": size.eval_tokens},
    }


def _cosine_stage1(size: DemoSize, old: Corpus) -> dict[str, Any]:
    return {
        "name": old.name,
        "tokens": size.stage1_tokens,
        "mix": {old.name: 1.0},
        "schedule": {"kind": "cosine", "warmup": size.warmup_tokens, "final_ratio": FINAL_RATIO},
    }


def _replay(old: Corpus) -> dict[str, Any]:
    # source "seen" (the default): only old windows stage 1 actually trained on.
    return {"fraction": REPLAY_FRACTION, "policy": "uniform", "domains": [old.name]}


def stages(arm: str, size: DemoSize, old: Corpus = OLD, new: Corpus = NEW) -> list[dict[str, Any]]:
    """The `[[stages]]` of one arm."""
    s1, s2 = size.stage1_tokens, size.stage2_tokens
    stage2: dict[str, Any] = {"name": new.name, "tokens": s2, "mix": {new.name: 1.0}}
    if arm == "retrain":
        return [
            {
                "name": f"{old.name}+{new.name}",
                "tokens": s1 + s2,
                "mix": {old.name: s1 / (s1 + s2), new.name: s2 / (s1 + s2)},
                "schedule": {
                    "kind": "cosine",
                    "warmup": size.warmup_tokens,
                    "final_ratio": FINAL_RATIO,
                },
            }
        ]
    if arm == "naive":
        # constant at the LR stage 1 ended at: stage peak = f x peak, multiplier 1
        stage2 |= {"schedule": {"kind": "constant"}, "lr": FINAL_RATIO * size.lr}
        return [_cosine_stage1(size, old), stage2]
    if arm in ("rewarm", "rewarm+replay"):
        stage2["schedule"] = {
            "kind": "rewarm",
            "warmup": size.rewarm_tokens,
            "start": "previous",
            "shape": "cosine",
            "final_ratio": FINAL_RATIO,
        }
        if arm == "rewarm+replay":
            stage2["replay"] = _replay(old)
        return [_cosine_stage1(size, old), stage2]
    if arm == "infinite+replay":
        total = s1 + s2
        cooldown_end = round(COOLDOWN_END * total)
        anneal_start = round(ANNEAL_START * total) - s1
        if not size.warmup_tokens <= cooldown_end <= s1 or not 0 <= anneal_start <= s2:
            raise ValueError(f"infinite schedule phases do not fit the stages of {size}")
        stage1 = {
            "name": old.name,
            "tokens": s1,
            "mix": {old.name: 1.0},
            "schedule": {
                "kind": "infinite",
                "warmup": size.warmup_tokens,
                "cooldown_end": cooldown_end,
                "constant_ratio": CONSTANT_RATIO,
            },
        }
        stage2["schedule"] = {
            "kind": "infinite",
            "constant_ratio": CONSTANT_RATIO,
            "anneal_start": anneal_start,
            "final_ratio": FINAL_RATIO,
        }
        stage2["replay"] = _replay(old)
        return [stage1, stage2]
    raise ValueError(f"unknown demo arm {arm!r}")


def run_name(arm: str) -> str:
    """Run directory name of an arm (the arm name itself: '+' is a safe file name)."""
    return arm


def stage1_checkpoint(where: Layout, host: str, size: DemoSize) -> str:
    """The host arm's stage-1-end checkpoint (stage-end checkpoints are always kept)."""
    from rewarm.checkpoint import step_dir_name  # torch: not needed to list the arms

    return f"{where.runs}/{run_name(host)}/checkpoints/{step_dir_name(size.stage1_steps)}"


def arm_config(
    arm: str,
    where: Layout,
    seed: int,
    size: DemoSize,
    *,
    old: Corpus = OLD,
    new: Corpus = NEW,
    branch_of: str | None = None,
) -> dict[str, Any]:
    """The raw config dict of one arm (validate with `rewarm.runconfig.from_dict`);
    `branch_of` names the host arm whose stage-1 checkpoint this arm branches from."""
    raw = {
        **_base(run_name(arm), where, seed, size, old, new),
        "stages": stages(arm, size, old, new),
    }
    if branch_of is not None:
        raw["run"]["branch_from"] = stage1_checkpoint(where, branch_of, size)
    return raw
