"""The CPT law (Wang, Tissue et al. 2025): its areas against literal loops, and the law's
parts (shift term, replay factors) against their definitions."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.optimize import minimize_scalar

from rewarm.laws import cpt


def _naive_areas(eta, transfer, lam, warmup):
    """Literal definitions: k updates done; PT = updates 1..min(k, T), CPT = T+1..k;
    momentum m_i = lam m_{i-1} + (eta_{i-1} - eta_i) from the warmup's end on."""
    n = len(eta)
    m = [0.0] * n
    for i in range(warmup + 1, n):
        m[i] = lam * m[i - 1] + (eta[i - 1] - eta[i])
    out = []
    for k in range(n):
        s1_pt = sum(eta[i] for i in range(1, min(k, transfer) + 1))
        s1_cpt = sum(eta[i] for i in range(transfer + 1, k + 1))
        s2_pt = sum(m[i] for i in range(1, min(k, transfer) + 1))
        s2_cpt = sum(m[i] for i in range(transfer + 1, k + 1))
        out.append((s1_pt, s1_cpt, s2_pt, s2_cpt))
    return np.array(out)


def _schedule(rng, n_pt=60, n_cpt=50):
    """Warmup, cosine-ish decay with noise, then a re-warm and a decay: LRs go up and down."""
    w = 8
    pt = np.concatenate(
        [
            np.linspace(0, 1e-3, w + 1)[1:],
            1e-3 * (0.1 + 0.9 * np.cos(np.linspace(0, 1.5, n_pt - w)) ** 2),
        ]
    )
    cpt_lr = np.concatenate([np.linspace(pt[-1], 8e-4, 6), 8e-4 * np.linspace(1, 0.05, n_cpt - 6)])
    eta = np.concatenate([[0.0], pt, cpt_lr]) * (1 + 0.05 * rng.random(n_pt + n_cpt + 1))
    return eta, n_pt, w


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("lam", [0.999, 0.9])
def test_vectorised_areas_equal_the_naive_loop(seed, lam):
    eta, transfer, w = _schedule(np.random.default_rng(seed))
    warm = cpt.warmup_end(eta)
    got = cpt.cpt_areas(eta, transfer, replay=0.1, lam=lam)
    ref = _naive_areas(list(eta), transfer, lam, warm)
    for j, field in enumerate(["s1_pt", "s1_cpt", "s2_pt", "s2_cpt"]):
        np.testing.assert_allclose(getattr(got, field), ref[:, j], rtol=1e-9, atol=1e-15)
    assert np.all(got.replay == 0.1)
    # A re-warm raises the LR: its negative drops pull S2cpt below that of staying at
    # the LR pre-training ended at.
    flat = eta.copy()
    flat[transfer + 1 :] = eta[transfer]
    stay = cpt.cpt_areas(flat, transfer, replay=0.1, lam=lam)
    assert got.s2_cpt[transfer + 5] < stay.s2_cpt[transfer + 5]


def _p(**over):
    base = dict(L0=2.0, A=0.5, alpha=0.4, C1=30.0, C2=20.0, B=0.3, E=50.0, beta=0.8, a1=0.0, a2=0.0)
    return {**base, **over}


def test_law_without_cpt_is_the_tissue_law_and_shift_is_a_power_law():
    eta, transfer, _ = _schedule(np.random.default_rng(0))
    a = cpt.cpt_areas(eta, transfer, replay=0.0)
    p = _p()
    y = cpt.predict(p, a)
    k = np.arange(1, transfer + 1)  # before the transfer: L0 + A S1^-alpha - C1 S2
    tissue = p["L0"] + p["A"] * a.s1_pt[k] ** -p["alpha"] - p["C1"] * a.s2_pt[k]
    np.testing.assert_allclose(y[k], tissue, rtol=1e-12)
    # After it: the difference to the same law with B = 0 is B (1 - (1 + E S1cpt)^-beta).
    diff = y[1:] - cpt.predict(_p(B=0.0), a)[1:]  # k = 0: no update yet, S1 = 0
    expected = p["B"] * (1 - (1 + p["E"] * a.s1_cpt[1:]) ** -p["beta"])
    np.testing.assert_allclose(diff, expected, rtol=1e-12, atol=1e-15)


