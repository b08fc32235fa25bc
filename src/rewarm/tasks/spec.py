"""What an `eval.tasks` entry names, read without the harness installed.

`task` is one of:

- `rewarm:KIND:DOMAIN`: a built-in task rewarm generates from the held-out split
  of the declared domain DOMAIN (`KINDS`; see `rewarm.tasks.heldout_tasks`, docs/tasks.md);
- a path to a task YAML file (ends in `.yaml`/`.yml`), loaded by the harness with
  its own directory on the task search path;
- anything else: a task, group or tag name the harness knows (its own task index,
  which needs the hub for most datasets).

`check(cfg)` refuses a built-in with an unknown KIND or an undeclared DOMAIN and a
YAML path that does not exist, at config load (`rewarm.runconfig`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from rewarm.config import Config, TaskSection
from rewarm.errors import UserError

PREFIX = "rewarm:"
KINDS: dict[str, str] = {
    "names": "which of 4 attribute names follows `obj.` in a held-out passage",
    "next-line": "which of 4 lines is the held-out passage's real next line",
}
"""Built-in task kinds -> what an item asks (docs/tasks.md has the design)."""


@dataclass(frozen=True)
class Builtin:
    """A built-in task: KIND items made from DOMAIN's held-out documents."""

    kind: str
    domain: str

    @property
    def name(self) -> str:
        """The harness task name: `rewarm_DOMAIN_KIND` (non-word characters as `_`)."""
        return "rewarm_" + re.sub(r"\W", "_", f"{self.domain}_{self.kind}")


def parse_builtin(task: str, where: str) -> Builtin | None:
    """The `Builtin` that `task` names (None for a harness name or a YAML path);
    `UserError` starting with `where` for a malformed `rewarm:` name."""
    if not task.startswith(PREFIX):
        return None
    parts = task[len(PREFIX) :].split(":")
    if len(parts) != 2 or not all(parts):
        raise UserError(f"{where}: {task!r}: expected rewarm:KIND:DOMAIN")
    kind, domain = parts
    if kind not in KINDS:
        raise UserError(f"{where}: {task!r}: unknown kind {kind!r} (known: {', '.join(KINDS)})")
    return Builtin(kind=kind, domain=domain)


def is_yaml(task: str) -> bool:
    return task.endswith((".yaml", ".yml"))


def task_domain(entry: TaskSection, where: str = "eval.tasks") -> str | None:
    """The domain whose knowledge `entry` measures: a built-in's own domain, else
    `entry.domain`; None for knowledge from before the run."""
    builtin = parse_builtin(entry.task, where)
    if builtin is not None:
        return builtin.domain
    return entry.domain or None


def check(cfg: Config) -> None:
    """Every `eval.tasks[i].task` names something that can exist (see module doc)."""
    for i, entry in enumerate(cfg.eval.tasks):
        where = f"{cfg.source}: eval.tasks[{i}].task"
        builtin = parse_builtin(entry.task, where)
        if builtin is not None:
            if builtin.domain not in cfg.domains:
                raise UserError(
                    f"{where}: {entry.task!r} names an undeclared domain "
                    f"(declared: {', '.join(cfg.domains)})"
                )
            if entry.domain and entry.domain != builtin.domain:
                raise UserError(
                    f"{cfg.source}: eval.tasks[{i}].domain: {entry.domain!r} differs from the "
                    f"built-in task's own domain {builtin.domain!r}"
                )
        elif is_yaml(entry.task) and not Path(entry.task).is_file():
            raise UserError(f"{where}: {entry.task}: no such task file")
