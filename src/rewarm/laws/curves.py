"""Loss curves as the laws see them: observed (step, loss) points plus the LR of
every step from 0 to the last observed step.

Two sources: CSV files `step,lr,loss` (the LR column may be sampled, so a schedule
spec or a built-in name rebuilds it per step) and rewarm runs' `metrics.jsonl`
(`train` records). `lr[s]` is the LR used at step `s`; `warmup` is the step where
the initial warmup ends (the laws treat steps `<= warmup` as warmup, whose LR only
adds area).
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rewarm.errors import UserError
from rewarm.laws.known import known_lr
from rewarm.runlog import METRICS_FILE, TrainRecord, read_records


@dataclass
class Curve:
    """One observed loss curve and its full per-step learning rate."""

    name: str
    steps: np.ndarray
    """Observed steps, int64, strictly increasing, all > warmup."""
    loss: np.ndarray
    """Observed losses at `steps` (float64, > 0)."""
    lr: np.ndarray
    """LR of every step 0..last (float64, length >= steps[-1] + 1)."""
    warmup: int

    def __post_init__(self) -> None:
        if len(self.steps) == 0:
            raise UserError(f"{self.name}: no loss points after warmup (step {self.warmup})")
        if self.lr.shape[0] <= int(self.steps[-1]):
            raise UserError(f"{self.name}: the LR is known only up to step {self.lr.shape[0] - 1}")

    def truncated(self, before: int) -> Curve:
        keep = self.steps < before
        return Curve(self.name, self.steps[keep], self.loss[keep], self.lr, self.warmup)


PAPER_FIT = ("cosine_24000", "constant_24000", "wsdcon_9")
"""The shared curves the multi-power-law paper (Luo et al. 2025) fits on."""
PAPER_HELD_OUT = (
    "cosine_72000",
    "constant_72000",
    "wsd_20000_24000",
    "wsdld_20000_24000",
    "wsdcon_3",
    "wsdcon_18",
)
"""The shared curves that paper predicts, for its PredE / WorstE figures."""


def read_paper_curve(root: Path, size: str, name: str) -> Curve:
    """`root/size/name.csv` as the paper's protocol uses it: a curve whose name ends in
    `_24000` is cut to steps < 24000; the 72000-step curves are kept whole."""
    curve = read_csv(root / size / f"{name}.csv")
    return curve.truncated(24000) if name.endswith("_24000") else curve


def detect_warmup(lr: np.ndarray) -> int:
    """The step where the initial LR ramp ends (first step whose successor is not larger).

    Leading zero LRs belong to the ramp: a warmup from 0 logs LR 0 for its first
    update(s), which is not a flat schedule.
    """
    positive = np.nonzero(lr > 0)[0]
    if lr.shape[0] < 2 or not positive.size:
        return 0
    first = int(positive[0])
    not_up = np.nonzero(lr[first + 1 :] <= lr[first:-1])[0]
    return first + int(not_up[0]) if not_up.size else int(lr.shape[0] - 1)


def lr_from_spec(spec: dict[str, Any], total: int, peak: float, where: str) -> np.ndarray:
    """Per-step LR `peak * m(s)` for s = 0..total from a `rewarm.schedules` spec."""
    from rewarm import schedules

    schedules.validate_spec(spec, float(total), where)
    sched = schedules.build(spec, float(total))
    grid = np.arange(total + 1, dtype=np.float64)
    return peak * np.asarray(sched.values(grid), dtype=np.float64)


def schedule_lr(
    spec: dict[str, Any] | str, total: int, peak: float, where: str
) -> tuple[np.ndarray, int]:
    """`(lr per step 0..total, warmup step)` from a rewarm spec, or from the name of a
    shared loss curve (`cosine_72000`, `wsdcon_9`, ...; its own length and peak)."""
    if isinstance(spec, str):
        known = known_lr(spec)
        if known is None:
            raise UserError(f"{where}: {spec!r} is neither a schedule table nor a known curve name")
        return known
    lr = lr_from_spec(spec, total, peak, where)
    w = spec.get("warmup")
    if isinstance(w, int | float) and not isinstance(w, bool) and w > 0:
        return lr, int(round(w))
    return lr, detect_warmup(lr)


def parse_spec(text: str, where: str) -> dict[str, Any] | str:
    """A schedule given on the command line: an inline TOML table
    (`{kind = "cosine", warmup = 100}`), a JSON object, or a bare name such as
    `cosine_24000` (the shared curves' schedules)."""
    import tomllib

    text = text.strip()
    if not text.startswith("{"):
        if known_lr(text) is None:
            raise UserError(
                f"{where}: {text!r} is not a table {{kind = ...}} nor a known curve name"
            )
        return text
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        try:
            value = tomllib.loads(f"spec = {text}")["spec"]
        except tomllib.TOMLDecodeError as err:
            raise UserError(f"{where}: not an inline TOML table or JSON object: {err}") from None
    if not isinstance(value, dict):
        raise UserError(f"{where}: must be a table")
    return value


def read_csv(
    path: str | Path,
    schedule: dict[str, Any] | str | None = None,
    peak: float | None = None,
    total: int | None = None,
) -> Curve:
    """Read `step,lr,loss`. The per-step LR comes from `schedule` (a rewarm spec over
    `total` steps, scaled by `peak`, default the CSV's largest LR), else from the
    built-in table of the shared loss-curve files (by file name), else from linear
    interpolation of the CSV's LR column (exact only if it has every step)."""
    path = Path(path)
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            missing = {"step", "lr", "loss"} - set(reader.fieldnames or [])
            if missing:
                raise UserError(f"{path}: missing column(s) {', '.join(sorted(missing))}")
            rows = list(reader)
    except OSError as err:
        raise UserError(f"{path}: cannot read: {err.strerror}") from None
    steps, lrs, losses = [], [], []
    for i, row in enumerate(rows, start=2):
        try:
            s, lr, loss = int(float(row["step"])), float(row["lr"]), float(row["loss"])
        except (TypeError, ValueError):
            raise UserError(f"{path}:{i}: step, lr and loss must be numbers") from None
        if not (math.isfinite(loss) and loss > 0 and math.isfinite(lr) and lr >= 0 and s >= 0):
            raise UserError(f"{path}:{i}: needs step >= 0, lr >= 0 and a finite loss > 0")
        steps.append(s)
        lrs.append(lr)
        losses.append(loss)
    st = np.asarray(steps, dtype=np.int64)
    if st.size == 0:
        raise UserError(f"{path}: no rows")
    if np.any(np.diff(st) <= 0):
        raise UserError(f"{path}: steps must be strictly increasing")
    last = int(st[-1])
    if schedule is not None:
        total = int(total if total is not None else last + 1)
        if total < last:
            raise UserError(f"{path}: --total {total} ends before the last step {last}")
        lr_full, warmup = schedule_lr(schedule, total, float(peak or max(lrs)), str(path))
    else:
        known = known_lr(path.stem)
        if known is not None:
            lr_full, warmup = known
        else:
            lr_full = np.interp(np.arange(last + 1), st, np.asarray(lrs, dtype=np.float64))
            warmup = int(st[0]) if st[0] > 0 else detect_warmup(lr_full)
    keep = st > warmup
    return Curve(path.stem, st[keep], np.asarray(losses)[keep], lr_full, warmup)


def smooth(loss: np.ndarray, window: int) -> np.ndarray:
    """Trailing moving average over `window` points (shorter at the start)."""
    if window <= 1:
        return loss
    c = np.concatenate([[0.0], np.cumsum(loss)])
    idx = np.arange(1, loss.size + 1)
    lo = np.maximum(idx - window, 0)
    return (c[idx] - c[lo]) / (idx - lo)


def read_metrics(
    path: str | Path, stage: str | None = None, smooth_window: int = 1, warmup: int | None = None
) -> Curve:
    """A curve from a rewarm run's `metrics.jsonl` (`train` records: step, lr, loss).

    The LR history covers the whole run (the laws need every earlier step); with
    `stage`, only that stage's losses are fitted. Steps between logged records get
    linearly interpolated LRs (exact when every step is logged). `smooth_window`
    averages the loss over that many logged points after warmup (trailing window).
    """
    path = Path(path)
    if path.is_dir():
        path = path / METRICS_FILE
    recs: list[tuple[int, float, float, str]] = [
        (r.step, r.lr, r.loss, "" if r.stage is None else str(r.stage))
        for r in read_records(path, kinds=("train",))
        if isinstance(r, TrainRecord)
        and math.isfinite(r.loss)
        and r.loss > 0  # non-finite losses are logged, not fitted
    ]
    if not recs:
        raise UserError(f"{path}: no train records")
    recs.sort(key=lambda r: r[0])
    # a resumed run may log a step twice; the later record wins
    by_step = {r[0]: r for r in recs}
    recs = [by_step[s] for s in sorted(by_step)]
    st = np.array([r[0] for r in recs], dtype=np.int64)
    lrs = np.array([r[1] for r in recs])
    lr_full = np.interp(np.arange(int(st[-1]) + 1), st, lrs)
    w = detect_warmup(lr_full) if warmup is None else int(warmup)
    keep = st > w
    # smooth after the warmup only: its steep early losses would leak into the window
    losses = np.array([r[2] for r in recs])
    losses[keep] = smooth(losses[keep], smooth_window)
    if stage is not None:
        stages = np.array([r[3] for r in recs])
        if stage not in set(stages.tolist()):
            raise UserError(f"{path}: no train records of stage {stage!r}")
        keep &= stages == stage
    name = path.parent.name + (f"/{stage}" if stage else "")
    return Curve(name, st[keep], losses[keep], lr_full, w)
