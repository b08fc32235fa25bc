"""One finished two-stage run shared by the tests that only read it (or copy it)."""

from __future__ import annotations

import pytest
from runhelpers import load, one_thread, write_config

from rewarm.train.trainer import train


@pytest.fixture(scope="session")
def finished(tmp_path_factory):
    """(cfg, final loop state) of an uninterrupted two-stage run. Read-only for tests."""
    tmp = tmp_path_factory.mktemp("two_stage")
    cfg = load(write_config(tmp))
    with one_thread():
        state = train(cfg, progress=False)
    return cfg, state
