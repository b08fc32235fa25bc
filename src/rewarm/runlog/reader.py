"""Read `RUN/metrics.jsonl`: every record of a run (`read_run`), the records of
some kinds from any log file (`read_records`), and a log's first lines (`head`).

Bad input raises `UserError` naming `FILE:LINE` (see `rewarm.runlog.records` for
what is strict and what is lenient).
"""

from __future__ import annotations

import json
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rewarm.errors import UserError
from rewarm.runlog.records import (
    Branched,
    EvalRecord,
    Record,
    RunRecord,
    RunStart,
    StageRecord,
    TaskRecord,
    TrainRecord,
    decode,
)

METRICS_FILE = "metrics.jsonl"


@dataclass(kw_only=True)
class RunLog:
    """Every record of one run, in file order, by kind."""

    name: str
    path: Path
    """The run directory."""
    evals: list[EvalRecord] = field(default_factory=list)
    """Evaluations of the model being trained (`weights` None)."""
    side_evals: list[EvalRecord] = field(default_factory=list)
    """Evaluations of other weights (averages; docs/mitigations.md), by `weights` label."""
    trains: list[TrainRecord] = field(default_factory=list)
    stages: list[StageRecord] = field(default_factory=list)
    tasks: list[TaskRecord] = field(default_factory=list)
    events: list[RunRecord] = field(default_factory=list)
    """The `run` records: start, resume, schedule_changed, nonfinite, end, ..."""

    @property
    def start(self) -> RunStart | None:
        """The first `run` "start" record (the one with the resolved config)."""
        return next(
            (e for e in self.events if isinstance(e, RunStart) and e.event == "start"), None
        )

    @property
    def branch(self) -> Branched | None:
        """The `run` "branch" record of a run started with `run.branch_from` (the last
        one, for a branch of a branch), else None."""
        found = [e for e in self.events if isinstance(e, Branched)]
        return found[-1] if found else None

    @property
    def config(self) -> dict[str, Any]:
        """The resolved config the run trains under, as plain data ({} if none): that of
        the "start" record; for a branch, that of the first "start" or "resume" record
        after its "branch" record (the records before it are its parent's)."""
        chosen = self.start
        branched = False
        for e in self.events:
            if isinstance(e, Branched):
                branched, chosen = True, None
            elif branched and chosen is None and isinstance(e, RunStart):
                chosen = e
        return chosen.config if chosen is not None else {}

    def add(self, record: Record) -> None:
        if isinstance(record, EvalRecord):
            (self.evals if record.weights is None else self.side_evals).append(record)
        elif isinstance(record, TrainRecord):
            self.trains.append(record)
        elif isinstance(record, StageRecord):
            self.stages.append(record)
        elif isinstance(record, TaskRecord):
            self.tasks.append(record)
        else:
            self.events.append(record)


def read_records(
    path: str | Path, kinds: Collection[str] | None = None, *, lines: int | None = None
) -> list[Record]:
    """The records of the log file `path`, in file order.

    With `kinds`, only records of those kinds are decoded and returned; the others
    are skipped unchecked (a reader of `train` records does not fail on an `eval`
    record it would ignore anyway). With `lines`, only the first `lines` complete
    lines are read (what `head` returns: the log as a checkpoint saw it). Blank lines
    are skipped.
    """
    path = Path(path)
    wanted = None if kinds is None else frozenset(kinds)
    try:
        if lines is None:
            text = path.read_text(encoding="utf-8")
        else:
            text = head(path, lines).decode("utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise UserError(f"{path}: cannot read: {err}") from None
    lines_read = text.splitlines()
    out: list[Record] = []
    for number, line in enumerate(lines_read, start=1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as err:
            raise UserError(f"{where}: not valid JSON ({err.msg})") from None
        record = decode(obj, where, wanted)
        if record is not None:
            out.append(record)
    return out


def read_run(run_dir: str | Path) -> RunLog:
    """Read `RUN/metrics.jsonl`; `UserError` naming the file and line on bad input."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise UserError(f"{run_dir}: run directory not found")
    path = run_dir / METRICS_FILE
    if not path.is_file():
        raise UserError(f"{path}: no metrics.jsonl in this run directory")
    log = RunLog(name=run_dir.resolve().name, path=run_dir)
    for record in read_records(path):
        log.add(record)
    return log


def head(path: str | Path, lines: int) -> bytes:
    """The first `lines` complete lines of the log file `path`, as written (a last
    line without its newline, i.e. cut short by a kill, is never included)."""
    path = Path(path)
    if lines <= 0 or not path.exists():
        return b""
    kept: list[bytes] = []
    with open(path, "rb") as f:
        for line in f:
            if len(kept) == lines or not line.endswith(b"\n"):
                break
            kept.append(line)
    return b"".join(kept)


def count_lines(path: str | Path) -> int:
    """Complete lines of the log file `path` (0 if it does not exist)."""
    path = Path(path)
    if not path.exists():
        return 0
    with open(path, "rb") as f:
        return sum(1 for line in f if line.endswith(b"\n"))
