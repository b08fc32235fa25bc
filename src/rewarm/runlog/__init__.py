"""The run log, `RUN/metrics.jsonl`: the one owner of that file's format.

`records` defines a frozen record class per kind (`TrainRecord`, `EvalRecord`,
`StageRecord`, `TaskRecord`, and per `run` event `RunStart`, `ScheduleChanged`, `Branched`,
`WorldSizeChanged`, `NonFinite`, `RunEnd`) and how each becomes one JSON line and back;
`writer` appends records
(the trainer's `RunLogWriter`, `NullLog` on other ranks, `Sink`s such as the
TensorBoard mirror); `reader` reads them (`read_run`, `read_records`, `head`).

The trainer writes through this package; reports, laws, the comparison, the demo
and the benchmarks read through it. It imports nothing but `rewarm.errors`: no
torch, nothing from training or analysis.
"""

from rewarm.runlog.reader import METRICS_FILE, RunLog, count_lines, head, read_records, read_run
from rewarm.runlog.records import (
    KINDS,
    Branched,
    EvalRecord,
    NonFinite,
    PhaseSeconds,
    Record,
    RunEnd,
    RunEvent,
    RunRecord,
    RunStart,
    ScheduleChanged,
    StageRecord,
    TaskRecord,
    TrainRecord,
    WorldSizeChanged,
    decode,
    encode,
)
from rewarm.runlog.writer import NullLog, RunLogWriter, Sink

__all__ = [
    "KINDS",
    "METRICS_FILE",
    "Branched",
    "EvalRecord",
    "NonFinite",
    "NullLog",
    "PhaseSeconds",
    "Record",
    "RunEnd",
    "RunEvent",
    "RunLog",
    "RunLogWriter",
    "RunRecord",
    "RunStart",
    "ScheduleChanged",
    "Sink",
    "StageRecord",
    "TaskRecord",
    "TrainRecord",
    "WorldSizeChanged",
    "count_lines",
    "decode",
    "encode",
    "head",
    "read_records",
    "read_run",
]
