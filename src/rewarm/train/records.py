"""`metrics.jsonl` writer, progress bar and optional TensorBoard mirror.

Record kinds and fields are the contract in docs/architecture.md: `train`,
`eval`, `stage`, `run`; `kind` comes first, one JSON object per line, flushed
per line so `tail -f` and a killed run both see every finished record. Only
rank 0 constructs a writer; other ranks get `NullLog`.

Exact resume: the writer counts lines; a checkpoint stores that count, and
`truncate(n)` on resume cuts the file back to it, so records written after the
checkpoint by the killed process disappear and are written again identically.
"""

from __future__ import annotations

import json
import math
import os
import sys
from pathlib import Path
from typing import Any

from rewarm.errors import UserError


def _clean(v: Any) -> Any:
    # JSON has no NaN/Inf: write them as strings so every line stays strict JSON.
    if isinstance(v, float) and not math.isfinite(v):
        return str(v)
    return v


class MetricsLog:
    def __init__(self, path: Path, tensorboard_dir: Path | None = None) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self.lines = self._count()
        self._f = open(path, "a", encoding="utf-8")  # noqa: SIM115 - lives as long as the run
        self._tb = _tensorboard(tensorboard_dir) if tensorboard_dir else None

    def _count(self) -> int:
        if not self.path.exists():
            return 0
        with open(self.path, "rb") as f:
            return sum(1 for line in f if line.endswith(b"\n"))

    def truncate(self, lines: int) -> None:
        """Keep the first `lines` complete lines (a partial last line is dropped too)."""
        self._f.close()
        keep = b""
        if self.path.exists():
            with open(self.path, "rb") as f:
                keep = b"".join(line for _, line in zip(range(lines), f, strict=False))
        tmp = self.path.with_name(f".{self.path.name}.tmp-{os.getpid()}")
        tmp.write_bytes(keep)
        os.replace(tmp, self.path)
        self.lines = keep.count(b"\n")
        self._f = open(self.path, "a", encoding="utf-8")  # noqa: SIM115

    def write(self, kind: str, **fields: Any) -> None:
        rec = {"kind": kind, **{k: _clean(v) for k, v in fields.items()}}
        self._f.write(json.dumps(rec) + "\n")
        self._f.flush()
        self.lines += 1
        if self._tb is not None:
            _mirror(self._tb, rec)

    def close(self) -> None:
        self._f.close()
        if self._tb is not None:
            self._tb.close()


class NullLog:
    """What ranks other than 0 log to."""

    lines = 0

    def truncate(self, lines: int) -> None:
        self.lines = lines

    def write(self, kind: str, **fields: Any) -> None:
        pass

    def close(self) -> None:
        pass


def _tensorboard(logdir: Path) -> Any:
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise UserError(
            "train.tensorboard = true needs the tensorboard package (pip install tensorboard)"
        ) from None
    return SummaryWriter(str(logdir))


def _mirror(tb: Any, rec: dict[str, Any]) -> None:
    tokens = rec.get("tokens")
    if tokens is None:
        return
    if rec["kind"] == "train":
        for key in ("loss", "lr", "grad_norm", "tokens_per_s"):
            if isinstance(rec.get(key), float):
                tb.add_scalar(f"train/{key}", rec[key], tokens)
    elif rec["kind"] == "eval":
        tb.add_scalar(f"eval/{rec['domain']}/loss", rec["loss"], tokens)
        tb.add_scalar(f"eval/{rec['domain']}/bits_per_byte", rec["bits_per_byte"], tokens)


class Progress:
    """tqdm bar on stderr: stage, tokens, loss, LR, tokens/s and ETA (tqdm's own).

    Notices meanwhile go through logging, whose handler (`rewarm.console`) writes
    them above the bar."""

    def __init__(self, total_tokens: int, done_tokens: int, enabled: bool, stage: str = "") -> None:
        self._bar = None
        if enabled:
            from tqdm import tqdm

            self._bar = tqdm(
                total=total_tokens,
                initial=done_tokens,
                desc=stage,
                unit="tok",
                unit_scale=True,
                file=sys.stderr,
                dynamic_ncols=True,
                mininterval=0.5,
            )

    def update(self, tokens: int, stage: str, loss: float, lr: float) -> None:
        if self._bar is not None:
            self._bar.set_description(stage, refresh=False)
            self._bar.set_postfix(loss=f"{loss:.4f}", lr=f"{lr:.2e}", refresh=False)
            self._bar.update(tokens)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
