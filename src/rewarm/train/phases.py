"""Where the loop's wall time goes: seconds per phase (data, step, eval, checkpoint,
log), reported in the loop's own records (`train` per interval, `run` "end" in total).

Phases nest: a record written during an evaluation is `log` time, and the
evaluation is charged only the rest, so no second is counted twice and the time
no phase claims is `other`. The clock reads `time.perf_counter` on the host: on a
GPU an asynchronous kernel is charged to the phase that waits for it (the step's
one synchronisation, for the loss and gradient norm, keeps the step's own work in
`step`).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Literal

from rewarm.runlog import PhaseSeconds

Phase = Literal["data", "step", "eval", "checkpoint", "log"]
PHASES: tuple[Phase, ...] = ("data", "step", "eval", "checkpoint", "log")


class PhaseClock:
    """Accumulates wall seconds per phase from its creation on."""

    def __init__(self) -> None:
        now = time.perf_counter()
        self._started = now
        self._totals: dict[Phase, float] = dict.fromkeys(PHASES, 0.0)
        self._calls: dict[Phase, int] = dict.fromkeys(PHASES, 0)
        self._open: list[Phase] = []
        self._since = now  # when the innermost open phase was last resumed
        self._mark = now  # start of the current interval
        self._at_mark: dict[Phase, float] = dict(self._totals)

    def _charge(self, now: float) -> None:
        if self._open:
            self._totals[self._open[-1]] += now - self._since
        self._since = now

    @contextmanager
    def phase(self, name: Phase) -> Iterator[None]:
        """Charge the time inside the block to `name` (minus any phase nested in it)."""
        self._charge(time.perf_counter())
        self._open.append(name)
        self._calls[name] += 1
        try:
            yield
        finally:
            self._charge(time.perf_counter())
            self._open.pop()

    def calls(self, name: Phase) -> int:
        """How many times `name` was entered."""
        return self._calls[name]

    def _seconds(self, since: float, base: dict[Phase, float], now: float) -> PhaseSeconds:
        spent = {p: self._totals[p] - base[p] for p in PHASES}
        other = max(0.0, now - since - sum(spent.values()))
        # Microseconds: finer digits are timer noise and would only lengthen the log.
        return PhaseSeconds(**{p: round(v, 6) for p, v in spent.items()}, other=round(other, 6))

    def interval(self) -> PhaseSeconds:
        """Seconds by phase since the previous `interval()` (or since creation)."""
        now = time.perf_counter()
        self._charge(now)
        out = self._seconds(self._mark, self._at_mark, now)
        self._mark, self._at_mark = now, dict(self._totals)
        return out

    def total(self) -> PhaseSeconds:
        """Seconds by phase since creation."""
        now = time.perf_counter()
        self._charge(now)
        return self._seconds(self._started, dict.fromkeys(PHASES, 0.0), now)
