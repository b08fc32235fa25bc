"""Realistic synthetic `metrics.jsonl` files: a two-stage continual run and a re-training run.

Three domains: `docs` (stage 1), `code` (stage 2, with 5% replay of docs) and
`math` (never trained). Losses follow smooth power-law curves with a stability
gap on docs right after the stage switch and a little seeded noise.
"""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

BATCH = 8192
EVAL_EVERY = 16384
STAGE_TOKENS = 393216  # 48 steps per stage
FLOPS_PER_TOKEN = 6 * 2_000_000 + 12 * 4 * 128 * 256
DOMAINS = ("docs", "code", "math")


def _lr(tokens: int, start: int, length: int, peak: float, warm: int, floor: float) -> float:
    t = tokens - start
    if t < warm:
        return peak * (floor + (1 - floor) * t / warm) if start else peak * t / warm
    p = min(1.0, (t - warm) / max(1, length - warm))
    return peak * (0.1 + 0.9 * (1 + math.cos(math.pi * p)) / 2)


def _losses(tokens: int, kind: str) -> dict[str, float]:
    x = tokens / STAGE_TOKENS  # stages are 1 unit long
    if kind == "retrain":
        docs = 2.0 + 3.0 / (1 + 6 * x) ** 0.6
        code = 1.9 + 3.2 / (1 + 6 * x) ** 0.6
        math_ = 4.2 + 1.1 / (1 + 2 * x) ** 0.4
        return {"docs": docs, "code": code, "math": math_}
    docs = 2.0 + 3.0 / (1 + 12 * min(x, 1.0)) ** 0.6
    code = 4.3 + 1.0 / (1 + 3 * min(x, 1.0)) ** 0.5
    math_ = 4.3 + 1.0 / (1 + 3 * min(x, 1.0)) ** 0.5
    if x > 1:
        y = x - 1
        # Stability gap: a fast rise (peak ~0.3 nats at y ~ 0.12) then a slow partial recovery.
        docs += 0.35 * (y / 0.12) * math.exp(1 - y / 0.12) - 0.05 * y
        docs += 0.08 * (1 - math.exp(-3 * y))  # some permanent forgetting
        code = 1.85 + (code - 1.85) / (1 + 10 * y) ** 0.7
        math_ -= 0.05 * y
    return {"docs": docs, "code": code, "math": math_}


def write_run(
    run_dir: Path,
    kind: str = "continual",
    *,
    seed: int = 0,
    drop_boundary_eval: bool = False,
) -> Path:
    """Write RUN/metrics.jsonl; `kind` is "continual" (two stages) or "retrain" (one)."""
    rng = random.Random(seed)
    run_dir.mkdir(parents=True, exist_ok=True)
    if kind == "retrain":
        stages = [("all", 2 * STAGE_TOKENS, {"docs": 0.5, "code": 0.5})]
    else:
        stages = [
            ("pretrain", STAGE_TOKENS, {"docs": 1.0}),
            ("continue", STAGE_TOKENS, {"code": 1.0}),
        ]
    config = {
        "run": {"name": run_dir.name, "out_dir": str(run_dir.parent), "seed": seed},
        "model": {"init": "scratch", "preset": "llama-tiny"},
        "domains": {d: {"source": d} for d in DOMAINS},
        "eval": {"every_tokens": EVAL_EVERY, "tokens_per_domain": 16384},
        "stages": [
            {"name": n, "tokens": t, "mix": mix, "schedule": {"kind": "cosine"}}
            for n, t, mix in stages
        ],
    }
    out: list[dict] = [
        {
            "kind": "run",
            "event": "start",
            "versions": {"rewarm": "0.1.0"},
            "device": "cpu",
            "params": 2_600_000,
            "non_embedding_params": 2_000_000,
            "flops_per_token": FLOPS_PER_TOKEN,
            "world_size": 1,
            "seq_len": 256,
            "config": config,
        }
    ]

    def evals(step: int, tokens: int, stage: int) -> None:
        for d, v in _losses(tokens, kind).items():
            loss = v + rng.gauss(0, 0.004)
            out.append(
                {
                    "kind": "eval",
                    "step": step,
                    "tokens": tokens,
                    "stage": stage,
                    "domain": d,
                    "loss": loss,
                    "bits_per_byte": loss / math.log(2) / 3.5,
                }
            )

    tokens = step = 0
    for k, (name, length, mix) in enumerate(stages):
        start = tokens
        out.append(
            {
                "kind": "stage",
                "stage": name,
                "index": k,
                "event": "start",
                "step": step,
                "tokens": tokens,
            }
        )
        if k == 0 or not drop_boundary_eval:
            evals(step, tokens, k)
        while tokens < start + length:
            step += 1
            tokens += BATCH
            lr = _lr(tokens, start, length, 1e-3, length // 10, 0.1)
            x = tokens / STAGE_TOKENS
            out.append(
                {
                    "kind": "train",
                    "step": step,
                    "tokens": tokens,
                    "stage": k,
                    "lr": lr,
                    "loss": sum(_losses(tokens, kind)[d] * w for d, w in mix.items())
                    + rng.gauss(0, 0.03),
                    "grad_norm": 1.0 / (1 + x),
                    "tokens_per_s": 50000.0,
                    "mfu": 0.4,
                }
            )
            last = tokens == start + length
            if tokens % EVAL_EVERY == 0 and not (last and drop_boundary_eval):
                evals(step, tokens, k)
        by_domain = dict.fromkeys(mix, 0.0)
        for d, w in mix.items():
            by_domain[d] = length * w * (0.95 if k else 1.0)
        if k:
            by_domain["docs"] = length * 0.05
        out.append(
            {
                "kind": "stage",
                "stage": name,
                "index": k,
                "event": "end",
                "step": step,
                "tokens": tokens,
                "tokens_by_domain": by_domain,
            }
        )
    out.append({"kind": "run", "event": "end"})
    path = run_dir / "metrics.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in out), encoding="utf-8")
    return path
