"""Test-wide settings and the one shared training run.

Under CI (`CI=true`) every Hypothesis test replays a fixed, derandomized set of
examples, so a red CI always means a regression; local runs draw new examples
each time, which is how fuzzing keeps finding new cases.

The tests are a package mirroring `src/rewarm` (tests of `rewarm.config` in
`tests/config/`, of a top-level module in `tests/test_<module>.py`); helpers shared
across packages are modules of this package (`tests.runhelpers`), imported normally.
"""

from __future__ import annotations

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
