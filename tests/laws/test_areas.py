"""The vectorised sums against the O(n^2) references, on random schedules."""

from __future__ import annotations

import numpy as np
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from rewarm.laws import areas
from rewarm.laws.mpl import MPLaw, drop_blocks
from tests.laws.reference import ld_ref, mpl_ref, s1_ref, s2_ref


def random_schedule(seed: int, n: int, monotone: bool) -> np.ndarray:
    """Piecewise schedules with constant runs, jumps, smooth decays and (if not
    monotone) increases, spanning 1e-6 .. 1e-3."""
    rng = np.random.default_rng(seed)
    eta = np.empty(n + 1)
    i, level = 0, 10 ** rng.uniform(-4, -3)
    while i <= n:
        run = int(rng.integers(1, max(2, n // 4)))
        kind = rng.integers(3)
        seg = np.full(run, level)
        if kind == 1:  # smooth decay
            seg = level * np.linspace(1, rng.uniform(0.05, 1), run)
        elif kind == 2 and not monotone:
            seg = level * np.linspace(1, rng.uniform(1, 3), run)
        filled = min(run, n + 1 - i)
        eta[i : i + filled] = seg[:filled]
        i += filled
        level = eta[i - 1] * (rng.uniform(0.1, 1.0) if monotone else rng.uniform(0.3, 2.0))
        level = float(np.clip(level, 1e-6, 1e-3))
    return eta


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    n=st.integers(1, 120),
    monotone=st.booleans(),
    lam=st.floats(0.5, 0.9999),
)
def test_s1_s2_match_reference(seed: int, n: int, monotone: bool, lam: float) -> None:
    eta = random_schedule(seed, n, monotone)
    e = areas.as_tensor(eta)
    np.testing.assert_allclose(areas.forward_area(e).numpy(), s1_ref(list(eta)), rtol=1e-12, atol=0)
    ref = np.array(s2_ref(list(eta), lam))
    got = areas.annealing_area(e, lam).numpy()
    np.testing.assert_allclose(got, ref, rtol=1e-9, atol=1e-12 * np.abs(eta).max())


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    n=st.integers(1, 80),
    monotone=st.booleans(),
    c=st.floats(0.05, 20.0),
    beta=st.floats(0.02, 3.0),
    gamma=st.floats(0.0, 1.2),
)
def test_loss_drop_matches_reference(
    seed: int, n: int, monotone: bool, c: float, beta: float, gamma: float
) -> None:
    eta = random_schedule(seed, n, monotone)
    ref = np.array(ld_ref(list(eta), 1.0, c, beta, gamma))
    e = areas.as_tensor(eta)
    kernel = areas.power_kernel_sum(
        areas.lr_drops(e), c * e ** (-gamma), areas.forward_area(e), areas.as_tensor(beta)
    )
    got = ((e[0] - e) - kernel).numpy()
    # the quadrature error is relative to the total |drop| in the sum (~5e-8 at beta = 3)
    scale = np.sum(np.abs(eta[:-1] - eta[1:])) + 1e-300
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-7 * scale)


def test_full_mpl_curve_and_blocked_design_match_reference() -> None:
    rng = np.random.default_rng(3)
    p = {"L0": 2.0, "A": 0.5, "alpha": 0.5, "B": 400.0, "C": 2.0, "beta": 0.6, "gamma": 0.5}
    warmup, n = 20, 150
    lr = np.concatenate([3e-4 * np.arange(warmup) / warmup, random_schedule(7, n, False)])
    ref = np.array(mpl_ref(list(lr), warmup, p))
    full = MPLaw.full_curve(lr, warmup, p)
    np.testing.assert_allclose(full, ref, rtol=1e-9)
    # the fitting path at block=1 is the exact double sum at the observed steps
    from rewarm.laws.curves import Curve

    # (a curve's loss at step s follows the updates of steps < s: see update_lrs)
    sched = lr[1:]
    steps = np.sort(rng.choice(np.arange(warmup, warmup + n), 30, replace=False))
    curve = Curve("x", steps, np.ones(steps.size), sched, warmup - 1)
    law = MPLaw(block=1)
    with torch.no_grad():
        pt = {k: areas.as_tensor(v) for k, v in p.items()}
        got = law.design(curve).evaluate(pt).numpy()
    np.testing.assert_allclose(got, ref[steps - warmup], rtol=1e-12)
    np.testing.assert_allclose(law.predict(sched, warmup - 1, p, steps), got, rtol=1e-9)
    # on a cosine decay of 4000 steps observed every 128, blocks of 32 steps stay
    # within 5e-5 of the exact sum (second order in a block's LR area; this decay is
    # 5x faster than the public 24000-step cosine, where the gap is ~1e-6)
    m = 4000
    lr_cos = np.concatenate(
        [lr[:warmup], 3e-5 + 2.7e-4 * (1 + np.cos(np.pi * np.arange(m + 1) / m)) / 2]
    )
    obs = np.arange(warmup + 128, warmup + m + 1, 128)
    cos_curve = Curve("cos", obs, np.ones(obs.size), lr_cos, warmup)
    exact = MPLaw().predict(lr_cos, warmup, p, obs)
    law32 = MPLaw(block=32)
    with torch.no_grad():
        got32 = law32.design(cos_curve).evaluate(pt).numpy()
    np.testing.assert_allclose(got32, exact, atol=5e-5)


def test_final_loss_matches_curve_end() -> None:
    from rewarm.laws.tissue import TissueLaw

    p = {"L0": 2.0, "A": 0.5, "alpha": 0.5, "B": 400.0, "C": 2.0, "beta": 0.6, "gamma": 0.5}
    lr = np.concatenate([3e-4 * np.arange(10) / 10, random_schedule(11, 90, True)])
    for law in (MPLaw(), MPLaw(warmup_ld=True)):
        end = law.final_loss(areas.as_tensor(lr), 10, p)
        assert abs(float(end) - law.predict(lr, 10, p, np.array([lr.size - 1]))[0]) < 1e-10
    tl = TissueLaw(lam=0.99)
    pt = {"L0": 2.0, "A": 0.5, "alpha": 0.5, "C": 100.0}
    want = tl.predict(lr, 10, pt, np.array([lr.size - 1]))[0]
    assert abs(float(tl.final_loss(areas.as_tensor(lr), 10, pt)) - want) < 1e-10


def test_blocks_never_straddle_observed_steps() -> None:
    eta = np.linspace(1.0, 0.1, 101)
    t_obs = np.array([7, 30, 31, 100])
    drop, _, _, last = drop_blocks(eta, t_obs, 8)
    np.testing.assert_allclose(drop.sum(), 0.9)
    # every block's last step, compared with the observed steps, sits in one interval
    assert set(np.searchsorted(t_obs, last)) <= {0, 1, 2, 3}
    starts = np.concatenate([[1], last[:-1] + 1])
    assert np.all(np.searchsorted(t_obs, starts) == np.searchsorted(t_obs, last))
    assert np.all(last - starts < 8)


def test_72000_step_curve_is_fast() -> None:
    import time

    from rewarm.laws.known import known_lr

    lr, w = known_lr("cosine_72000")  # type: ignore[misc]
    p = {"L0": 3.0, "A": 0.5, "alpha": 0.5, "B": 500.0, "C": 2.0, "beta": 0.5, "gamma": 0.6}
    t0 = time.perf_counter()
    curve = MPLaw.full_curve(lr, w, p)
    assert time.perf_counter() - t0 < 5.0  # ~0.5 s on a busy 2-core CPU; O(n^2) is hours
    assert curve.shape == (72000 - w + 1,) and np.all(np.diff(curve[100:]) < 0)
