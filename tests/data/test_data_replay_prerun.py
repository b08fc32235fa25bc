"""Replay of data from before the run (`source = "all"`): e.g. continuing a Hugging Face
model while replaying a sample of its own pre-training corpus, from the first stage on."""

from __future__ import annotations

import numpy as np
import pytest

from rewarm.data.mixture import MixtureSampler
from rewarm.errors import UserError
from tests.data.datahelpers import fake_domain, make_config

SEQ, ROWS = 8, 40


def _cfg(tmp_path, replay: dict):
    doms = {"old": {"source": "x"}, "new": {"source": "y"}}
    stages = [{"name": "s0", "tokens": 100 * SEQ * ROWS, "mix": {"new": 1.0}, "replay": replay}]
    return make_config(tmp_path, doms, stages, train={"seq_len": SEQ, "batch_tokens": SEQ * ROWS})


@pytest.mark.parametrize("policy", ["uniform", "proportional", "power-law"])
def test_first_stage_replays_pre_run_domain(tmp_path, policy):
    cfg = _cfg(tmp_path, {"fraction": 0.1, "domains": ["old"], "source": "all", "policy": policy})
    domains = {"old": fake_domain("old", 50_000, 0), "new": fake_domain("new", 500_000, 10**6)}
    sampler = MixtureSampler(cfg, domains)
    sampler.start_stage(0)
    rows = np.concatenate([sampler.next_batch().tokens for _ in range(100)])
    old_share = float(np.mean(rows[:, 0] < 10**6))
    assert abs(old_share - 0.1) < 0.01
    assert sampler.tokens_by_domain(0)["old"] == pytest.approx(0.1 * 100 * SEQ * ROWS, rel=0.02)


def test_pre_run_replay_needs_source_all_and_named_domains(tmp_path):
    with pytest.raises(UserError, match="first stage cannot replay"):
        _cfg(tmp_path, {"fraction": 0.1, "domains": ["old"]})
    with pytest.raises(UserError, match="first stage cannot replay"):
        _cfg(tmp_path, {"fraction": 0.1, "source": "all"})
