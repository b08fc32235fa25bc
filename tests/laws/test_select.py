"""The default fit: settings chosen by held-out folds on the curves given, and the
intervals those folds give (`laws.select`)."""

from __future__ import annotations

import numpy as np

from rewarm.laws.mpl import MPLaw
from rewarm.laws.select import Setting, predict_band, select_and_fit

from .test_fit import TRUE, synthetic

GOOD = Setting("staged", "staged")
POOR = Setting("staged, 1 Adam step", "staged", adam_steps=1)


def test_folds_choose_the_setting_that_predicts_held_out_curves_and_give_intervals() -> None:
    train = [
        synthetic(k, total=3000, warmup=200, noise=5e-4) for k in ("cosine", "constant", "step")
    ]
    res = select_and_fit(train, "mpl", (POOR, GOOD))
    scores = res.options["selection"]["held_out_pred_e"]
    assert res.options["setting"] == min(scores, key=scores.get)
    assert res.options["setting"] == "staged"  # one Adam step leaves C, beta, gamma at start
    folds = res.options["folds"]
    assert [f["left_out"] for f in folds][:3] == ["cosine", "constant", "step"]
    assert folds[3]["left_out"].startswith("horizon")
    # a schedule none of the fits saw: a WSD cooldown, predicted with its interval
    c = synthetic("constant", total=3000, warmup=200)
    lr = c.lr.copy()
    lr[2400:] = np.linspace(3e-4, 3e-5, lr.size - 2400)
    truth = MPLaw().predict(lr, c.warmup, TRUE, c.steps)
    centre, lo, hi = predict_band(res, lr, c.warmup, c.steps)
    assert np.all(lo <= centre) and np.all(centre <= hi) and np.all(hi > lo)
    assert np.mean((truth >= lo) & (truth <= hi)) >= 0.85


def test_one_curve_has_only_the_horizon_fold() -> None:
    res = select_and_fit([synthetic("cosine", total=3000, warmup=200)], "mpl", (GOOD,))
    (fold,) = res.options["folds"]
    assert fold["left_out"].startswith("horizon")


def test_every_knob_of_a_setting_reaches_the_fit() -> None:
    """A setting that differs only in weight decay must fit differently (it once was
    dropped on the way, so the menu's weight-decay setting was the plain one)."""
    from rewarm.laws.select import _fit

    train = [synthetic(k, total=3000, warmup=200, noise=5e-4) for k in ("cosine", "step")]
    plain = _fit(train, "mpl", GOOD, None)
    decayed = _fit(train, "mpl", Setting("wd", "staged", weight_decay=0.05), None)
    assert decayed.options["weight_decay"] == 0.05
    assert decayed.params != plain.params
