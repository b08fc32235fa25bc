"""A run config loaded and checked in full: its own sections, then each stage's
`schedule` and `replay` tables, and what each `eval.tasks` entry names, by the
packages that give them meaning.

`rewarm.config` sits at the bottom of the package (it imports nothing of rewarm but
`errors`), so it cannot ask `rewarm.schedules` or `rewarm.data.replay` whether a spec
is valid. This module sits above both and is what every entry point loads configs
with: the CLI verbs, the demo and the trainer (`check` again, for configs built in
code), so a bad spec is refused at load time, before any work, with a message that
names the file and key (`run.toml: stages[1].schedule.decay must be <= ...`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rewarm.config import Config, config_from_dict, load_config
from rewarm.data.replay import validate_replay
from rewarm.mitigate.options import validate_stage
from rewarm.schedules.lr_schedule import validate_spec
from rewarm.tasks import spec as task_spec


def check(cfg: Config) -> None:
    """Raise `UserError` at the first invalid stage schedule or replay table, or task
    name (`rewarm.tasks.spec.check`)."""
    for i, st in enumerate(cfg.stages):
        validate_spec(st.schedule, st.tokens, where=f"{cfg.source}: stages[{i}].schedule")
        if st.replay:
            validate_replay(st.replay, cfg, i, where=f"{cfg.source}: stages[{i}].replay")
        validate_stage(cfg, i)  # average, mer, merge
    task_spec.check(cfg)


def load(path: str | Path, overrides: list[str] | None = None) -> Config:
    """`rewarm.config.load_config`, then `check`."""
    cfg = load_config(path, overrides)
    check(cfg)
    return cfg


def from_dict(raw: dict[str, Any], source: str = "<config>") -> Config:
    """`rewarm.config.config_from_dict`, then `check`."""
    cfg = config_from_dict(raw, source)
    check(cfg)
    return cfg
