"""Fitting: recovers a known law, is deterministic, meets the accuracy bar on real curves."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from rewarm.errors import UserError
from rewarm.laws.curves import PAPER_FIT, PAPER_HELD_OUT, Curve, read_paper_curve
from rewarm.laws.fit import evaluate_curves, fit, load_fit, make_law, save_fit
from rewarm.laws.goodness import curve_mean, fit_metrics
from rewarm.laws.mpl import MPLaw

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data" / "loss-curves"
TRUE = {"L0": 3.0, "A": 0.6, "alpha": 0.45, "B": 350.0, "C": 1.5, "beta": 0.5, "gamma": 0.5}


def synthetic(kind: str, total: int = 6000, warmup: int = 300, noise: float = 0.0) -> Curve:
    s = np.arange(total + 1, dtype=np.float64)
    lr = np.full(total + 1, 3e-4)
    lr[:warmup] = 3e-4 * s[:warmup] / warmup
    p = (s[warmup:] - warmup) / (total - warmup)
    if kind == "cosine":
        lr[warmup:] = 3e-5 + 2.7e-4 * (1 + np.cos(np.pi * p)) / 2
    elif kind == "step":
        lr[total // 2 :] = 6e-5
    steps = np.arange(warmup + 64, total + 1, 64)
    loss = MPLaw().predict(lr, warmup, TRUE, steps)
    loss = loss * (1 + noise * np.random.default_rng(0).standard_normal(steps.size))
    return Curve(kind, steps, loss, lr, warmup)


def test_metrics_formulas() -> None:
    y = np.array([2.0, 4.0])
    m = fit_metrics(y, np.array([2.2, 3.6]))
    assert np.isclose(m["mae"], 0.3) and np.isclose(m["rmse"], np.sqrt(0.1))
    assert np.isclose(m["pred_e"], (0.1 + 0.1) / 2) and np.isclose(m["worst_e"], 0.1)
    assert np.isclose(m["r2"], 1 - 0.2 / 2.0)


def test_mpl_fit_recovers_a_known_law_and_predicts_a_new_schedule() -> None:
    train = [
        synthetic("cosine", noise=2e-4),
        synthetic("constant", noise=2e-4),
        synthetic("step", noise=2e-4),
    ]
    law = make_law("mpl")
    res = fit(train, law, starts=2, max_iter=200, method="lbfgs")
    # a schedule not fitted: WSD with a linear cooldown
    c = synthetic("constant")
    lr = c.lr.copy()
    lr[4800:] = np.linspace(3e-4, 3e-5, lr.size - 4800)
    steps = c.steps
    truth = MPLaw().predict(lr, c.warmup, TRUE, steps)
    pred = law.predict(lr, c.warmup, res.params, steps)
    assert fit_metrics(truth, pred)["pred_e"] < 5e-4
    assert res.metrics["all"]["pred_e"] < 5e-4


def test_staged_mpl_fit_tracks_a_known_law_and_is_deterministic() -> None:
    """The paper's two-stage fit (short Adam refinement) is not run to convergence,
    so it gets close to, not onto, the true curve; it must still predict a new
    schedule well and give bit-identical parameters on a second run."""
    train = [synthetic("cosine", noise=2e-4), synthetic("constant", noise=2e-4)]
    train.append(synthetic("step", noise=2e-4))
    law = make_law("mpl")
    a = fit(train, law)
    b = fit(train, law)
    assert a.params == b.params and a.options["method"] == "staged"
    c = synthetic("constant")
    lr = c.lr.copy()
    lr[4800:] = np.linspace(3e-4, 3e-5, lr.size - 4800)
    truth = MPLaw().predict(lr, c.warmup, TRUE, c.steps)
    assert fit_metrics(truth, law.predict(lr, c.warmup, a.params, c.steps))["pred_e"] < 2e-3
    # far better than stage 1 alone would give: the refinement moved C, beta, gamma
    assert (a.params["C"], a.params["beta"], a.params["gamma"]) != (1.0, 0.5, 0.5)
    with pytest.raises(UserError):
        fit(train, make_law("tissue"), method="staged")


def literal_warmup_ld(lr: np.ndarray, p: dict[str, float], s: int) -> float:
    """MPL as the paper's released code evaluates it, written out: the loss at step s
    follows the LRs of steps 0..s-1, and LD runs over every drop from step 1 on
    (the warmup's increases included)."""
    area = lr[:s].sum()
    ld = 0.0
    for k in range(1, s):
        x = p["C"] * lr[k] ** -p["gamma"] * lr[k:s].sum()
        ld += (lr[k - 1] - lr[k]) * (1.0 - (1.0 + x) ** -p["beta"])
    return p["L0"] + p["A"] * area ** -p["alpha"] - p["B"] * ld


def test_warmup_ld_form_is_the_literal_double_sum(tmp_path: Path) -> None:
    c = synthetic("cosine", 1200, 100)
    c.lr[0] = 1e-6  # a ramp that starts above 0, so the first LR enters too
    law = make_law("mpl", warmup_ld=True)
    steps = np.array([101, 150, 640, 1200])
    want = [literal_warmup_ld(c.lr, TRUE, int(s)) for s in steps]
    np.testing.assert_allclose(law.predict(c.lr, 100, TRUE, steps), want, rtol=1e-10)
    exact = MPLaw(block=1, warmup_ld=True)
    cv = Curve("x", steps, np.ones(steps.size), c.lr, 100)
    with torch.no_grad():
        pt = {k: torch.tensor(v, dtype=torch.float64) for k, v in TRUE.items()}
        got = exact.design(cv).evaluate(pt).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-10)
    # the form travels with a saved fit, so predictions use the law that was fitted
    res = fit([synthetic("cosine", noise=2e-4), synthetic("step", noise=2e-4)], law, method="paper")
    assert res.options["warmup_ld"] is True
    save_fit(res, tmp_path / "fit.json")
    back = load_fit(tmp_path / "fit.json")
    np.testing.assert_allclose(
        back.predict(c.lr, 100, steps), law.predict(c.lr, 100, res.params, steps)
    )
    with pytest.raises(UserError):
        fit([c], make_law("mpl"), method="paper")


