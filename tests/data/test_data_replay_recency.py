"""Power-law replay as Gandhi et al. 2024 define it: the weight of a domain decays as a
power law of the time since it was last *seen*, replay visits included (counted in
optimizer steps), not of the stages since a stage's mix last trained it."""

from __future__ import annotations

import numpy as np
import pytest

from rewarm.data.mixture import MixtureSampler
from tests.data.datahelpers import fake_domain, make_config

SEQ, ROWS = 8, 40
OFFSETS = {"a": 0, "b": 10**6, "c": 2 * 10**6, "d": 3 * 10**6}


def _domains() -> dict:
    return {k: fake_domain(k, 400_000, off) for k, off in OFFSETS.items()}


def _shares(tmp_path, stages: list[dict], steps: int) -> dict[str, float]:
    """Share of each domain among the replay rows of the last stage's first `steps`."""
    bt = SEQ * ROWS
    doms = {k: {"source": "x", "max_epochs": 1e6} for k in "abcd"}
    raw = [
        {k: v for k, v in st.items() if k != "steps"} | {"tokens": st["steps"] * bt}
        for st in stages
    ]
    cfg = make_config(tmp_path, doms, raw, train={"seq_len": SEQ, "batch_tokens": bt})
    sampler = MixtureSampler(cfg, _domains())
    sampler.start_stage(len(stages) - 1)
    counts: dict[str, int] = {}
    for _ in range(steps):
        b = sampler.next_batch()
        for d, r in zip(b.domains, b.replay, strict=True):
            if r:
                counts[d] = counts.get(d, 0) + 1
    total = sum(counts.values())
    return {k: v / total for k, v in counts.items()}


@pytest.mark.parametrize(("policy", "share_a"), [("power-law", 0.5), ("stage-recency", 1 / 3)])
def test_replay_visits_count_as_seen(tmp_path, policy, share_a):
    # a is trained in stage 0 and replayed through stage 1, so it was seen at the end of
    # stage 1 as recently as b: the paper's weights are equal there. Counting whole
    # stages since a was last in a mix (stage-recency) weighs it 2^-1 against b's 1.
    stages = [
        {"name": "s0", "steps": 20, "mix": {"a": 1.0}},
        {"name": "s1", "steps": 20, "mix": {"b": 1.0}, "replay": {"fraction": 0.25}},
        {
            "name": "s2",
            "steps": 200,
            "mix": {"c": 1.0},
            "replay": {"fraction": 0.25, "policy": policy, "alpha": 1.0},
        },
    ]
    shares = _shares(tmp_path, stages, 200)
    assert shares["a"] == pytest.approx(share_a, abs=0.03)


def test_recently_seen_domain_keeps_being_revisited(tmp_path):
    # One replay row per step. At the start of stage 2, b was seen 1 step ago and a
    # 101 steps ago: b takes nearly every draw, and each draw keeps it recent, while a's
    # weight keeps decaying: the bursty revisits of a power-law environment.
    stages = [
        {"name": "s0", "steps": 10, "mix": {"a": 1.0}},
        {"name": "s1", "steps": 100, "mix": {"b": 1.0}},
        {
            "name": "s2",
            "steps": 100,
            "mix": {"c": 1.0},
            "replay": {"fraction": 1 / ROWS, "policy": "power-law", "alpha": 1.0},
        },
    ]
    assert _shares(tmp_path, stages, 100)["b"] > 0.95
    stages[2]["replay"]["policy"] = "uniform"
    assert _shares(tmp_path / "u", stages, 100)["b"] == pytest.approx(0.5, abs=0.05)


def test_power_law_draws_are_a_pure_function_of_the_config(tmp_path):
    stages = [
        {"name": "s0", "steps": 10, "mix": {"a": 0.5, "b": 0.5}},
        {"name": "s1", "steps": 30, "mix": {"c": 1.0}},
        {
            "name": "s2",
            "steps": 50,
            "mix": {"d": 1.0},
            "replay": {"fraction": 0.1, "policy": "power-law", "alpha": 0.5},
        },
    ]
    bt = SEQ * ROWS
    doms = {k: {"source": "x"} for k in "abcd"}
    raw = [
        {k: v for k, v in st.items() if k != "steps"} | {"tokens": st["steps"] * bt}
        for st in stages
    ]
    cfg = make_config(tmp_path, doms, raw, train={"seq_len": SEQ, "batch_tokens": bt})
    one, two = MixtureSampler(cfg, _domains()), MixtureSampler(cfg, _domains())
    one.start_stage(2)
    two.start_stage(2)
    for _ in range(20):
        one.next_batch()
    two.load_state_dict(one.state_dict())
    a, b = one.next_batch(), two.next_batch()
    assert np.array_equal(a.tokens, b.tokens)
