"""Mixture sampler: realised fractions, exact resume, rank slicing, replay of seen data."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rewarm.config.derived import stage_steps
from rewarm.data.mixture import MixtureSampler
from rewarm.errors import UserError
from tests.data.datahelpers import fake_domain, make_config

SEQ = 8
ROWS = 40
OFFSETS = {"a": 0, "b": 10**6, "c": 2 * 10**6, "d": 3 * 10**6}


def _domains(n_tokens: int = 200_000) -> dict:
    return {k: fake_domain(k, n_tokens, off) for k, off in OFFSETS.items()}


def _domain_of(token: int) -> str:
    return "abcd"[token // 10**6]


def _cfg(tmp_path, replay: dict | None = None, steps=(50, 50, 2000), seed=0, max_epochs=1e6):
    bt = SEQ * ROWS
    stages = [
        {"name": "s0", "tokens": steps[0] * bt, "mix": {"a": 0.7, "b": 0.3}},
        {"name": "s1", "tokens": steps[1] * bt, "mix": {"b": 0.5, "c": 0.5}},
        {"name": "s2", "tokens": steps[2] * bt, "mix": {"d": 1.0}},
    ]
    if replay:
        stages[2]["replay"] = replay
    doms = {k: {"source": "x", "max_epochs": max_epochs} for k in "abcd"}
    return make_config(
        tmp_path, doms, stages, seed=seed, train={"seq_len": SEQ, "batch_tokens": bt}
    )


def _drive(sampler: MixtureSampler, n: int) -> list:
    """Draw n batches the way a trainer does: next stage when a stage's steps are done."""
    out = []
    for _ in range(n):
        if sampler.stage < 0:
            sampler.start_stage(0)
        if sampler.step >= stage_steps(sampler.cfg, sampler.stage):
            sampler.start_stage(sampler.stage + 1)
        out.append(sampler.next_batch())
    return out


def _expected_replay_weights(policy: str, alpha: float = 1.0) -> dict[str, float]:
    # Stage 2 replays a, b, c. Last trained: a in stage 0, b and c in stage 1.
    if policy == "uniform":
        w = {"a": 1.0, "b": 1.0, "c": 1.0}
    elif policy == "stage-recency":
        w = {"a": 2.0**-alpha, "b": 1.0, "c": 1.0}
    else:  # proportional, recall-interval: tokens drawn in stages 0 and 1 (equal lengths)
        w = {"a": 0.7, "b": 0.3 + 0.5, "c": 0.5}
    total = sum(w.values())
    return {k: v / total for k, v in w.items()}


@pytest.mark.parametrize("policy", ["uniform", "proportional", "stage-recency", "recall-interval"])
def test_realised_fractions_match_config(tmp_path, policy):
    frac = 0.2
    cfg = _cfg(
        tmp_path,
        {"fraction": frac, "policy": policy, "alpha": 1.5 if policy == "stage-recency" else 1.0},
    )
    sampler = MixtureSampler(cfg, _domains())
    sampler.start_stage(2)  # earlier stages are fast-forwarded as if run in full
    replay_rows = rows = 0
    for _ in range(2000):
        b = sampler.next_batch()
        replay_rows += int(b.replay.sum())
        rows += len(b.domains)
        # Replay rows come from earlier domains only, fresh rows from the stage mix.
        assert all(d == "d" for d, r in zip(b.domains, b.replay, strict=True) if not r)
        assert all(d != "d" for d, r in zip(b.domains, b.replay, strict=True) if r)
    got = sampler.tokens_by_domain(2)
    total = sum(got.values())
    weights = _expected_replay_weights(policy, alpha=1.5 if policy == "stage-recency" else 1.0)
    expected = {"d": 1 - frac, **{k: frac * w for k, w in weights.items()}}
    for k, e in expected.items():
        assert abs(got.get(k, 0) / total - e) < 0.01, (k, got, expected)
    assert abs(replay_rows / rows - frac) < 0.01
    assert total == 2000 * ROWS * SEQ


