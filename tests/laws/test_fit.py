"""Fitting: recovers a known law, is deterministic, meets the accuracy bar on real curves."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rewarm.laws.curves import Curve, read_csv
from rewarm.laws.fit import evaluate_curves, fit, load_fit, make_law, save_fit
from rewarm.laws.metrics import fit_metrics
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
    res = fit(train, law, starts=2, max_iter=200)
    # a schedule not fitted: WSD with a linear cooldown
    c = synthetic("constant")
    lr = c.lr.copy()
    lr[4800:] = np.linspace(3e-4, 3e-5, lr.size - 4800)
    steps = c.steps
    truth = MPLaw().predict(lr, c.warmup, TRUE, steps)
    pred = law.predict(lr, c.warmup, res.params, steps)
    assert fit_metrics(truth, pred)["pred_e"] < 5e-4
    assert res.metrics["all"]["pred_e"] < 5e-4


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
@pytest.mark.parametrize("size", ["25M", "100M"])
def test_mpl_papers_protocol_pred_error_below_0_003(size: str) -> None:
    def load(name: str) -> Curve:
        c = read_csv(SHARED / size / f"{name}.csv")
        return c.truncated(24000) if name.endswith("_24000") else c

    train = [load(n) for n in ("cosine_24000", "constant_24000", "wsdcon_9")]
    held = [
        load(n)
        for n in (
            "cosine_72000",
            "constant_72000",
            "wsd_20000_24000",
            "wsdld_20000_24000",
            "wsdcon_3",
            "wsdcon_18",
        )
    ]
    law = MPLaw()
    res = fit(train, law, starts=1, max_iter=150)
    m = evaluate_curves(law, res.params, held)["all"]
    assert m["pred_e"] < 0.003, m
