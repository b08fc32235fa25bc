"""Fitting the CPT law to rewarm runs, and `rewarm fit --law cpt`, `predict`, `plan`."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from rewarm.cli import main
from rewarm.errors import UserError
from rewarm.laws import cpt
from rewarm.laws.cpt_fit import (
    HUBER_DELTA,
    _linear_start,
    _Objective,
    cpt_fit_from_dict,
    domain_data,
    fit_cpt,
    fit_domain,
    load_raw,
    replay_fixed,
    save_cpt_fit,
    score_run,
)
from rewarm.laws.cpt_runs import read_cpt_run

from .cpt_runs import PT, TRUE, write_arm

ARMS = (("naive", 0.0), ("rewarm", 0.0), ("rewarm+replay", 0.05), ("rewarm+replay25", 0.25))


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cpt_runs")
    for arm, replay in ARMS:
        write_arm(root, arm, replay, noise=3e-4)
    return root


def test_run_reading_and_shared_pt_points(runs: Path) -> None:
    r = read_cpt_run(runs / "rewarm+replay")
    assert r.transfer == PT and r.replay == 0.05 and r.eta[0] == 0.0
    assert set(r.points) == {"docs", "code"}
    steps = r.points["docs"][0]
    assert steps[0] > r.warmup and steps[-1] == r.eta.size - 1
    # three arms share stage 1: its points are fitted once
    three = [read_cpt_run(runs / a) for a, _ in ARMS[:3]]
    data = domain_data(three, "docs", cpt.LAM)
    pt_points = int(np.sum(~data.cpt_point))
    assert pt_points == int(np.sum(steps <= PT))
    assert np.sum(data.cpt_point) == 3 * int(np.sum(steps > PT))


def test_fit_on_three_arms_predicts_another_replay_ratio(runs: Path) -> None:
    fit_runs = [read_cpt_run(runs / a) for a, _ in ARMS[:3]]
    result = fit_cpt(fit_runs, lam=cpt.LAM, replay_form="exp")  # the factor of the runs
    assert result.options["replay_fitted"] == [0.0, 0.05]
    assert {f.left_out for f in result.folds} == {"naive", "rewarm", "rewarm+replay"}
    for name, per in result.metrics.items():
        for d in TRUE:
            assert per[d]["pred_e"] < 2e-3, (name, d)
    # the arm with 25% replay was never fitted
    other = read_cpt_run(runs / "rewarm+replay25")
    scores = score_run(result, other)
    for d in TRUE:
        assert scores[f"cpt:{d}"]["pred_e"] < 0.01, d
    # with one replay ratio only, replay parameters stay 0
    single = fit_cpt(fit_runs[:2], folds=False)
    assert all(p["a1"] == 0.0 and p["a2"] == 0.0 for p in single.params.values())
    assert single.folds == []


def test_power_replay_form_is_fitted_and_predicts_other_ratios(tmp_path: Path) -> None:
    """Runs whose shift follows a power of each domain's own share (docs, replayed:
    F2 = 1 - r^k; code, trained: (1 - r)^k): fitted with that factor on replay 0 and
    5%, the law predicts 25% and 50%; the exponential factor, pinned at 5%, does not."""
    true = {
        "docs": {**TRUE["docs"], "a2": float(np.log(0.35))},  # 5% replay removes 35%
        "code": {**TRUE["code"], "a2": float(np.log(2.0))},  # 5%: keeps 90% of the gain
    }
    for arm, replay in (*ARMS[:3], ("r25", 0.25), ("r50", 0.5)):
        write_arm(tmp_path, arm, replay, true=true, form="power")
    fit_runs = [read_cpt_run(tmp_path / a) for a, _ in ARMS[:3]]
    power = fit_cpt(fit_runs, lam=cpt.LAM, folds=False, replay_form="power")
    exp = fit_cpt(fit_runs, lam=cpt.LAM, folds=False, replay_form="exp")
    assert power.form == "power" and power.options["trained"] == ["code"]
    assert power.domain_form("code") == "power-new" and power.domain_form("docs") == "power"
    for arm in ("r25", "r50"):
        run = read_cpt_run(tmp_path / arm)
        good, bad = score_run(power, run), score_run(exp, run)
        for d in TRUE:
            assert good[f"cpt:{d}"]["pred_e"] < 2e-3, (arm, d)
        assert bad["cpt:docs"]["pred_e"] > 3 * good["cpt:docs"]["pred_e"], arm
    # the form travels with the saved fit
    path = tmp_path / "fit.json"
    save_cpt_fit(power, path)
    raw = load_raw(path)
    assert cpt_fit_from_dict(raw, str(path)).form == "power"
    raw["options"]["replay_form"] = "cubic"
    with pytest.raises(UserError, match="replay_form"):
        cpt_fit_from_dict(raw, str(path))
    with pytest.raises(UserError, match="unknown replay form"):
        fit_cpt(fit_runs, replay_form="cubic")


def test_cpt_commands(runs: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "cpt.json"
    arms = [str(runs / a) for a, _ in ARMS[:3]]
    assert (
        main(["fit", *arms, "--law", "cpt", "--out", str(out), "--plot", str(tmp_path / "f.png")])
        == 0
    )
    text = capsys.readouterr().out
    assert "transfer at update 120" in text and "rewarm+replay" in text
    doc = json.loads(out.read_text())
    assert doc["law"] == "cpt" and set(doc["params"]) == {"code", "docs"}
    assert (tmp_path / "f.png").stat().st_size > 10_000
    # a logged run: scored against its evaluations
    assert main(["predict", str(out), "--run", str(runs / "rewarm+replay25")]) == 0
    assert "PredE" in capsys.readouterr().out
    # a new stage-2 schedule: every domain's curve with an interval
    csv_path = tmp_path / "pred.csv"
    spec = '{kind = "rewarm", warmup = 5, final_ratio = 0.1}'
    argv = ["predict", str(out), "--schedule", spec, "--total", "60", "--replay", "0.1"]
    assert main([*argv, "--out", str(csv_path)]) == 0
    rows = list(csv.DictReader(csv_path.open()))
    assert int(rows[-1]["step"]) == PT + 60
    for d in ("docs", "code"):
        lo, mid, hi = (float(rows[-1][k]) for k in (f"{d}_lo", d, f"{d}_hi"))
        assert lo <= mid <= hi and hi > lo
    # plan: weighted final losses, best first, with a frontier figure
    plan_json = tmp_path / "plan.json"
    png = tmp_path / "frontier.png"
    argv = ["plan", str(out), "--total", "60", "--weights", "docs=1,code=2", "--peaks", "0.5,1"]
    assert main([*argv, "--out", str(plan_json), "--plot", str(png)]) == 0
    ranking = json.loads(plan_json.read_text())["ranking"]
    scores = [r["score"] for r in ranking]
    assert scores == sorted(scores)
    best = ranking[0]
    assert best["score"] == pytest.approx(best["finals"]["docs"][0] + 2 * best["finals"]["code"][0])
    assert png.stat().st_size > 10_000
    assert {r["replay"] for r in ranking} >= {0.0, 0.05, 0.2}
    assert main(["plan", str(out), "--total", "60", "--weights", "math=1"]) == 2
    assert "not a fitted domain" in capsys.readouterr().err
    # the replay factor is a CPT option, saved with the fit and printed
    capsys.readouterr()
    assert main(["fit", arms[0], "--replay-form", "power"]) == 2
    assert "--replay-form power: applies to --law cpt only" in capsys.readouterr().err
    assert main(["fit", *arms, "--law", "cpt", "--replay-form", "power", "--out", str(out)]) == 0
    assert "(replay factor: power)" in capsys.readouterr().out
    assert json.loads(out.read_text())["options"]["replay_form"] == "power"


def test_objective_is_finite_where_a_trial_step_predicts_negative_losses(runs: Path) -> None:
    # L-BFGS-B's first step can land where the law predicts losses <= 0; a 1e30 wall
    # with a zero gradient there made its line search stop at the start point.
    fit_runs = [read_cpt_run(runs / a) for a, _ in ARMS[:3]]
    data = domain_data(fit_runs, "code", cpt.LAM)
    obj = _Objective(data, replay_fixed(2), HUBER_DELTA)
    good = obj.pack({**TRUE["code"]})
    bad = obj.pack({**TRUE["code"], "L0": 0.0, "B": -40.0})  # losses far below zero
    assert np.any(cpt.predict(obj.unpack(bad), data.areas) <= 0)
    f_bad, g_bad = obj.value_and_grad(bad)
    f_good, _ = obj.value_and_grad(good)
    assert f_good < f_bad < 1e6 and np.any(g_bad != 0)
    # the fit reaches well below its grid start on these exact-law runs
    _, value = fit_domain(data, 2)
    smax = float(data.areas.s1_cpt.max())
    start = _linear_start(data, {"alpha": 0.5, "E": 3.0 / smax, "beta": 0.5, "a1": 0, "a2": 0})
    assert start is not None
    assert value < obj.value_and_grad(obj.pack(start))[0]


def test_pretrain_only_runs_add_their_stage_1_and_nothing_after(
    runs: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # an arm with its own stage 1 (cosine to 0.5 x peak, not 0.1): the fit may see its
    # pre-training, never its CPT stage
    other = write_arm(tmp_path, "own-stage1", 0.05, noise=3e-4, pt_floor=0.5)
    full = read_cpt_run(other)
    pt = read_cpt_run(other, pretrain_only=True)
    assert pt.pretrain_only and pt.transfer == PT and pt.eta.size == PT + 1
    assert pt.replay == 0.0
    for d, (steps, _) in pt.points.items():
        assert steps[-1] == PT and steps.size == int(np.sum(full.points[d][0] <= PT))
    arms = [read_cpt_run(runs / a) for a, _ in ARMS[:3]]
    data = domain_data([*arms, pt], "docs", cpt.LAM)
    assert (
        data.loss.size == domain_data(arms, "docs", cpt.LAM).loss.size + pt.points["docs"][0].size
    )
    assert not np.any(data.cpt_point[data.run == 3])
    result = fit_cpt([*arms, pt], lam=cpt.LAM)
    assert {f.left_out for f in result.folds} == {"naive", "rewarm", "rewarm+replay"}
    assert result.options["replay_fitted"] == [0.0, 0.05]
    assert result.options["pretrain_only"] == ["own-stage1"]
    assert result.options["pt_run"] == "own-stage1" and len(result.options["pt_eta"]) == PT + 1
    # its CPT stage, never fitted, is predicted from its own pre-training
    scores = score_run(result, full)
    for d in TRUE:
        assert scores[f"cpt:{d}"]["pred_e"] < 0.01, d
    # a pre-training alone (one stage) reads only with pretrain_only
    alone = write_arm(tmp_path, "pretraining", 0.0, one_stage=True)
    with pytest.raises(UserError, match="pretraining.*stage after the first"):
        read_cpt_run(alone)
    assert read_cpt_run(alone, pretrain_only=True).transfer == PT
    with pytest.raises(UserError, match="every run is pre-training only.*own-stage1"):
        fit_cpt([pt])
    # the command: misuse names the run
    arm_dirs = [str(runs / a) for a, _ in ARMS[:3]]
    out = tmp_path / "fit.json"
    argv = ["fit", *arm_dirs, "--law", "cpt", "--lam", "0.999", "--pretrain-only", str(other)]
    assert main([*argv, "--out", str(out)]) == 0
    assert "pre-training only: own-stage1" in capsys.readouterr().out
    assert main(["fit", *arm_dirs, "--law", "cpt", "--pretrain-only", arm_dirs[0]]) == 2
    err = capsys.readouterr().err
    assert arm_dirs[0] in err and "both" in err
    assert main(["fit", *arm_dirs, "--pretrain-only", str(other)]) == 2
    assert "--law cpt only" in capsys.readouterr().err
