"""`rewarm demo --tasks`: every arm's config gains the built-in tasks (valid, with the
larger held-out split; no `names` task on the user's corpora), and the task table
prints accuracy and the old domain's forgetting."""

from __future__ import annotations

import math

from rewarm.demo import tasks as demo_tasks
from rewarm.demo.arms import ARMS, QUICK, Layout, arm_config
from rewarm.demo.runner import plan_arms
from rewarm.demo.settings import load_settings


def _where(tmp_path):
    return Layout(runs=str(tmp_path), data=str(tmp_path / "data"))


def test_arms_evaluate_the_builtin_tasks(tmp_path):
    settings = load_settings(quick=True)
    plans = plan_arms(list(ARMS), settings, _where(tmp_path), 0, tasks=True)
    builtin = ["rewarm:names:docs", "rewarm:next-line:docs", "rewarm:next-line:code"]
    assert list(demo_tasks.task_names("docs", "code")) == builtin
    for p in plans:
        assert [t.task for t in p.cfg.eval.tasks] == builtin
        assert all(t.limit == demo_tasks.LIMIT for t in p.cfg.eval.tasks)
        assert p.cfg.eval.tasks_every_tokens == 0  # stage boundaries only
        assert p.cfg.data.heldout_min_tokens == demo_tasks.HELDOUT_FACTOR * QUICK.heldout_min_tokens
    plain = arm_config("naive", _where(tmp_path), 0, QUICK)
    assert "tasks" not in plain["eval"]  # with_tasks copies, never mutates
    assert all(not p.cfg.eval.tasks for p in plan_arms(["naive"], settings, _where(tmp_path), 0))


def test_user_corpora_get_the_next_line_tasks(tmp_path):
    (tmp_path / "a.txt").write_text("one\n")
    (tmp_path / "b.txt").write_text("two\n")
    settings = load_settings(
        quick=True, old=[str(tmp_path / "a.txt")], new=[str(tmp_path / "b.txt")], names="en,py"
    )
    (plan,) = plan_arms(["naive"], settings, _where(tmp_path), 0, tasks=True)
    assert [t.task for t in plan.cfg.eval.tasks] == ["rewarm:next-line:en", "rewarm:next-line:py"]


def test_task_table():
    rows = [
        demo_tasks.TaskRow(
            arm="retrain",
            final={
                "rewarm_docs_names": 0.5,
                "rewarm_docs_next_line": 0.25,
                "rewarm_code_names": 0.75,
                "rewarm_code_next_line": math.nan,
            },
            forgetting={"rewarm_docs_names": None, "rewarm_docs_next_line": None},
        ),  # fmt: skip
        demo_tasks.TaskRow(
            arm="naive",
            final={
                "rewarm_docs_names": 0.4,
                "rewarm_docs_next_line": 0.3,
                "rewarm_code_names": 0.8,
                "rewarm_code_next_line": 0.6,
            },
            forgetting={"rewarm_docs_names": 0.125, "rewarm_docs_next_line": -0.05},
        ),  # fmt: skip
    ]
    lines = demo_tasks.format_task_table(rows, "docs", "code").splitlines()
    assert lines[0].split()[:3] == ["arm", "docs", "names"]
    assert lines[2].split() == ["retrain", "0.500", "0.250", "-", "-", "-"]
    assert lines[3].split() == ["naive", "0.400", "0.300", "0.600", "+0.125", "-0.050"]
