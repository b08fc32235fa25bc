"""Rewarm runs as the CPT law reads them: the LR of every update, the transfer point,
the replay ratio, and each domain's held-out losses (`eval` records).

Read through `rewarm.runlog` only. The LR history comes from the `train` records
(`lr` of the update each record closes; steps between records are interpolated,
exact when every step is logged, the default). The transfer point is the start of
the CPT stage (by default the second stage; `stage=NAME` picks another); points
after that stage's end are left out (the law has one transfer). The replay ratio is
the CPT stage's `replay.fraction` in the config the run last started or resumed with
(a branched demo arm resumes the host's log under its own config).

`pretrain_only=True` reads a run's pre-training only: its updates and evaluations up
to the transfer point (the whole run when it has one stage). That is what exists
before a CPT stage is paid for, so a fit can use a pre-training that none of the
fitted arms shares while the run's own CPT stage stays held out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rewarm.errors import UserError
from rewarm.laws import cpt
from rewarm.runlog import RunLog, RunStart, read_run


@dataclass
class CPTRun:
    """One run for the CPT law."""

    name: str
    eta: np.ndarray
    """LR of update j for j = 0..last (`eta[0] = 0`: no update yet)."""
    transfer: int
    """Updates done when the CPT stage starts; updates j > transfer are CPT."""
    replay: float
    """Share of the CPT stage's batches replayed from earlier stages (r_pt)."""
    points: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    """domain -> (steps, losses) of its evaluations (steps after the warmup)."""
    warmup: int = 0
    """Update where the first LR ramp ends (the momentum starts there)."""
    pretrain_only: bool = False
    """Only the pre-training part was read (`read_cpt_run(pretrain_only=True)`)."""
    trained: tuple[str, ...] = ()
    """Domains in the CPT stage's mix (the others are replayed or not trained)."""

    def areas(self, steps: np.ndarray, lam: float = cpt.LAM) -> cpt.Areas:
        full = cpt.cpt_areas(self.eta, self.transfer, self.replay, lam, self.warmup)
        return full.take(np.asarray(steps, dtype=np.int64))

    @property
    def pt_key(self) -> bytes:
        """Identifies the pre-training part: the LRs of updates 1..transfer."""
        return np.round(self.eta[: self.transfer + 1], 15).tobytes()


def _last_config(log: RunLog) -> dict[str, Any]:
    starts = [e for e in log.events if isinstance(e, RunStart) and e.config]
    return starts[-1].config if starts else {}


def _lr_per_update(log: RunLog, path: Path) -> np.ndarray:
    recs = sorted({r.step: r for r in log.trains}.items())  # a resumed step: later wins
    if not recs:
        raise UserError(f"{path}: no train records (the CPT law needs the LR of every update)")
    steps = np.array([s for s, _ in recs], dtype=np.int64)
    lrs = np.array([r.lr for _, r in recs], dtype=np.float64)
    eta = np.interp(np.arange(int(steps[-1]) + 1), steps, lrs)
    eta[0] = 0.0
    return eta


def _cpt_stage(
    log: RunLog, stage: str | None, path: Path, pretrain_only: bool = False
) -> tuple[int, int, int | None]:
    """(stage index, step it starts at, step it ends at or None) from the stage records;
    with `pretrain_only`, a run of one stage ends its pre-training at its last update."""
    starts = {r.index: r for r in log.stages if r.event == "start"}
    ends = {r.index: r for r in log.stages if r.event == "end"}
    if stage is None:
        index = 1
    else:
        found = [i for i, r in starts.items() if r.stage == stage]
        if not found:
            raise UserError(f"{path}: no stage named {stage!r} started in this run")
        index = found[0]
    if pretrain_only and stage is None and index not in starts:
        last = max([r.step for r in log.trains], default=0)
        return 1, last, last
    if index not in starts or index == 0:
        raise UserError(
            f"{path}: the CPT law needs a run with a stage after the first (the transfer "
            "point); this one has none"
        )
    end = ends[index].step if index in ends else None
    return index, starts[index].step, end


def read_cpt_run(path: str | Path, stage: str | None = None, pretrain_only: bool = False) -> CPTRun:
    """One run directory as a `CPTRun`; UserError naming the run when it cannot be used.
    `pretrain_only`: keep the updates and evaluations up to the transfer point only."""
    path = Path(path)
    log = read_run(path)
    eta = _lr_per_update(log, path)
    index, transfer, end = _cpt_stage(log, stage, path, pretrain_only)
    if pretrain_only:
        end = transfer
    cfg = _last_config(log)
    try:  # pre-training points do not depend on the CPT stage's replay
        replay = (
            0.0
            if pretrain_only
            else float((cfg["stages"][index].get("replay") or {}).get("fraction", 0.0))
        )
        trained = () if pretrain_only else tuple(sorted(cfg["stages"][index].get("mix") or {}))
    except (KeyError, IndexError, TypeError, AttributeError, ValueError):
        raise UserError(
            f"{path}: the run's config has no stages[{index}] to read replay from"
        ) from None
    warmup = cpt.warmup_end(eta[: transfer + 1])
    by_domain: dict[str, dict[int, float]] = {}
    last = eta.size - 1 if end is None else min(end, eta.size - 1)
    for r in log.evals:  # a step evaluated twice (stage end and start): the later wins
        if warmup < r.step <= last and math.isfinite(r.loss) and r.loss > 0:
            by_domain.setdefault(r.domain, {})[r.step] = r.loss
    if not by_domain:
        what = f"up to its transfer point (step {transfer})" if pretrain_only else ""
        raise UserError(f"{path}: no eval records after the warmup (step {warmup}) {what}".strip())
    points = {
        d: (np.array(sorted(v), dtype=np.int64), np.array([v[s] for s in sorted(v)]))
        for d, v in sorted(by_domain.items())
    }
    if end is not None:
        eta = eta[: end + 1]
    return CPTRun(
        name=log.name,
        eta=eta,
        transfer=transfer,
        replay=replay,
        points=points,
        warmup=warmup,
        pretrain_only=pretrain_only,
        trained=trained,
    )
