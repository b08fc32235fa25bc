"""Comparing a config against the one an existing run was started with.

Rerunning `rewarm train` resumes; if the resolved config differs from the run's
`config.resolved.toml`, the run is refused with one line per changed key
(`train.lr: 0.001 -> 0.002`) unless `--allow-changes` names those keys (a key
also allows everything under it: `stages` allows any stage change).
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from rewarm import runconfig
from rewarm.config import Config
from rewarm.errors import UserError

RESOLVED = "config.resolved.toml"


class ConfigChanged(UserError):
    """A run exists with another config; `diff` holds one line per changed key."""

    def __init__(self, message: str, diff: list[str]) -> None:
        super().__init__(message)
        self.diff = diff


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """{"train.lr": 0.001, "stages[1].mix.code": 1.0, ...}"""
    if isinstance(value, dict) and value:
        out: dict[str, Any] = {}
        for k, v in value.items():
            out.update(flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    if isinstance(value, list) and value and all(isinstance(x, dict) for x in value):
        out = {}
        for i, v in enumerate(value):
            out.update(flatten(v, f"{prefix}[{i}]"))
        return out
    return {prefix: value}


def diff(old: dict[str, Any], new: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    """Changed keys -> (old, new); a key missing on one side shows as None."""
    a, b = flatten(old), flatten(new)
    return {k: (a.get(k), b.get(k)) for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)}


def _allowed(key: str, allowed: list[str]) -> bool:
    return any(key == a or key.startswith((a + ".", a + "[")) for a in allowed)


def previous_config(run_dir: Path) -> Config | None:
    path = run_dir / RESOLVED
    if not path.is_file():
        return None
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as err:
        raise UserError(f"{path}: not valid TOML: {err}") from None
    return runconfig.from_dict(raw, source=str(path))


def check(cfg: Config, allowed: list[str]) -> dict[str, tuple[Any, Any]]:
    """The changes against the existing run (all allowed), or raise `ConfigChanged`."""
    old = previous_config(cfg.run_dir)
    if old is None:
        return {}
    changes = diff(old.to_dict(), cfg.to_dict())
    refused = [k for k in changes if not _allowed(k, allowed)]
    if refused:
        lines = [f"  {k}: {changes[k][0]!r} -> {changes[k][1]!r}" for k in refused]
        raise ConfigChanged(
            f"{cfg.run_dir / RESOLVED}: the config differs from the existing run in "
            f"{len(refused)} key(s): {', '.join(refused)}; pass --allow-changes "
            f"{','.join(refused)} to continue with the new values, or choose another run.name",
            lines,
        )
    return changes