def test_stage_mix_fractions(tmp_path):
    sampler = MixtureSampler(_cfg(tmp_path, steps=(2000, 1, 1)), _domains())
    seen = {"a": 0, "b": 0}
    for b in _drive(sampler, 2000):
        for row, d in zip(b.tokens, b.domains, strict=True):
            assert _domain_of(int(row[0])) == d  # rows really come from their domain
            seen[d] += 1
    assert abs(seen["a"] / (2000 * ROWS) - 0.7) < 0.01
    assert sampler.tokens_by_domain(0) == {k: v * SEQ for k, v in seen.items()}


@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    cut=st.integers(min_value=0, max_value=44),
    world=st.sampled_from([1, 2, 4]),
    policy=st.sampled_from(
        ["uniform", "proportional", "power-law", "stage-recency", "recall-interval"]
    ),
    seed=st.integers(0, 3),
)
def test_resume_is_exact_across_stage_boundaries(tmp_path, cut, world, policy, seed):
    cfg = _cfg(
        tmp_path, {"fraction": 0.25, "policy": policy, "interval": 3}, steps=(15, 15, 15), seed=seed
    )
    doms = _domains(20_000)
    for rank in range(world):
        uninterrupted = MixtureSampler(cfg, doms, rank, world)
        full = _drive(uninterrupted, 45)
        first = MixtureSampler(cfg, doms, rank, world)
        head = _drive(first, cut)
        state = json.loads(json.dumps(first.state_dict()))  # must survive JSON
        resumed = MixtureSampler(cfg, doms, rank, world)
        resumed.load_state_dict(state)
        if resumed.stage >= 0:
            resumed.start_stage(resumed.stage)  # what a resuming trainer does: a no-op
        tail = _drive(resumed, 45 - cut)
        for x, y in zip(full, head + tail, strict=True):
            assert np.array_equal(x.tokens, y.tokens)
            assert x.domains == y.domains
            assert np.array_equal(x.replay, y.replay)
        assert resumed.state_dict() == uninterrupted.state_dict()
    # Counts are global (all ranks): with one rank they are this rank's rows.
    single = MixtureSampler(cfg, doms)
    batches = _drive(single, 45)
    for s in range(3):
        counts: dict[str, int] = {}
        for b in batches:
            for d in b.domains if b.stage == s else []:
                counts[d] = counts.get(d, 0) + SEQ
        assert single.tokens_by_domain(s) == counts
        assert uninterrupted.tokens_by_domain(s) == counts


