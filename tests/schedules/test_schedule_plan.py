"""StagePlan: composition over stages, re-warm from the previous LR, the infinite
schedule across stages, resume safety (rebuild = same LRs, fingerprint, describe_change)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rewarm.config import config_from_dict
from rewarm.errors import UserError
from rewarm.schedules import StagePlan, StageSpec, build, describe_change


def plan2(first: dict, second: dict, peak1=1e-3, peak2=1e-3, n=1000.0) -> StagePlan:
    return StagePlan([StageSpec(n, first, peak1, "old"), StageSpec(n, second, peak2, "new")])


def test_boundaries_and_stage_at():
    plan = StagePlan(
        [StageSpec(100, {"kind": "constant"}, 1.0), StageSpec(50, {"kind": "constant"}, 2.0)]
    )
    assert plan.boundaries == (0.0, 100.0, 150.0)
    assert plan.stage_at(0) == (0, 0.0)
    assert plan.stage_at(99.5) == (0, 99.5)
    assert plan.stage_at(100) == (1, 0.0)  # a boundary belongs to the stage it starts
    assert plan.stage_at(150) == (1, 50.0)
    assert plan.stage_at(1e9) == (1, 50.0)  # clamped past the end
    with pytest.raises(ValueError):
        plan.stage_at(-1)
    assert plan.lr(99) == 1.0 and plan.lr(100) == 2.0


def test_lr_is_peak_times_the_stage_multiplier():
    plan = plan2({"kind": "cosine", "final_ratio": 0.1}, {"kind": "linear"}, 3e-4, 5e-4)
    for x in [0, 123, 999, 1000, 1500, 2000]:
        i, off = plan.stage_at(x)
        sched = build(plan.stages[i].spec, 1000)
        assert plan.multiplier(x) == sched(off)
        assert plan.lr(x) == plan.stages[i].peak_lr * sched(off)


@pytest.mark.parametrize("peak2", [1e-3, 5e-4, 2e-3])
def test_rewarm_starts_from_the_previous_stage_final_lr(peak2):
    plan = plan2(
        {"kind": "cosine", "final_ratio": 0.1},
        {"kind": "rewarm", "warmup": 100, "final_ratio": 0.05},
        peak1=1e-3,
        peak2=peak2,
    )
    end1 = 1e-3 * 0.1
    assert math.isclose(plan.lr(1000), end1, rel_tol=1e-12)  # continuous at the boundary
    assert math.isclose(plan.lr(1050), end1 + (peak2 - end1) * 0.5, rel_tol=1e-12)
    assert math.isclose(plan.lr(1100), peak2, rel_tol=1e-12)
    assert math.isclose(plan.lr(2000), 0.05 * peak2, rel_tol=1e-12)
    # The same stage with start = "zero" warms up from 0 instead.
    zero = plan2(
        {"kind": "cosine", "final_ratio": 0.1},
        {"kind": "rewarm", "warmup": 100, "final_ratio": 0.05, "start": "zero"},
        peak1=1e-3,
        peak2=peak2,
    )
    assert zero.lr(1000) == 0.0 and math.isclose(zero.lr(1050), peak2 / 2, rel_tol=1e-12)


def test_rewarm_depends_on_the_previous_peak():
    a = plan2({"kind": "constant"}, {"kind": "rewarm", "warmup": 100}, peak1=1e-3)
    b = plan2({"kind": "constant"}, {"kind": "rewarm", "warmup": 100}, peak1=4e-4)
    assert a.lr(1050) != b.lr(1050)
    assert describe_change(a.fingerprint(), b) == "stage 0 (old) peak_lr: 0.001 -> 0.0004"


def test_infinite_continues_its_constant_phase_into_the_next_stage():
    first = {"kind": "infinite", "warmup": 50, "cooldown_end": 400, "constant_ratio": 0.5}
    later = {"kind": "infinite", "constant_ratio": 0.5, "anneal_start": 600, "final_ratio": 0.05}
    plan = plan2(first, later)
    x = np.linspace(400, 1600, 1201)
    np.testing.assert_allclose(plan.lrs(x), 0.5e-3, rtol=1e-12)
    assert math.isclose(plan.lr(2000), 0.05e-3, rel_tol=1e-12)
    assert plan.lrs(np.array([1600.0, 1800.0, 2000.0])).tolist() == sorted(
        plan.lrs(np.array([1600.0, 1800.0, 2000.0])).tolist(), reverse=True
    )


def test_bad_stage_lengths_and_specs_are_user_errors():
    with pytest.raises(UserError, match=r"^stages\[0\]: length"):
        StagePlan([StageSpec(0, {"kind": "constant"}, 1.0)])
    with pytest.raises(UserError, match=r"^stages\[1\]\.schedule\.warmup"):
        plan2({"kind": "constant"}, {"kind": "cosine", "warmup": 5000})
    with pytest.raises(UserError):
        StagePlan([])


# -- property tests: resume, vectorisation, fingerprint -------------------------------

RATIO = st.floats(0.0, 1.0, allow_nan=False)
POS_RATIO = st.floats(0.01, 1.0, allow_nan=False)
FRAC = st.floats(0.0, 0.3, allow_nan=False)


@st.composite
def stage_specs(draw, total: int) -> dict:
    kind = draw(
        st.sampled_from(
            ["cosine", "linear", "rex", "wsd", "infinite", "rewarm", "constant", "wsd-s"]
        )
    )
    spec: dict = {"kind": kind, "warmup": round(draw(FRAC) * total)}
    if kind in ("cosine", "linear", "rex"):
        spec["final_ratio"] = draw(RATIO)
    elif kind == "wsd":
        spec.update(
            decay=round(draw(FRAC) * total),
            shape=draw(
                st.sampled_from(["linear", "cosine", "1-sqrt", "square", "exponential", "harmonic"])
            ),
            final_ratio=draw(POS_RATIO),
        )
    elif kind == "infinite":
        # a cooldown follows any warmup (else the warmup would stop at c, below the peak)
        c_end = spec["warmup"] + max(round(draw(FRAC) * total), 1 if spec["warmup"] else 0)
        spec.update(cooldown_end=c_end, constant_ratio=draw(POS_RATIO))
        if draw(st.booleans()):
            spec.update(anneal_start=c_end + round(draw(FRAC) * total), final_ratio=draw(POS_RATIO))
    elif kind == "rewarm":
        spec.update(start=draw(st.sampled_from(["previous", "zero"])), final_ratio=draw(RATIO))
    elif kind == "wsd-s":
        # whole periods after the warmup, so the stage ends at the end of a decay
        periods = draw(st.integers(1, 4))
        period = (total - spec["warmup"]) / periods
        spec.update(period=period, decay=0, final_ratio=draw(RATIO))
        spec["decay"] = period * draw(st.floats(0, 1))
    return spec


@st.composite
def raw_configs(draw) -> dict:
    n = draw(st.integers(1, 3))
    stages = []
    for i in range(n):
        tokens = 1024 * draw(st.integers(1, 50))
        stage = {
            "name": f"s{i}",
            "tokens": tokens,
            "mix": {"a": 1.0},
            "schedule": draw(stage_specs(tokens)),
        }
        if draw(st.booleans()):
            stage["lr"] = draw(st.floats(1e-5, 1e-2))
        stages.append(stage)
    return {
        "run": {"name": "r"},
        "domains": {"a": {"source": "a.txt"}},
        "train": {"seq_len": 64, "batch_tokens": 1024, "lr": draw(st.floats(1e-5, 1e-2))},
        "stages": stages,
    }


@settings(max_examples=30, deadline=None)
@given(raw_configs(), st.lists(st.floats(0.0, 1.0), min_size=1, max_size=30))
def test_a_plan_rebuilt_on_resume_gives_identical_lrs(raw, fractions):
    first = StagePlan.from_config(config_from_dict(raw, "run.toml"))
    # "Resume": a fresh process rebuilds the plan from the same config; only the
    # position survives. Every position, including the stored one, must agree exactly.
    resumed = StagePlan.from_config(config_from_dict(raw, "run.toml"))
    grid = np.concatenate(
        [
            np.linspace(0, first.total, 257),
            np.asarray(first.boundaries),
            [f * first.total for f in fractions],
        ]
    )
    assert np.array_equal(first.lrs(grid), resumed.lrs(grid))
    for x in grid:
        assert first.lr(float(x)) == resumed.lr(float(x))
    assert first.fingerprint() == resumed.fingerprint()
    assert describe_change(first.fingerprint(), resumed) is None


@settings(max_examples=30, deadline=None)
@given(raw_configs())
def test_vectorised_lrs_equal_scalar_lr(raw):
    plan = StagePlan.from_config(config_from_dict(raw, "run.toml"))
    grid = np.linspace(0, plan.total, 101)
    expected = np.array([plan.lr(float(x)) for x in grid])
    np.testing.assert_allclose(plan.lrs(grid), expected, rtol=1e-12, atol=0)
    assert np.all(plan.lrs(grid) >= 0)


@settings(max_examples=20, deadline=None)
@given(raw_configs(), st.data())
def test_any_lr_changing_edit_changes_the_fingerprint(raw, data):
    old = StagePlan.from_config(config_from_dict(raw, "run.toml"))
    i = data.draw(st.integers(0, len(raw["stages"]) - 1))
    stage = raw["stages"][i]
    sched = stage["schedule"]
    if sched["kind"] == "wsd-s":  # keep whole periods (a stage must end after a decay)
        periods = round((stage["tokens"] - sched["warmup"]) / sched["period"])
        sched["period"] = (stage["tokens"] + 1024 - sched["warmup"]) / periods
        sched["decay"] = min(sched["decay"], sched["period"])
    stage["tokens"] += 1024
    new = StagePlan.from_config(config_from_dict(raw, "run.toml"))
    assert new.fingerprint() != old.fingerprint()
    msg = describe_change(old.fingerprint(), new)
    assert msg is not None and f"stage {i} (s{i}) length" in msg and "\n" not in msg


def test_describe_change_names_stage_and_key():
    a = plan2({"kind": "cosine", "final_ratio": 0.1}, {"kind": "wsd", "decay": 200})
    b = plan2(
        {"kind": "cosine", "final_ratio": 0.1}, {"kind": "wsd", "decay": 300, "shape": "linear"}
    )
    assert describe_change(a.fingerprint(), b) == (
        'stage 1 (new) schedule.decay: 200.0 -> 300.0; stage 1 (new) schedule.shape: "1-sqrt" -> "linear"'
    )
    c = plan2({"kind": "cosine", "final_ratio": 0.1}, {"kind": "cosine"})
    assert 'stage 1 (new) schedule.kind: "wsd" -> "cosine"' in describe_change(a.fingerprint(), c)
    # Spelling out a default changes no LR, hence nothing to report.
    d = plan2(
        {"kind": "cosine", "final_ratio": 0.1, "warmup": 0}, {"kind": "wsd", "shape": "1-sqrt"}
    )
    assert describe_change(a.fingerprint(), d) is None
    one = StagePlan([StageSpec(1000.0, {"kind": "cosine", "final_ratio": 0.1}, 1e-3)])
    assert describe_change(one.fingerprint(), a) == "number of stages: 1 -> 2"
    assert describe_change("not json", a) is not None


def test_refined_file_contents_are_fingerprinted(tmp_path):
    path = tmp_path / "g.txt"
    path.write_text(" ".join(str(1 + i % 7) for i in range(100)))
    spec = {"kind": "refined", "grad_norms": str(path)}
    old = StagePlan([StageSpec(1000, spec, 1e-3)])
    path.write_text(" ".join(str(1 + i % 5) for i in range(100)))
    new = StagePlan([StageSpec(1000, spec, 1e-3)])
    assert "schedule.grad_norms" in describe_change(old.fingerprint(), new)
