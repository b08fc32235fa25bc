"""`train.tensorboard = true`: mirror the run log's scalars to TensorBoard.

A `rewarm.runlog.Sink`: the writer hands it every record after writing its line.
The x axis is training tokens (progress is counted in tokens, not steps). Train
records give `train/loss`, `train/lr`, `train/grad_norm`, `train/tokens_per_s`;
eval records `eval/DOMAIN/loss` and `eval/DOMAIN/bits_per_byte`; task records
`task/TASK/METRIC` (lm-evaluation-harness, docs/tasks.md). Non-finite and missing
values are left out. Other records are not mirrored. `log.sinks = ["tensorboard"]`
opens the same sink (`rewarm.trackers`).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Protocol

from rewarm.errors import UserError
from rewarm.runlog import EvalRecord, Record, TaskRecord, TrainRecord


class ScalarWriter(Protocol):
    """The part of `torch.utils.tensorboard.SummaryWriter` the mirror uses."""

    def add_scalar(self, tag: str, scalar_value: float, global_step: int) -> None: ...

    def close(self) -> None: ...


class TensorBoardSink:
    def __init__(self, writer: ScalarWriter) -> None:
        self._tb = writer

    @classmethod
    def open(cls, logdir: Path) -> TensorBoardSink:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise UserError(
                "train.tensorboard = true needs the tensorboard package (pip install tensorboard)"
            ) from None
        return cls(SummaryWriter(str(logdir)))

    def _scalar(self, tag: str, value: float | None, tokens: int) -> None:
        if value is not None and math.isfinite(value):
            self._tb.add_scalar(tag, value, tokens)

    def write(self, record: Record) -> None:
        if isinstance(record, TrainRecord):
            self._scalar("train/loss", record.loss, record.tokens)
            self._scalar("train/lr", record.lr, record.tokens)
            self._scalar("train/grad_norm", record.grad_norm, record.tokens)
            self._scalar("train/tokens_per_s", record.tokens_per_s, record.tokens)
        elif isinstance(record, EvalRecord):
            group = "eval" if record.weights is None else f"eval-{record.weights}"
            self._scalar(f"{group}/{record.domain}/loss", record.loss, record.tokens)
            self._scalar(
                f"{group}/{record.domain}/bits_per_byte", record.bits_per_byte, record.tokens
            )
        elif isinstance(record, TaskRecord):
            self._scalar(f"task/{record.task}/{record.metric}", record.value, record.tokens)

    def close(self) -> None:
        self._tb.close()