def test_rank_slices_are_disjoint_and_complete(tmp_path):
    cfg = _cfg(tmp_path, {"fraction": 0.3, "policy": "uniform"}, steps=(10, 10, 10))
    doms = _domains(20_000)
    single = _drive(MixtureSampler(cfg, doms), 30)
    ranks = [_drive(MixtureSampler(cfg, doms, r, 4), 30) for r in range(4)]
    for step, whole in enumerate(single):
        parts = [ranks[r][step] for r in range(4)]
        assert all(p.tokens.shape == (ROWS // 4, SEQ + 1) for p in parts)
        joined = np.concatenate([p.tokens for p in parts])
        # Rows are identified by their first token: the multisets must coincide.
        assert sorted(joined[:, 0].tolist()) == sorted(whole.tokens[:, 0].tolist())
        assert sum(int(p.replay.sum()) for p in parts) == int(whole.replay.sum())


def test_fresh_windows_without_replacement_within_epoch(tmp_path):
    n_windows = 400
    cfg = make_config(
        tmp_path,
        {"a": {"source": "x"}},
        [{"name": "s0", "tokens": 2 * n_windows * SEQ, "mix": {"a": 1.0}}],
        train={"seq_len": SEQ, "batch_tokens": SEQ * ROWS},
    )
    sampler = MixtureSampler(cfg, {"a": fake_domain("a", n_windows * SEQ + 1)})
    firsts = np.concatenate([b.tokens[:, 0] for b in _drive(sampler, 2 * n_windows // ROWS)])
    assert sorted(firsts[:n_windows].tolist()) == list(range(0, n_windows * SEQ, SEQ))
    assert sorted(firsts[n_windows:].tolist()) == list(range(0, n_windows * SEQ, SEQ))
    assert not np.array_equal(firsts[:n_windows], firsts[n_windows:])  # a new order per epoch
    rows = np.concatenate(
        [
            b.tokens
            for b in _drive(MixtureSampler(cfg, {"a": fake_domain("a", n_windows * SEQ + 1)}), 3)
        ]
    )
    assert np.array_equal(rows[:, 1:] - rows[:, :-1], np.ones((rows.shape[0], SEQ), dtype=np.int64))


def test_replay_draws_only_seen_windows(tmp_path):
    cfg = _cfg(tmp_path, {"fraction": 0.5, "policy": "uniform", "domains": ["a"]}, steps=(5, 5, 40))
    batches = _drive(MixtureSampler(cfg, _domains()), 50)
    seen = {int(t) for b in batches if b.stage == 0 for t in b.tokens[:, 0] if t < 10**6}
    replayed = {
        int(r[0])
        for b in batches
        if b.stage == 2
        for r, f in zip(b.tokens, b.replay, strict=True)
        if f
    }
    assert replayed and replayed <= seen
    # source = "all" reaches windows stage 0 never showed.
    cfg_all = _cfg(
        tmp_path,
        {"fraction": 0.5, "policy": "uniform", "domains": ["a"], "source": "all"},
        steps=(5, 5, 40),
    )
    batches = _drive(MixtureSampler(cfg_all, _domains()), 50)
    replayed_all = {
        int(r[0])
        for b in batches
        if b.stage == 2
        for r, f in zip(b.tokens, b.replay, strict=True)
        if f
    }
    assert replayed_all - seen


def _recall_gaps(tmp_path, policy: str) -> tuple[float, list]:
    """Mean steps between two steps that show the same replayed window, and the batches.
    Stage 0 trains only 60 windows of a, so stage 2 replays a small pool often."""
    replay = {"fraction": 0.25, "policy": policy, "domains": ["a"], "interval": 4}
    bt = SEQ * ROWS
    stages = [
        {"name": "s0", "tokens": 60 * SEQ, "mix": {"a": 1.0}},
        {"name": "s1", "tokens": 2 * bt, "mix": {"b": 1.0}},
        {"name": "s2", "tokens": 600 * bt, "mix": {"d": 1.0}, "replay": replay},
    ]
    doms = {k: {"source": "x", "max_epochs": 1e6} for k in "abcd"}
    cfg = make_config(tmp_path / policy, doms, stages, train={"seq_len": SEQ, "batch_tokens": bt})
    sampler = MixtureSampler(cfg, _domains())
    sampler.start_stage(2)
    batches = [sampler.next_batch() for _ in range(600)]
    shown: dict[int, list[int]] = {}
    for s, b in enumerate(batches):
        for w in {int(r[0]) for r in b.tokens[b.replay]}:
            shown.setdefault(w, []).append(s)
    gaps = [g for steps in shown.values() for g in np.diff(steps)]
    return float(np.mean(gaps)), batches


def test_recall_interval_rests_longer_than_plain_replay(tmp_path):
    # Kang et al. 2025: each replayed window is trained V = 4 times within one step,
    # then rests; at equal compute a step holds 10 / 4 -> 3 distinct windows instead
    # of 10, so the interval between two recalls of a window grows, never shrinks.
    plain, _ = _recall_gaps(tmp_path, "uniform")
    recall, batches = _recall_gaps(tmp_path, "recall-interval")
    assert recall >= 2.5 * plain
    for b in batches[:50]:
        rows = [tuple(r) for r in b.tokens[b.replay].tolist()]
        assert len(rows) == 10  # equal compute: the replay share is unchanged
        # three draws of 4, 4 and 2 copies (two draws may hit the same window)
        assert len(set(rows)) <= 3 and all(rows.count(r) >= 2 for r in rows)


def test_max_epochs_is_checked_at_construction(tmp_path):
    cfg = _cfg(tmp_path, steps=(50, 50, 50), max_epochs=2.0)
    with pytest.raises(
        UserError, match=r"stages\[0\] would read domain 'a' .*domains.a.max_epochs = 2"
    ):
        MixtureSampler(cfg, _domains(SEQ * 10 + 1))


def test_world_size_must_divide_batch(tmp_path):
    with pytest.raises(UserError, match="cannot be split evenly over 3 ranks"):
        MixtureSampler(_cfg(tmp_path), _domains(), rank=0, world_size=3)


def test_state_from_other_data_is_refused(tmp_path):
    cfg = _cfg(tmp_path)
    state = MixtureSampler(cfg, _domains(200_000)).state_dict()
    with pytest.raises(UserError, match="does not match"):
        MixtureSampler(cfg, _domains(100_000)).load_state_dict(state)


@pytest.mark.parametrize(
    ("replay", "stage", "message"),
    [
        ({"fraction": 1.0}, 2, r"fraction must be a number in \[0, 1\)"),
        ({"fraction": 0.1, "policy": "lru"}, 2, "policy must be one of"),
        ({"fraction": 0.1, "domains": ["d"]}, 2, "'d' is not trained in an earlier stage"),
        ({"fraction": 0.1, "domains": ["zzz"]}, 2, "undeclared domain 'zzz'"),
        ({"fraction": 0.1}, 0, "first stage cannot replay"),
        ({"fraction": 0.1, "alpha": -1}, 2, "alpha must be"),
        ({"fraction": 0.1, "interval": 0}, 2, "interval must be"),
        ({"fraction": 0.1, "source": "future"}, 2, "source must be"),
        ({"fraction": 0.1, "rate": 2}, 2, "unknown key 'rate'"),
    ],
)
def test_validate_replay_names_the_key(tmp_path, replay, stage, message):
    cfg = _cfg(tmp_path)
    raw = cfg.to_dict()
    raw["stages"][stage]["replay"] = replay
    from rewarm import runconfig

    with pytest.raises(UserError, match=message) as err:
        runconfig.from_dict(raw, source="run.toml")
    assert str(err.value).startswith(f"run.toml: stages[{stage}].replay")


def test_resume_under_another_world_size(tmp_path):
    cfg = _cfg(tmp_path, {"fraction": 0.3, "policy": "power-law"}, steps=(10, 10, 10))
    doms = _domains(20_000)
    single = MixtureSampler(cfg, doms)
    _drive(single, 12)
    state = json.loads(json.dumps(single.state_dict()))
    expected = _drive(single, 10)
    halves = []
    for rank in range(2):
        s = MixtureSampler(cfg, doms, rank, 2)
        s.load_state_dict(state)
        halves.append(_drive(s, 10))
    for whole, a, b in zip(expected, *halves, strict=True):
        assert np.array_equal(np.concatenate([a.tokens, b.tokens]), whole.tokens)
        assert a.domains + b.domains == whole.domains


def test_epochs_by_domain_count_windows_drawn_over_windows_held(tmp_path):
    """Repetition per stage: rows drawn (replay included) / the domain's windows."""
    sizes = {"a": 801, "b": 1601, "c": 4001, "d": 801}
    domains = {k: fake_domain(k, n, OFFSETS[k]) for k, n in sizes.items()}
    cfg = _cfg(tmp_path, {"fraction": 0.25}, steps=(30, 30, 40))
    sampler = MixtureSampler(cfg, domains)
    _drive(sampler, 100)
    windows = {k: (n - 1) // SEQ for k, n in sizes.items()}
    for s in range(3):
        tokens, epochs = sampler.tokens_by_domain(s), sampler.epochs_by_domain(s)
        assert set(epochs) == set(tokens)
        for d, t in tokens.items():
            assert epochs[d] == pytest.approx(t / SEQ / windows[d], abs=1e-6)
    # Stage 0 drew 30 x 40 rows, 70% from a (100 windows) and 30% from b (200).
    assert sampler.epochs_by_domain(0) == pytest.approx({"a": 8.4, "b": 1.8}, abs=0.02)
    assert set(sampler.epochs_by_domain(2)) == {"a", "b", "c", "d"}  # replay counted
