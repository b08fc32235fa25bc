"""Every kind against its formula (docs/schedules.md) at boundaries and interior points."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rewarm.errors import UserError
from rewarm.schedules import KINDS, build

T = 1000.0


def close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-12)


def check(spec: dict, expected, points, total: float = T) -> None:
    s = build(spec, total)
    for t in points:
        assert close(s(t), expected(t)), (spec, t, s(t), expected(t))
    # The vectorised path gives the same numbers.
    np.testing.assert_allclose(
        s.values(np.array(points, float)), [expected(t) for t in points], rtol=1e-12, atol=1e-12
    )


POINTS = [0, 1, 37.5, 100, 250, 499, 500, 777, 800, 801, 900, 999, 1000]


def warm(t, w, s0=0.0, target=1.0):
    return s0 + (target - s0) * t / w


@pytest.mark.parametrize("s0", [0.0, 0.01, 0.5])
def test_warmup_is_linear_from_the_start_ratio(s0):
    s = build({"kind": "constant", "warmup": 100, "warmup_start": s0}, T)
    assert close(s(0), s0)
    assert close(s(25), s0 + (1 - s0) * 0.25)
    assert close(s(100), 1.0)
    assert close(s(600), 1.0)


def test_constant():
    check({"kind": "constant"}, lambda t: 1.0, POINTS)


def test_linear():
    f, w = 0.1, 100

    def m(t):
        return warm(t, w) if t < w else f + (1 - f) * (1 - (t - w) / (T - w))

    check({"kind": "linear", "warmup": w, "final_ratio": f}, m, POINTS)


def test_cosine():
    f, w = 0.1, 100

    def m(t):
        if t < w:
            return warm(t, w)
        return f + (1 - f) * (1 + math.cos(math.pi * (t - w) / (T - w))) / 2

    check({"kind": "cosine", "warmup": w, "final_ratio": f}, m, POINTS)
    s = build({"kind": "cosine", "warmup": w, "final_ratio": f}, T)
    assert close(s(w + (T - w) / 2), f + (1 - f) / 2)


def test_polynomial():
    f, pw = 0.05, 2.5
    check(
        {"kind": "polynomial", "final_ratio": f, "power": pw},
        lambda t: f + (1 - f) * (1 - t / T) ** pw,
        POINTS,
    )


def test_exponential():
    f = 0.01
    check({"kind": "exponential", "final_ratio": f}, lambda t: f ** (t / T), POINTS)


def test_rex():
    f = 0.1

    def m(t):
        p = t / T
        return f + (1 - f) * (1 - p) / (1 - p / 2)

    check({"kind": "rex", "final_ratio": f}, m, POINTS)


def test_inverse_sqrt():
    w = 100
    check(
        {"kind": "inverse-sqrt", "warmup": w},
        lambda t: warm(t, w) if t < w else math.sqrt(w / max(t, w)),
        POINTS,
    )
    s = build({"kind": "inverse-sqrt", "warmup": 100, "timescale": 400}, T)
    assert close(s(100), 1.0) and close(s(400), 1.0) and close(s(900), math.sqrt(400 / 900))


def test_step_and_multistep():
    check(
        {"kind": "step", "step_size": 300, "gamma": 0.5},
        lambda t: 0.5 ** math.floor(t / 300),
        POINTS,
    )
    ms = [250, 800]
    check(
        {"kind": "multistep", "milestones": ms, "gamma": 0.1},
        lambda t: 0.1 ** sum(t >= x for x in ms),
        POINTS,
    )


def test_cosine_restarts():
    f, period, mult = 0.0, 100.0, 2.0
    # cycles [0,100], (100,300], (300,700], (700,1500]
    starts, lengths = [0, 100, 300, 700], [100, 200, 400, 800]

    def m(t):
        i = 0 if t <= 100 else 1 if t <= 300 else 2 if t <= 700 else 3
        p = (t - starts[i]) / lengths[i]
        return f + (1 - f) * (1 + math.cos(math.pi * p)) / 2

    check(
        {"kind": "cosine-restarts", "period": period, "period_mult": mult},
        m,
        POINTS + [100, 100.5, 300, 700, 701],
    )
    s = build({"kind": "cosine-restarts", "period": 250, "final_ratio": 0.2}, T)
    assert close(s(250), 0.2) and s(250.001) > 0.9999 and close(s(375), 0.6)


def test_triangular_defaults_give_smith():
    base, period = 0.2, 200.0
    half = period / 2

    def smith(t):
        cycle = math.floor(1 + t / period)
        x = abs(t / half - 2 * cycle + 1)
        return base + (1 - base) * max(0.0, 1 - x)

    check({"kind": "triangular", "period": period, "base_ratio": base}, smith, POINTS)


def test_triangular2_halves_the_amplitude():
    s = build({"kind": "triangular", "period": 200, "base_ratio": 0.0, "mode": "triangular2"}, T)
    assert close(s(100), 1.0) and close(s(300), 0.5) and close(s(500), 0.25)
    assert close(s(200), 0.0) and close(s(400), 0.0)


def test_one_cycle():
    w = 300
    s0, f = 0.04, 4e-6

    def m(t):
        if t < w:
            return warm(t, w, s0)
        return f + (1 - f) * (1 + math.cos(math.pi * (t - w) / (T - w))) / 2

    check({"kind": "one-cycle"}, m, POINTS)


WSD_SHAPES = {
    "linear": lambda p, f: f + (1 - f) * (1 - p),
    "cosine": lambda p, f: f + (1 - f) * (1 + math.cos(math.pi * p)) / 2,
    "1-sqrt": lambda p, f: f + (1 - f) * (1 - math.sqrt(p)),
    "square": lambda p, f: f + (1 - f) * (1 - p * p),
    "exponential": lambda p, f: f**p,
    "harmonic": lambda p, f: 1 / (1 + (1 / f - 1) * p),
}


@pytest.mark.parametrize("shape", list(WSD_SHAPES))
def test_wsd_every_shape(shape):
    w, d, f = 100, 200, 0.05

    def m(t):
        if t < w:
            return warm(t, w)
        if t <= T - d:
            return 1.0
        return WSD_SHAPES[shape]((t - (T - d)) / d, f)

    check({"kind": "wsd", "warmup": w, "decay": d, "shape": shape, "final_ratio": f}, m, POINTS)


def test_wsd_harmonic_inverse_is_linear():
    s = build({"kind": "wsd", "decay": 1000, "shape": "harmonic", "final_ratio": 0.1}, T)
    inv = 1 / s.values(np.linspace(0, T, 11))
    np.testing.assert_allclose(np.diff(inv), np.full(10, 0.9), rtol=1e-12)


def test_wsd_s_periods_restart_at_peak():
    f = 0.0
    spec = {"kind": "wsd-s", "period": 400, "decay": 100, "shape": "linear", "final_ratio": f}

    def m(t):
        v = t - 400 * (math.ceil(t / 400) - 1) if t > 0 else 0.0
        return 1.0 if v <= 300 else f + (1 - f) * (1 - (v - 300) / 100)

    # Three whole periods: a WSD-S stage must be a whole number of them (see below).
    check(spec, m, POINTS + [300, 350, 400, 400.5, 750, 800], total=1200.0)
    s = build(spec, 1200.0)
    assert close(s(400), f) and close(s(401), 1.0)


def test_wsd_s_stage_ends_at_its_final_lr():
    spec = {"kind": "wsd-s", "warmup": 100, "period": 300, "decay": 60, "final_ratio": 0.1}
    assert close(build(spec, 1000.0).end_value, 0.1)  # 900 = 3 periods after warmup
    # 1000 positions after warmup are not whole periods: the stage would end at the peak.
    with pytest.raises(UserError, match=r"schedule\.period \(300\) must divide"):
        build(spec, 1100.0)
    # No decay at all is a constant schedule; any length is fine.
    assert close(build({**spec, "decay": 0}, 1100.0).end_value, 1.0)


def test_infinite_without_cooldown_after_a_warmup_is_refused():
    # cooldown_end defaults to warmup: the warmup would rise to c, never to the peak.
    spec = {"kind": "infinite", "warmup": 100, "constant_ratio": 0.5}
    with pytest.raises(UserError, match=r"schedule\.cooldown_end must be > warmup"):
        build(spec, T)
    assert close(max(build({**spec, "cooldown_end": 300}, T).values(np.arange(0, T))), 1.0)
    # warmup = 0 is the continuation form: constant c from the start.
    assert close(build({"kind": "infinite", "constant_ratio": 0.5}, T)(0), 0.5)


@pytest.mark.parametrize("cool", ["cosine", "linear", "inverse-sqrt"])
@pytest.mark.parametrize("anneal", ["exponential", "linear", "cosine"])
def test_infinite(cool, anneal):
    w, c_end, c, a, f = 50, 400, 0.5, 800, 0.05

    def g(x):
        return 1 / math.sqrt(1 + 10 * x) - 1

    cools = {
        "cosine": lambda q: c + (1 - c) * (1 + math.cos(math.pi * q)) / 2,
        "linear": lambda q: c + (1 - c) * (1 - q),
        "inverse-sqrt": lambda q: 1 + (c - 1) * g(q) / g(1),
    }
    anneals = {
        "exponential": lambda r: c * (f / c) ** r,
        "linear": lambda r: f + (c - f) * (1 - r),
        "cosine": lambda r: f + (c - f) * (1 + math.cos(math.pi * r)) / 2,
    }

    def m(t):
        if t < w:
            return warm(t, w)
        if t < c_end:
            return cools[cool]((t - w) / (c_end - w))
        if t <= a:
            return c
        return anneals[anneal]((t - a) / (T - a))

    spec = {
        "kind": "infinite", "warmup": w, "cooldown_end": c_end, "constant_ratio": c,
        "anneal_start": a, "final_ratio": f, "cooldown_shape": cool, "anneal_shape": anneal,
    }  # fmt: skip
    check(spec, m, POINTS + [50, 400, 600])
    s = build(spec, T)
    assert close(s(w), 1.0) and close(s(c_end), c) and close(s(a), c) and close(s(T), f)


def test_infinite_without_anneal_stays_constant():
    s = build({"kind": "infinite", "constant_ratio": 0.25}, T)
    np.testing.assert_array_equal(s.values(np.linspace(0, T, 101)), 0.25)


def test_branch_decays_from_the_main_branch_value():
    main = {"kind": "infinite", "warmup": 100, "cooldown_end": 500, "constant_ratio": 0.5}
    spec = {
        "kind": "branch",
        "at": 2000,
        "main": main,
        "main_total": 5000,
        "shape": "linear",
        "final_ratio": 0.0,
        "decay": 500,
    }
    s = build(spec, T)
    assert close(s(0), 0.5) and close(s(250), 0.25) and close(s(500), 0.0) and close(s(900), 0.0)
    # Default main branch: constant at the peak (WSD's stable phase).
    s = build({"kind": "branch", "at": 3000, "shape": "1-sqrt", "final_ratio": 0.1}, T)
    assert close(s(0), 1.0) and close(s(250), 0.1 + 0.9 * (1 - 0.5)) and close(s(T), 0.1)


def test_refined_matches_the_definition():
    g = [4.0, 3.0, 2.0, 1.0, 1.0, 2.0]
    spec = {"kind": "refined", "grad_norms": g, "median_window": 1}
    s = build({**spec, "optimizer": "sgd", "resample": False}, 5.0)
    w = [x**-2 for x in g]
    raw = [w[t] * sum(w[t + 1 :]) / sum(w) for t in range(len(g))]
    expected = [r / max(raw) for r in raw]
    for t in range(6):
        assert close(s(float(t)), expected[t])
    assert close(s(2.5), (expected[2] + expected[3]) / 2)  # linear between samples
    assert close(s(5.0), 0.0) and max(expected) == 1.0


def test_refined_median_filter_removes_a_spike(tmp_path):
    g = [2.0] * 50 + [100.0] + [2.0] * 49
    path = tmp_path / "norms.txt"
    path.write_text("\n".join(map(str, g)))
    raw = {"kind": "refined", "grad_norms": str(path), "optimizer": "sgd", "resample": False}
    plain = build({**raw, "median_window": 1}, 99.0)
    filtered = build({**raw, "median_window": 3}, 99.0)
    assert plain(50) < 0.01  # the spike's weight g^-2 is tiny
    assert filtered(50) > 0.9 * filtered(49)


def _authors_refined(norms: np.ndarray, l1: bool) -> np.ndarray:
    """Defazio et al.'s published procedure, step by step: resample to 10,000 points,
    median filter of width 2 * (int(0.1 * 10000) // 2) + 1 with a right-end 'reflect'
    pad of two widths, back to 10,000 points, then the closed form
    sched[t] = w[t] * tail[t + 1] / tail[-1] (0 at the end), divided by its max."""
    from scipy.ndimage import median_filter

    nvals = 10_000
    g = np.interp(np.linspace(0, 1, nvals), np.linspace(0, 1, len(norms)), norms)
    width = 2 * (int(0.1 * nvals) // 2) + 1
    pad = 2 * width
    g = median_filter(np.pad(g, (0, pad), mode="reflect"), size=width, mode="nearest")[:-pad]
    g = np.interp(np.linspace(0, 1, nvals), np.linspace(0, 1, len(g)), g)
    w = g**-1.0 if l1 else g**-2.0
    tail = np.flip(np.cumsum(np.flip(w)))
    sched = np.array(
        [0.0 if t == nvals - 1 else w[t] * tail[t + 1] / tail[-1] for t in range(nvals)]
    )
    return sched / sched.max()


def test_refined_for_adamw_is_the_authors_l1_rule():
    # A synthetic norm profile: large early norms, a slow rise, noise and a spike.
    rng = np.random.default_rng(0)
    n = 3000
    x = np.linspace(0, 1, n)
    norms = 5.0 * np.exp(-x / 0.03) + 1.0 + 0.8 * x + 0.1 * rng.standard_normal(n) ** 2
    norms[1500] = 40.0
    total = 1000.0
    s = build({"kind": "refined", "grad_norms": norms.tolist()}, total)  # AdamW by default
    expected = _authors_refined(norms, l1=True)
    grid = np.linspace(0, total, expected.size)
    np.testing.assert_allclose(s.values(grid), expected, rtol=1e-9, atol=1e-12)
    # The SGD rule (G^-2) is a different schedule: the optimizer decides.
    sgd = build({"kind": "refined", "grad_norms": norms.tolist(), "optimizer": "sgd"}, total)
    np.testing.assert_allclose(sgd.values(grid), _authors_refined(norms, l1=False), rtol=1e-9)
    assert abs(sgd(total / 2) - s(total / 2)) > 0.01


def test_rewarm_alone_warms_from_warmup_start_then_redecays():
    f, w = 0.1, 100
    spec = {"kind": "rewarm", "warmup": w, "warmup_start": 0.2, "final_ratio": f}

    def m(t):
        if t < w:
            return warm(t, w, 0.2)
        return f + (1 - f) * (1 + math.cos(math.pi * (t - w) / (T - w))) / 2

    check(spec, m, POINTS)


# -- shape properties shared by kinds ---------------------------------------------

CONTINUOUS = {
    "constant": {"warmup": 10},
    "linear": {"warmup": 10, "final_ratio": 0.1},
    "cosine": {"warmup": 10},
    "polynomial": {"power": 3},
    "exponential": {"final_ratio": 0.01},
    "inverse-sqrt": {"warmup": 10},
    "rex": {"final_ratio": 0.1},
    "triangular": {"period": 300, "mode": "triangular2"},
    "one-cycle": {},
    "wsd": {"warmup": 10, "decay": 300},
    "infinite": {
        "warmup": 10,
        "cooldown_end": 300,
        "constant_ratio": 0.3,
        "anneal_start": 700,
        "final_ratio": 0.01,
    },
    "branch": {"at": 10},
    "refined": {"grad_norms": [3, 2, 1.5, 1, 1, 1.2, 1.1]},
    "rewarm": {"warmup": 10},
}
NON_INCREASING_AFTER_WARMUP = set(CONTINUOUS) - {"triangular", "refined"} | {"step", "multistep"}


def test_the_tables_cover_every_kind():
    assert set(CONTINUOUS) | {"step", "multistep", "cosine-restarts", "wsd-s"} == set(KINDS)


@pytest.mark.parametrize("kind", sorted(CONTINUOUS))
def test_continuous_kinds_have_no_jumps(kind):
    s = build({"kind": kind, **CONTINUOUS[kind]}, T)
    # Every phase boundary lies on this grid; a jump would show as a gap between t and
    # t + 1e-7 (1-sqrt moves by sqrt(1e-7 / D) there, far below the bound).
    t = np.linspace(0, T, 20_001)
    gaps = np.abs(s.values(t + 1e-7) - s.values(t))
    assert gaps.max() < 1e-3, (kind, t[gaps.argmax()])


@pytest.mark.parametrize("kind", sorted(NON_INCREASING_AFTER_WARMUP))
def test_decaying_kinds_are_monotone(kind):
    spec = {"kind": kind, "warmup": 100, **CONTINUOUS.get(kind, {})}
    spec.update({"step": {"step_size": 300}, "multistep": {"milestones": [200, 600]}}.get(kind, {}))
    if kind == "branch":
        spec.pop("warmup")
    s = build(spec, T)
    w = s.warmup
    up = s.values(np.linspace(0, w, 1001))
    down = s.values(np.linspace(w, T, 10_001))
    assert np.all(np.diff(up) >= -1e-15)
    assert np.all(np.diff(down) <= 1e-15)
    assert down[0] >= down[-1]


def test_positions_outside_are_clamped():
    s = build({"kind": "linear", "final_ratio": 0.5}, T)
    assert s(-5) == s(0) == 1.0 and s(2 * T) == s(T) == 0.5


def test_calling_with_an_array_gives_the_vectorised_values():
    s = build({"kind": "cosine", "warmup": 10, "final_ratio": 0.1}, T)
    grid = np.linspace(0, T, 7)
    assert isinstance(s(250.0), float) and isinstance(s(np.float64(250.0)), float)
    np.testing.assert_array_equal(s(grid), s.values(grid))
    assert [s(float(x)) for x in grid] == s(grid).tolist()


@settings(max_examples=50, deadline=None, derandomize=True)
@given(
    st.floats(1.0, 200.0),
    st.floats(1.0, 3.0),
    st.floats(0.0, 1.0),
    st.floats(0.0, 0.9),
)
def test_cosine_restarts_matches_a_cycle_walk(period, mult, frac, f):
    s = build(
        {"kind": "cosine-restarts", "period": period, "period_mult": mult, "final_ratio": f}, T
    )
    u = frac * T
    start, length = 0.0, period
    while start + length < u:  # the cycle containing u; its end point belongs to it
        start, length = start + length, length * mult
    p = (u - start) / length if u > 0 else 0.0
    assert math.isclose(s(u), f + (1 - f) * (1 + math.cos(math.pi * p)) / 2, abs_tol=1e-9)
