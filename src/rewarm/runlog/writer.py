"""Write `RUN/metrics.jsonl`, and hand every record to the run's other sinks.

One record per line, flushed per line, so `tail -f` and a killed run both see
every finished record. Only rank 0 constructs a `RunLogWriter`; other ranks get
`NullLog`, which takes the same calls and writes nothing.

Exact resume: the writer counts complete lines; a checkpoint stores that count,
and `truncate(n)` on resume cuts the file back to it, so records written after
the checkpoint by the killed process disappear and are written again identically.

Sinks (`Sink`) receive each record after its line is written: the trackers of
`rewarm.trackers` (TensorBoard, Weights & Biases, MLflow) are such sinks.
The file stays the record of truth: a sink never changes what it holds.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from rewarm.runlog.reader import count_lines, head
from rewarm.runlog.records import Record, encode


class Sink(Protocol):
    """Something that consumes the run's records as they are written."""

    def write(self, record: Record) -> None: ...

    def close(self) -> None: ...


class RunLogWriter:
    """Appends records to the log file `path` and passes each to `sinks`."""

    def __init__(self, path: Path, sinks: Sequence[Sink] = ()) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self.lines = count_lines(path)
        """Complete lines in the file, the ones this writer wrote included."""
        self._f = open(path, "a", encoding="utf-8")  # noqa: SIM115 - lives as long as the run
        self._sinks = list(sinks)

    def truncate(self, lines: int) -> None:
        """Keep the first `lines` complete lines (a partial last line is dropped too)."""
        self._f.close()
        keep = head(self.path, lines)
        tmp = self.path.with_name(f".{self.path.name}.tmp-{os.getpid()}")
        tmp.write_bytes(keep)
        os.replace(tmp, self.path)
        self.lines = keep.count(b"\n")
        self._f = open(self.path, "a", encoding="utf-8")  # noqa: SIM115

    def write(self, record: Record) -> None:
        self._f.write(encode(record) + "\n")
        self._f.flush()
        self.lines += 1
        for sink in self._sinks:
            sink.write(record)

    def close(self) -> None:
        self._f.close()
        for sink in self._sinks:
            sink.close()


class NullLog:
    """What ranks other than 0 log to."""

    lines = 0

    def truncate(self, lines: int) -> None:
        self.lines = lines

    def write(self, record: Record) -> None:
        pass

    def close(self) -> None:
        pass
