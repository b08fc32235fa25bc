"""Read what the offline trackers wrote, from their files (no tracker API).

- Weights & Biases offline: `RUN.wandb` is a LevelDB-style log (32 KiB blocks of
  records, each `crc32(4) length(2) type(1) data`, type FULL/FIRST/MIDDLE/LAST) after
  a 7-byte header (":W&B", magic, version); each record's data is a protobuf
  `wandb_internal_pb2.Record`. History rows are its `history` records.
- MLflow file store: `mlruns/EXPERIMENT/RUN/metrics/KEY` holds one
  `timestamp value step` line per logged value; `tags/`, `params/` one file each.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

BLOCK = 32768
HEADER = 7
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


def wandb_records(path: Path) -> list[Any]:
    from wandb.proto import wandb_internal_pb2

    data = path.read_bytes()
    assert data[:4] == b":W&B", path
    out, pos, pending = [], HEADER, b""
    while pos + 7 <= len(data):
        left = BLOCK - pos % BLOCK
        if left < 7:
            pos += left  # block trailer
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        chunk = data[pos + 7 : pos + 7 + length]
        pos += 7 + length
        if kind in (FULL, FIRST):
            pending = chunk
        elif kind in (MIDDLE, LAST):
            pending += chunk
        else:
            continue  # zero padding
        if kind in (FULL, LAST):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            out.append(record)
    return out


def wandb_history(directory: Path) -> tuple[list[dict[str, Any]], Any]:
    """(history rows, the run record) of the one offline run under `directory`."""
    (path,) = directory.glob("wandb/offline-run-*/run-*.wandb")
    rows, run = [], None
    for rec in wandb_records(path):
        kind = rec.WhichOneof("record_type")
        if kind == "history":
            rows.append(
                {
                    i.key or "/".join(i.nested_key): json.loads(i.value_json)
                    for i in rec.history.item
                }
            )
        elif kind == "run":
            run = rec.run
    return rows, run


def mlflow_run(store: Path) -> Path:
    """The one run directory of the file store `store` (outside experiment 0)."""
    (run,) = [p for p in store.glob("*/*") if (p / "meta.yaml").is_file()]
    return run


def mlflow_metric(run: Path, key: str) -> list[tuple[float, int]]:
    """(value, step) of each logged value of metric `key`, in order."""
    lines = (run / "metrics" / key).read_text(encoding="utf-8").splitlines()
    return [(float(v), int(s)) for _ts, v, s in (line.split() for line in lines)]
