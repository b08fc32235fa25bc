"""One two-stage run with task evaluation and the offline trackers, shared by the
tests that read it. What is not installed is left out (and those tests skip)."""

from __future__ import annotations

import json

import pytest
from taskhelpers import OBJECTS_LEARNT, STAGE_TOKENS, TASK_EVERY, one_thread, write_config

from rewarm.extras import available
from rewarm.runconfig import load
from rewarm.train.trainer import train


@pytest.fixture(scope="session")
def task_run(tmp_path_factory, monkeypatch_session):
    """(config, sinks) of a finished run: stage "api" then "other"; the built-in
    `next-line` task of `api` and the local recall task at both boundaries and every
    TASK_EVERY tokens; the W&B (offline) and MLflow (local file store) sinks that are
    installed."""
    if not available("lm_eval") and not (available("wandb") or available("mlflow")):
        pytest.skip("needs the tasks extra or a tracker: pip install 'rewarm[tasks,wandb,mlflow]'")
    tmp = tmp_path_factory.mktemp("task_run")
    sinks = [s for s in ("wandb", "mlflow") if available(s)]
    extra = f'\n[log]\nsinks = {json.dumps(sinks)}\ngroup = "tests"\ndir = "{tmp / "trackers"}"\n'
    sets = [] if available("lm_eval") else ["eval.tasks=[]"]
    cfg = load(
        write_config(
            tmp, objects=OBJECTS_LEARNT, tokens=STAGE_TOKENS, task_every=TASK_EVERY, extra=extra
        ),
        sets,
    )
    monkeypatch_session.setenv("WANDB_SILENT", "true")
    with one_thread():
        train(cfg, progress=False)
    return cfg, sinks


@pytest.fixture(scope="session")
def monkeypatch_session():
    mp = pytest.MonkeyPatch()
    yield mp
    mp.undo()
