"""Plain helpers for the data-layer tests (`tests.data.datahelpers`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from rewarm import runconfig
from rewarm.config import Config
from rewarm.data.shards import DomainData


def make_config(
    tmp_path: Path, domains: dict[str, Any], stages: list[dict], **sections: Any
) -> Config:
    raw: dict[str, Any] = {
        "run": {"name": "t", "out_dir": str(tmp_path / "runs"), "seed": sections.pop("seed", 0)},
        "domains": domains,
        "stages": stages,
        "eval": {"tokens_per_domain": 64},
    }
    raw.update(sections)
    raw.setdefault("train", {"seq_len": 8, "batch_tokens": 64})
    return runconfig.from_dict(raw, source="test.toml")


def fake_domain(name: str, n_tokens: int, offset: int = 0) -> DomainData:
    """A domain whose token at position i is offset + i, so a row names its window."""
    train = np.arange(offset, offset + n_tokens, dtype=np.uint32)
    return DomainData(name=name, train=train, heldout=train[:0], manifest={})
