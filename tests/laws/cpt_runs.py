"""Synthetic demo-like runs whose per-domain losses follow a known CPT law exactly
(plus optional noise): a shared cosine stage 1 ("docs"), then stage 2 ("code")
continued naively, with a re-warm, or with a re-warm and replay. Written through
`rewarm.runlog`, as the trainer writes them."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from rewarm.laws import cpt
from rewarm.laws.cpt_fit import domain_form
from rewarm.runlog import EvalRecord, RunLogWriter, RunStart, StageRecord, TrainRecord

PT, CPT_STEPS, WARM, PEAK = 120, 80, 10, 3e-3
TRUE = {
    "docs": dict(
        L0=3.0, A=0.8, alpha=0.35, C1=12.0, C2=8.0, B=0.6, E=30.0, beta=0.9, a1=0.0, a2=-4.0
    ),
    "code": dict(
        L0=2.5, A=1.6, alpha=0.3, C1=10.0, C2=9.0, B=-0.9, E=20.0, beta=1.1, a1=0.0, a2=1.5
    ),
}


def pt_lr(floor: float = 0.1) -> np.ndarray:
    """LR of updates 1..PT: linear warmup, cosine to `floor` x peak."""
    j = np.arange(1, PT + 1, dtype=np.float64)
    p = np.clip((j - WARM) / (PT - WARM), 0, 1)
    cos = floor + (1 - floor) * (1 + np.cos(np.pi * p)) / 2
    return np.where(j <= WARM, PEAK * j / WARM, PEAK * cos)


def cpt_lr(arm: str, peak: float = PEAK) -> np.ndarray:
    q = np.arange(CPT_STEPS, dtype=np.float64)
    if arm == "naive":
        return np.full(CPT_STEPS, 0.1 * PEAK)
    warm = 8
    start = 0.1 * PEAK
    p = np.clip((q - warm) / (CPT_STEPS - warm), 0, 1)
    decay = peak * (0.1 + 0.9 * (1 + np.cos(np.pi * p)) / 2)
    return np.where(q < warm, start + (peak - start) * q / warm, decay)


def write_arm(
    root: Path,
    arm: str,
    replay: float,
    noise: float = 0.0,
    seed: int = 0,
    pt_floor: float = 0.1,
    one_stage: bool = False,
    true: dict[str, dict[str, float]] | None = None,
    form: str = "exp",
) -> Path:
    """One arm's run; `pt_floor`: where its stage-1 cosine ends (x peak); `one_stage`:
    the pre-training alone, no CPT stage; `true`, `form`: the law's parameters (default
    `TRUE`) and replay factor."""
    run = root / arm
    run.mkdir(parents=True, exist_ok=True)
    eta = np.concatenate([[0.0], pt_lr(pt_floor), cpt_lr(arm)])
    if one_stage:
        eta = eta[: PT + 1]
    areas = cpt.cpt_areas(eta, PT, replay)
    rng = np.random.default_rng(seed)
    stages = [
        {"name": "docs", "mix": {"docs": 1.0}, "replay": {}},
        {"name": "code", "mix": {"code": 1.0}, "replay": {"fraction": replay} if replay else {}},
    ][: 1 if one_stage else 2]
    log = RunLogWriter(run / "metrics.jsonl")
    log.write(RunStart(event="start", step=0, tokens=0, config={"stages": stages}))
    log.write(StageRecord(stage="docs", index=0, event="start", step=0, tokens=0))
    for k in range(1, eta.size):
        stage = "docs" if k <= PT else "code"
        log.write(TrainRecord(step=k, tokens=k, stage=stage, lr=float(eta[k]), loss=5.0))
        if k == PT and not one_stage:
            log.write(StageRecord(stage="docs", index=0, event="end", step=k, tokens=k))
            log.write(StageRecord(stage="code", index=1, event="start", step=k, tokens=k))
        if k % 8 == 0:
            for d, p in (TRUE if true is None else true).items():
                f = domain_form(form, d, {"code"})  # stage 2 trains code
                y = float(cpt.predict(p, areas.take(np.array([k])), f)[0])
                y *= 1 + noise * rng.standard_normal()
                log.write(EvalRecord(step=k, tokens=k, stage=stage, domain=d, loss=y))
    last = eta.size - 1
    if one_stage:
        log.write(StageRecord(stage="docs", index=0, event="end", step=last, tokens=last))
    else:
        log.write(StageRecord(stage="code", index=1, event="end", step=last, tokens=last))
    log.close()
    return run
