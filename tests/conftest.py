"""Test-wide settings and the one shared training run.

Under CI (`CI=true`) every Hypothesis test replays a fixed, derandomized set of
examples, so a red CI always means a regression; local runs draw new examples
each time, which is how fuzzing keeps finding new cases.

The tests are a package mirroring `src/rewarm` (tests of `rewarm.config` in
`tests/config/`, of a top-level module in `tests/test_<module>.py`); helpers shared
across packages are modules of this package (`tests.runhelpers`), imported normally.
"""

from __future__ import annotations

import json
import os

import pytest
from hypothesis import settings

settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI") == "true":
    settings.load_profile("ci")


@pytest.fixture(scope="session")
def finished(tmp_path_factory):
    """(cfg, final loop state) of an uninterrupted two-stage run, shared by the tests
    that only read it (or copy it). Read-only for tests."""
    from rewarm.train.trainer import train
    from tests.runhelpers import load, one_thread, write_config

    tmp = tmp_path_factory.mktemp("two_stage")
    cfg = load(write_config(tmp))
    with one_thread():
        state = train(cfg, progress=False)
    return cfg, state


@pytest.fixture(scope="session")
def task_run(tmp_path_factory, monkeypatch_session):
    """(config, sinks) of a finished run: stage "api" then "other"; the built-in
    `next-line` task of `api` and the local recall task at both boundaries and every
    TASK_EVERY tokens; the W&B (offline) and MLflow (local file store) sinks that are
    installed. Read-only for tests (tests/tasks, tests/trackers)."""
    from rewarm.extras import available
    from rewarm.runconfig import load
    from rewarm.train.trainer import train
    from tests.tasks.taskhelpers import (
        OBJECTS_LEARNT,
        STAGE_TOKENS,
        TASK_EVERY,
        one_thread,
        write_config,
    )

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
