"""The scalars every tracker shows for a record, named alike in all of them.

| record | scalars |
| --- | --- |
| `train` | `train/loss`, `train/lr`, `train/grad_norm`, `train/tokens_per_s`, `train/mfu` |
| `eval` | `eval/DOMAIN/loss`, `eval/DOMAIN/bits_per_byte` |
| `task` | `task/TASK/METRIC`, `task/TASK/METRIC_stderr` |
| `stage` | `stage/index` (on "start" and "end") |

The x axis is the record's training tokens. Missing and non-finite values are left
out; `run` records carry no scalars (trackers take the config from the "start" one).
"""

from __future__ import annotations

import math
import re

from rewarm.runlog import EvalRecord, Record, StageRecord, TaskRecord, TrainRecord

_UNSAFE = re.compile(r"[^A-Za-z0-9_.\- /]")


def safe(name: str) -> str:
    """A metric-name component both W&B and MLflow accept (letters, digits, `_.- /`)."""
    return _UNSAFE.sub("_", name)


def scalars(record: Record) -> dict[str, float]:
    """Name -> value of the scalars `record` carries ({} for none)."""
    raw: dict[str, float | None]
    if isinstance(record, TrainRecord):
        raw = {
            "train/loss": record.loss,
            "train/lr": record.lr,
            "train/grad_norm": record.grad_norm,
            "train/tokens_per_s": record.tokens_per_s,
            "train/mfu": record.mfu,
        }
    elif isinstance(record, EvalRecord):
        d = safe(record.domain)
        raw = {f"eval/{d}/loss": record.loss, f"eval/{d}/bits_per_byte": record.bits_per_byte}
    elif isinstance(record, TaskRecord):
        base = f"task/{safe(record.task)}/{safe(record.metric)}"
        raw = {base: record.value, f"{base}_stderr": record.stderr}
    elif isinstance(record, StageRecord):
        raw = {"stage/index": float(record.index)}
    else:
        return {}
    return {k: float(v) for k, v in raw.items() if v is not None and math.isfinite(v)}


def flat_config(config: dict[str, object], prefix: str = "") -> dict[str, str]:
    """The resolved config as dotted keys and string values (MLflow parameters)."""
    out: dict[str, str] = {}
    for key, value in config.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            out.update(flat_config(value, f"{dotted}."))
        else:
            out[dotted] = str(value)
    return out
