"""`rewarm demo --tasks`: the built-in tasks in every arm, and the task table.

Each arm also evaluates three built-in tasks (docs/tasks.md) made from the held-out
split, at every stage start and end: which attribute follows `obj.` (`names`) and
which line comes next (`next-line`) in the old domain (docs), and which line comes
next in the new one (code). On the user's corpora (`--old`/`--new`), where prose may
hold no dotted names, the two `next-line` tasks only. `LIMIT` items each: one evaluation scores 1,200
sequences, about as much CPU as 80 training steps of the default demo
(benchmarks/task_baselines.py), so the tasks are evaluated at stage boundaries only
(the held-out loss keeps the curve between them). The held-out split is
four times the demo's usual size (`HELDOUT_FACTOR`), since the docs prose holds few
dotted names; the loss numbers of a `--tasks` demo therefore differ slightly from a
plain one.

The table: each task's accuracy after both stages, and for the docs tasks their
forgetting F = max accuracy at an earlier stage end - final accuracy (> 0: forgotten;
`rewarm.continual.task_metrics`), read from each run's `task` records.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rewarm.continual import task_metrics
from rewarm.continual.timeline import timeline_of
from rewarm.demo.settings import DemoSettings
from rewarm.runlog import read_run
from rewarm.tasks.spec import parse_builtin

LIMIT = 100
"""Items per task and evaluation."""
HELDOUT_FACTOR = 4


def task_names(old: str, new: str, *, builtin: bool = True) -> tuple[str, ...]:
    """The `eval.tasks` names of a demo whose corpora are called `old` and `new`
    (`builtin`: the built-in prose -> code shift, which has `names` items)."""
    names = (f"rewarm:names:{old}",) if builtin else ()
    return (*names, f"rewarm:next-line:{old}", f"rewarm:next-line:{new}")


def with_tasks(raw: dict[str, Any], settings: DemoSettings) -> dict[str, Any]:
    """An arm's raw config with the built-in tasks on."""
    out = {**raw, "eval": dict(raw["eval"]), "data": dict(raw["data"])}
    tasks = task_names(settings.old.name, settings.new.name, builtin=settings.builtin)
    out["eval"]["tasks"] = [{"task": t, "limit": LIMIT} for t in tasks]
    out["data"]["heldout_min_tokens"] = HELDOUT_FACTOR * settings.size.heldout_min_tokens
    return out


def _label(task: str) -> str:
    """`rewarm:names:docs` -> the harness task name `rewarm_docs_names`."""
    builtin = parse_builtin(task, "demo tasks")
    assert builtin is not None
    return builtin.name


@dataclass(frozen=True, kw_only=True)
class TaskRow:
    arm: str
    final: dict[str, float]
    """Harness task name -> accuracy after the last stage."""
    forgetting: dict[str, float | None]
    """Old-domain task -> forgetting after the last stage (None: one-stage baseline)."""


def _tasks_of(old: str, new: str, rows: list[TaskRow]) -> tuple[str, ...]:
    """The demo's tasks that the rows have (no `names` task on the user's corpora)."""
    logged = {n for r in rows for n in r.final}
    return tuple(t for t in task_names(old, new) if _label(t) in logged)


def task_results(
    run_dirs: dict[str, Path], old: str, new: str, *, label: str = ""
) -> list[TaskRow]:
    """One row per arm (`label` appended to its name) from its `task` records."""
    rows = []
    for arm, path in run_dirs.items():
        log = read_run(path)
        summary = task_metrics.summarize(log.tasks, timeline_of(log).stages)
        final: dict[str, float] = {}
        forget: dict[str, float | None] = {}
        if summary is not None:
            last = summary.forgetting[-1]
            for task in task_names(old, new):
                name = _label(task)
                value = summary.final.get(f"{name} acc")
                if value is None:
                    continue
                final[name] = value[0]
                if task.endswith(f":{old}"):
                    forget[name] = last.get(f"{name} acc")
        rows.append(TaskRow(arm=arm + label, final=final, forgetting=forget))
    return rows


def format_task_table(rows: list[TaskRow], old: str, new: str) -> str:
    """Plain text: accuracy per task (chance is 0.25), forgetting of the old tasks."""
    tasks = _tasks_of(old, new, rows)
    names = [_label(t) for t in tasks]
    heads = [n.removeprefix("rewarm_").replace("_", " ") for n in names]
    forgotten = [n for n, t in zip(names, tasks, strict=True) if t.endswith(f":{old}")]
    columns = [
        "arm",
        *heads,
        *[f"{n.removeprefix('rewarm_').replace('_', ' ')} forg." for n in forgotten],
    ]
    widths = [max(16, len(columns[0]))] + [max(9, len(c)) for c in columns[1:]]

    def cell(x: float | None, signed: bool = False) -> str:
        if x is None or math.isnan(x):
            return "-"
        return f"{x:+.3f}" if signed else f"{x:.3f}"

    def line(cells: list[str]) -> str:
        first = cells[0].ljust(widths[0])
        return "  ".join([first, *(c.rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True))])

    out = [line(columns), line(["-" * w for w in widths])]
    for r in rows:
        cells = [r.arm, *[cell(r.final.get(n)) for n in names]]
        cells += [cell(r.forgetting.get(n), signed=True) for n in forgotten]
        out.append(line(cells))
    return "\n".join(out)