def test_replay_factors():
    r_cpt = np.array([0.0, 0.25, 0.9, 1.0])
    for a2 in (-3.0, -1e-9, 0.0, 2.0):
        f, _ = cpt.shift_factor(r_cpt, a2)
        assert f[0] == pytest.approx(0.0, abs=1e-12) and f[-1] == pytest.approx(1.0)
        if abs(a2) > 1e-6:
            # proportional to the paper's 1 - exp(-a2 r_cpt) (old domain form)
            ref = (1 - np.exp(-a2 * r_cpt)) / (1 - math.exp(-a2))
            np.testing.assert_allclose(f, ref, rtol=1e-12)
        else:
            np.testing.assert_allclose(f, r_cpt, atol=1e-8)
    eta, transfer, _ = _schedule(np.random.default_rng(1))
    a0 = cpt.cpt_areas(eta, transfer, replay=0.0)
    a5 = cpt.cpt_areas(eta, transfer, replay=0.5)
    # No replay: a1 and a2 change nothing. Replay shrinks the shift and scales C2 S2cpt.
    np.testing.assert_allclose(cpt.predict(_p(a1=3.0, a2=5.0), a0), cpt.predict(_p(), a0))
    y = cpt.predict(_p(a1=1.0, a2=2.0), a5)
    f2 = (1 - math.exp(-2.0 * 0.5)) / (1 - math.exp(-2.0))
    base = cpt.predict(_p(B=0.0, C2=0.0), a5)
    shift = 0.3 * (1 - (1 + 50 * a5.s1_cpt) ** -0.8) * f2
    np.testing.assert_allclose(y, base - 20.0 * a5.s2_cpt * math.exp(0.5) + shift, rtol=1e-10)


def test_power_replay_factor():
    r = np.array([0.0, 0.05, 0.25, 0.5, 1.0])
    for a2 in (-1.5, 0.0, 0.7):
        f, _ = cpt.shift_factor(1.0 - r, a2, "power")
        # 1 - r^k, k = exp(a2): no replay keeps the whole shift, all replay none of it
        np.testing.assert_allclose(f, 1.0 - r ** math.exp(a2), rtol=1e-12, atol=1e-15)
        assert f[0] == 1.0 and f[-1] == 0.0
        g, _ = cpt.shift_factor(1.0 - r, a2, "power-new")  # a trained domain: (1 - r)^k
        np.testing.assert_allclose(g, (1.0 - r) ** math.exp(a2), rtol=1e-12, atol=1e-15)
        assert g[0] == 1.0 and g[-1] == 0.0
    # a2 = 0: every factor is 1 - r
    np.testing.assert_allclose(
        cpt.shift_factor(1.0 - r, 0.0, "power-new")[0], 1.0 - r, rtol=1e-12, atol=1e-15
    )
    np.testing.assert_allclose(
        cpt.shift_factor(1.0 - r, 0.0, "power")[0], cpt.shift_factor(1.0 - r, 0.0)[0], atol=1e-15
    )
    # Pinned to the same share at 5% (40% of the shift removed), the power form removes
    # less at 50% than the exponential one: it saturates more slowly.
    k = math.log(0.4) / math.log(0.05)  # 5% replay removes 40% of the shift
    a2 = minimize_scalar(
        lambda z: (cpt.shift_factor(np.array([0.95]), z)[0][0] - 0.6) ** 2,
        bounds=(-30, 30),
        method="bounded",
    ).x
    fp = cpt.shift_factor(1.0 - r, math.log(k), "power")[0]
    fe = cpt.shift_factor(1.0 - r, a2)[0]
    assert fp[1] == pytest.approx(0.6) and fe[1] == pytest.approx(0.6, abs=1e-6)
    assert fp[3] > fe[3]  # at 50%, the power form keeps more of the shift
    with pytest.raises(ValueError, match="unknown replay form"):
        cpt.shift_factor(r, 0.0, "linear")


@pytest.mark.parametrize(
    ("a2", "form"),
    [
        (0.0, "exp"),
        (1e-8, "exp"),
        (-2.0, "exp"),
        (3.0, "exp"),
        (0.0, "power"),
        (-1.2, "power"),
        (0.8, "power-new"),
    ],
)
def test_closed_form_jacobian_matches_finite_differences(a2, form):
    eta, transfer, _ = _schedule(np.random.default_rng(2))
    a = cpt.cpt_areas(eta, transfer, replay=0.3).take(np.arange(10, eta.size))
    p = _p(a1=0.7, a2=a2)
    _, jac = cpt.evaluate(p, a, jacobian=True, form=form)
    for name in cpt.NAMES:
        h = 1e-6 * max(abs(p[name]), 1.0)
        up = cpt.predict({**p, name: p[name] + h}, a, form)
        down = cpt.predict({**p, name: p[name] - h}, a, form)
        np.testing.assert_allclose(jac[name], (up - down) / (2 * h), rtol=1e-5, atol=1e-8)
