"""The resolved config as TOML: what `config.resolved.toml` holds.

Written with `tomli-w`, a maintained writer that escapes every string (a stage
named "a\\nb" included), so the file always parses back to the same `Config`
(`config_from_dict(tomllib.loads(resolved_toml(cfg))) == cfg`, property-tested).
"""

from __future__ import annotations

from typing import Any

import tomli_w

from rewarm.config.schema import Config


def dump_toml(data: dict[str, Any]) -> str:
    """TOML text of a table of plain values (str, int, float, bool, lists, tables)."""
    return tomli_w.dumps(data)


def resolved_toml(cfg: Config) -> str:
    """Every key of `cfg`, defaults filled in."""
    return dump_toml(cfg.to_dict())
