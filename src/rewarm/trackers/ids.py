"""`RUN/trackers.json`: each tracker's run id, so a resumed run continues the same
tracker run instead of starting a new one."""

from __future__ import annotations

import json
from pathlib import Path

from rewarm import atomic

FILE = "trackers.json"


def load(run_dir: Path) -> dict[str, str]:
    try:
        data = json.loads((run_dir / FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def save(run_dir: Path, tracker: str, run_id: str) -> None:
    ids = load(run_dir)
    ids[tracker] = run_id
    atomic.write_json(run_dir / FILE, ids, indent=2, sort_keys=True)
