"""Run configuration: typed, keyword-only dataclasses loaded from TOML.

- `schema`: the section dataclasses and `Config` (field docs are the reference).
- `loader`: TOML and `--set` overrides -> `Config`, type-checked key by key.
- `validate`: cross-field checks, one function per section.
- `derived`: values computed from a config (steps per stage, batch rows, the
  evaluation interval), defined once.
- `resolved`: the resolved config as TOML (`config.resolved.toml`).

Every problem raises `UserError` naming the file and the dotted key
(`stages[1].mix.code`). A stage's `schedule` and `replay` tables belong to the
packages above this one; `rewarm.runconfig` loads a config and checks those too.
"""

from rewarm.config.derived import AUTO_EVAL_FACTOR, eval_interval
from rewarm.config.loader import apply_override, config_from_dict, load_config
from rewarm.config.resolved import dump_toml, resolved_toml
from rewarm.config.schema import (
    CheckpointSection,
    Config,
    DataSection,
    DomainSection,
    EvalSection,
    LogSection,
    ModelSection,
    RunSection,
    StageSection,
    TaskSection,
    TokenizerSection,
    TrainSection,
)

__all__ = [
    "AUTO_EVAL_FACTOR",
    "CheckpointSection",
    "Config",
    "DataSection",
    "DomainSection",
    "EvalSection",
    "LogSection",
    "ModelSection",
    "RunSection",
    "StageSection",
    "TaskSection",
    "TokenizerSection",
    "TrainSection",
    "apply_override",
    "config_from_dict",
    "dump_toml",
    "eval_interval",
    "load_config",
    "resolved_toml",
]
