"""`eval.tasks` and `[log]` keys: checked at load with a message naming the key."""

from __future__ import annotations

import pytest

from rewarm.config import TaskSection
from rewarm.errors import UserError
from rewarm.runconfig import load
from rewarm.tasks.spec import Builtin, parse_builtin, task_domain
from tests.tasks.taskhelpers import write_config


def test_builtin_names():
    b = parse_builtin("rewarm:next-line:my-docs", "x")
    assert b == Builtin(kind="next-line", domain="my-docs")
    assert b.name == "rewarm_my_docs_next_line"
    assert parse_builtin("hellaswag", "x") is None
    assert task_domain(TaskSection(task="rewarm:names:api")) == "api"
    assert task_domain(TaskSection(task="hellaswag")) is None
    assert task_domain(TaskSection(task="hellaswag", domain="api")) == "api"


@pytest.mark.parametrize(
    ("sets", "message"),
    [
        (['eval.tasks=[{ task = "rewarm:names" }]'], r"eval.tasks\[0\].task: .*rewarm:KIND:DOMAIN"),
        (['eval.tasks=[{ task = "rewarm:cloze:api" }]'], "unknown kind 'cloze'"),
        (['eval.tasks=[{ task = "rewarm:names:web" }]'], "names an undeclared domain"),
        (['eval.tasks=[{ task = "no/such.yaml" }]'], "no/such.yaml: no such task file"),
        (['eval.tasks=[{ task = "x", limit = -1 }]'], r"eval.tasks\[0\].limit must be >= 0"),
        (['eval.tasks=[{ task = "x", domain = "web" }]'], r"eval.tasks\[0\].domain names an"),
        (['eval.tasks=[{ task = "rewarm:names:api", domain = "other" }]'], "differs from"),
        (['eval.tasks=[{ task = "x", fewshot = 2 }]'], "unknown key 'eval.tasks\\[0\\].fewshot'"),
        (["eval.tasks_every_tokens=-5"], "eval.tasks_every_tokens must be >= 0"),
        (['log.sinks=["neptune"]'], r"log.sinks\[0\] must be 'tensorboard', 'wandb' or 'mlflow'"),
        (['log.sinks=["wandb", "wandb"]'], "log.sinks names 'wandb' twice"),
        (['log.wandb_mode="cloud"'], "log.wandb_mode must be 'offline' or 'online'"),
    ],
)
def test_bad_task_and_log_keys(tmp_path, sets, message):
    with pytest.raises(UserError, match=message):
        load(write_config(tmp_path), sets)


def test_defaults_and_a_valid_table(tmp_path):
    cfg = load(
        write_config(tmp_path),
        [
            'eval.tasks=[{ task = "rewarm:next-line:other", num_fewshot = 2 }, { task = "piqa" }]',
            'log.sinks=["mlflow"]',
            'log.group="sweep"',
        ],
    )
    first, second = cfg.eval.tasks
    assert (first.task, first.num_fewshot, first.limit, first.domain) == (
        "rewarm:next-line:other", 2, 0, ""
    )  # fmt: skip
    assert second.task == "piqa" and cfg.eval.task_batch_size == 16
    assert cfg.log.sinks == ["mlflow"] and cfg.log.group == "sweep"
    assert (cfg.log.project, cfg.log.wandb_mode, cfg.log.dir) == ("rewarm", "offline", "")
