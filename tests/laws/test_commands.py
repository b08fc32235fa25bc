"""`rewarm fit`, `predict` and `plan` as a user runs them."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from rewarm.cli import main
from rewarm.laws.mpl import MPLaw

TRUE = {"L0": 3.0, "A": 0.6, "alpha": 0.45, "B": 350.0, "C": 1.5, "beta": 0.5, "gamma": 0.5}


def write_run_csv(path: Path, kind: str, total: int = 3000, warmup: int = 200) -> None:
    """A curve sampled every 50 steps whose LR column is sampled too."""
    s = np.arange(total + 1, dtype=np.float64)
    lr = np.full(total + 1, 3e-4)
    lr[:warmup] = 3e-4 * s[:warmup] / warmup
    if kind == "cosine":
        p = (s[warmup:] - warmup) / (total - warmup)
        lr[warmup:] = 3e-5 + 2.7e-4 * (1 + np.cos(np.pi * p)) / 2
    steps = np.arange(warmup + 50, total, 50)
    loss = MPLaw().predict(lr, warmup, TRUE, steps)
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["step", "lr", "loss"])
        for st, y in zip(steps, loss, strict=True):
            w.writerow([int(st), lr[st], y])


@pytest.fixture(scope="module")
def fitted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp_path = tmp_path_factory.mktemp("laws_cli")
    write_run_csv(tmp_path / "cos.csv", "cosine")
    write_run_csv(tmp_path / "const.csv", "constant")
    out = tmp_path / "fit.json"
    spec = '{kind = "cosine", warmup = 200, final_ratio = 0.1}'
    # the CSV's LR column is sampled every 50 steps; the spec rebuilds every step
    assert (
        main(
            [
                "fit",
                str(tmp_path / "cos.csv"),
                "--schedule",
                spec,
                "--total",
                "3000",
                "--peak",
                "3e-4",
                "--law",
                "mpl",
                "--starts",
                "1",
                "--out",
                str(out),
                "--plot",
                str(tmp_path / "fit.png"),
            ]
        )
        == 0
    )
    return out


def test_fit_prints_both_curves(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_run_csv(tmp_path / "cos.csv", "cosine", 1500, 100)
    write_run_csv(tmp_path / "const.csv", "constant", 1500, 100)
    spec = '{kind = "cosine", warmup = 100, final_ratio = 0.1}'
    assert (
        main(
            [
                "fit",
                str(tmp_path / "cos.csv"),
                "--schedule",
                spec,
                "--total",
                "1500",
                "--law",
                "tissue",
                "--starts",
                "1",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "PredE" in out and "cos" in out and "alpha" in out
    # without a spec the constant curve's interpolated LR column is exact
    assert main(["fit", str(tmp_path / "const.csv"), "--law", "tissue", "--lam", "0.99"]) == 0
    assert "const" in capsys.readouterr().out
    assert main(["fit", str(tmp_path / "const.csv"), "--lam", "2"]) == 2
    staged_tissue = ["fit", str(tmp_path / "const.csv"), "--law", "tissue", "--method", "staged"]
    assert main(staged_tissue) == 2


def test_fit_writes_json_and_png(fitted: Path) -> None:
    doc = json.loads(fitted.read_text())
    assert doc["law"] == "mpl" and set(doc["params"]) == set(TRUE)
    assert doc["metrics"]["all"]["pred_e"] < 5e-3
    assert (fitted.parent / "fit.png").stat().st_size > 10_000
    assert doc["options"]["peak"] == pytest.approx(3e-4)


def test_predict_csv_and_png(
    fitted: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "pred.csv"
    spec = '{kind = "wsd", warmup = 200, decay = 600, shape = "linear", final_ratio = 0.1}'
    assert (
        main(
            [
                "predict",
                str(fitted),
                "--schedule",
                spec,
                "--total",
                "3000",
                "--out",
                str(out),
                "--every",
                "10",
            ]
        )
        == 0
    )
    text = capsys.readouterr().out
    assert "final predicted loss" in text
    rows = list(csv.DictReader(out.open()))
    steps = [int(r["step"]) for r in rows]
    assert steps[0] == 201 and steps[-1] == 3000 and steps[1] - steps[0] == 10
    loss = np.array([float(r["loss"]) for r in rows])
    assert np.all(np.diff(loss) < 0)  # a decaying LR only lowers this law's loss
    assert float(rows[-1]["lr"]) == pytest.approx(3e-5)
    png = tmp_path / "pred.png"
    assert (
        main(["predict", str(fitted), "--schedule", spec, "--total", "3000", "--out", str(png)])
        == 0
    )
    assert png.stat().st_size > 10_000


def test_plan_ranks_default_candidates_and_optimises(
    fitted: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "plan.json"
    assert (
        main(
            [
                "plan",
                str(fitted),
                "--total",
                "3000",
                "--optimize",
                "--out",
                str(out),
                "--plot",
                str(tmp_path / "plan.png"),
            ]
        )
        == 0
    )
    doc = json.loads(out.read_text())
    losses = [r["final_loss"] for r in doc["ranking"]]
    assert losses == sorted(losses)
    labels = [r["label"] for r in doc["ranking"]]
    assert {"cosine", "constant", "wsd 1-sqrt 20%", "infinite c=0.5 anneal 10%"} <= set(labels)
    # constant and cosine are both non-increasing: the optimum can only be as good
    final = {r["label"]: r["final_loss"] for r in doc["ranking"]}
    opt = final["optimized (non-increasing)"]
    assert opt <= min(final["constant"], final["cosine"]) + 1e-4
    knots = doc["optimized_lr"]
    after = [lr for st, lr in zip(knots["steps"], knots["lr"], strict=True) if st > 200]
    assert all(b <= a + 1e-12 for a, b in zip(after, after[1:], strict=False))
    assert min(after) >= 0.01 * 3e-4 * (1 - 1e-9)
    assert "rank" in capsys.readouterr().out


def test_bad_inputs_exit_2(
    fitted: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["fit", str(tmp_path / "missing.csv")]) == 2
    assert "missing.csv" in capsys.readouterr().err
    assert main(["predict", str(fitted), "--schedule", "{kind = ", "--total", "10"]) == 2
    assert main(["predict", str(fitted), "--schedule", '{kind = "nope"}', "--total", "100"]) == 2
    assert "kind" in capsys.readouterr().err
    (tmp_path / "junk.json").write_text("{}")
    assert main(["plan", str(tmp_path / "junk.json"), "--total", "100"]) == 2
    assert main(["fit", str(tmp_path / "x.txt")]) == 2