def test_curve_mean_weighs_curves_equally() -> None:
    per = {
        "a": fit_metrics(np.array([1.0, 1.0, 1.0]), np.array([1.0, 1.0, 1.3])),
        "b": fit_metrics(np.array([2.0]), np.array([2.0])),
    }
    m = curve_mean(per)
    assert np.isclose(m["pred_e"], 0.1 / 2) and np.isclose(m["worst_e"], 0.3 / 2)
    assert m["points"] == 4


def test_fit_is_deterministic_and_round_trips(tmp_path: Path) -> None:
    train = [synthetic("cosine", 3000, 200, 1e-3), synthetic("constant", 3000, 200, 1e-3)]
    a = fit(train, make_law("tissue"), starts=2)
    b = fit(train, make_law("tissue"), starts=2)
    assert a.params == b.params
    save_fit(a, tmp_path / "fit.json")
    back = load_fit(tmp_path / "fit.json")
    assert back.params == a.params and back.law == "tissue"
    steps = train[0].steps
    np.testing.assert_allclose(
        back.predict(train[0].lr, 200, steps),
        make_law("tissue").predict(train[0].lr, 200, a.params, steps),
    )


def test_tissue_with_fitted_lambda_stays_in_bounds() -> None:
    train = [synthetic("cosine", 3000, 200), synthetic("step", 3000, 200)]
    res = fit(train, make_law("tissue", lam=None), starts=1, max_iter=100)
    assert 0.9 <= res.params["lam"] <= 0.99999
    assert res.metrics["all"]["pred_e"] < 3e-3


@pytest.mark.skipif(not SHARED.is_dir(), reason="shared loss curves not present")
@pytest.mark.parametrize("method", ["staged", "paper"])
@pytest.mark.parametrize("size", ["25M", "100M"])
def test_mpl_papers_protocol_reaches_published_accuracy(size: str, method: str) -> None:
    """Published (curve means): PredE 0.00110 / 0.00142, WorstE 0.00409 / 0.00583.
    `paper` (the released code's procedure) must meet them, with 2% for float
    differences between platforms; the default `staged` lands within ~2% of them
    (docs/laws.md), its bars leave ~10%."""

    train = [read_paper_curve(SHARED, size, n) for n in PAPER_FIT]
    held = [read_paper_curve(SHARED, size, n) for n in PAPER_HELD_OUT]
    law = MPLaw(warmup_ld=method == "paper")
    res = fit(train, law, method=method)
    per = evaluate_curves(law, res.params, held)
    m = curve_mean({k: v for k, v in per.items() if k != "all"})
    published = {"25M": (0.00110, 0.00409), "100M": (0.00142, 0.00583)}[size]
    slack = 1.02 if method == "paper" else 1.1
    bar = (published[0] * slack, published[1] * slack)
    assert m["pred_e"] < bar[0] and m["worst_e"] < bar[1], m
    assert per["all"]["pred_e"] < 0.002, per["all"]
