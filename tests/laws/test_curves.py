"""Reading curves: CSV + schedules, the shared files' built-in schedules, metrics.jsonl."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest

from rewarm.errors import UserError
from rewarm.laws.curves import parse_spec, read_csv, read_metrics, smooth
from rewarm.laws.known import known_lr

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data" / "loss-curves"


def write_csv(path: Path, rows: list[tuple[int, float, float]]) -> Path:
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["step", "lr", "loss"])
        w.writerows(rows)
    return path


MPL_400M = Path(__file__).resolve().parents[2] / "benchmarks" / "data" / "mpl-curves" / "400M"


@pytest.mark.skipif(not SHARED.is_dir(), reason="shared loss curves not present")
def test_builtin_schedules_reproduce_every_sampled_lr() -> None:
    _check_sampled_lrs(sorted(SHARED.glob("*/*.csv")))


def test_400m_curves_follow_the_builtin_schedules() -> None:
    """The paper's 400M curves (benchmarks/data/mpl-curves, not the test set) use the
    same nine schedules as the shared 25M and 100M ones."""
    paths = sorted(MPL_400M.glob("*.csv"))
    assert len(paths) == 9
    _check_sampled_lrs(paths)


def _check_sampled_lrs(paths: list[Path]) -> None:
    for path in paths:
        with path.open() as fh:
            rows = list(csv.DictReader(fh))
        steps = np.array([int(r["step"]) for r in rows])
        lrs = np.array([float(r["lr"]) for r in rows])
        lr, warmup = known_lr(path.stem)  # type: ignore[misc]
        assert warmup == 2160
        np.testing.assert_allclose(lr[steps], lrs, rtol=1e-9, err_msg=path.name)
        c = read_csv(path)
        assert c.steps[0] > warmup and c.lr is not None


def test_known_schedule_shapes() -> None:
    lr, w = known_lr("wsd_20000_24000")  # type: ignore[misc]
    assert lr[0] == 0 and math.isclose(lr[w], 3e-4) and math.isclose(lr[20000], 3e-4)
    assert math.isclose(lr[24000], 3e-5) and math.isclose(lr[22000], math.sqrt(3e-4 * 3e-5))
    lr, _ = known_lr("wsdcon_3")  # type: ignore[misc]
    assert lr[7999] == 3e-4 and math.isclose(lr[8000], 3e-5) and lr.size == 16001
    assert known_lr("my_run") is None


def test_csv_without_schedule_interpolates_and_finds_warmup(tmp_path: Path) -> None:
    rows = [(s, 1e-3 * min(s, 100) / 100, 5.0 - s / 1000) for s in range(0, 1001, 50)]
    c = read_csv(write_csv(tmp_path / "run.csv", rows))
    assert c.warmup == 100 and c.steps[0] == 150
    assert math.isclose(c.lr[125], 1e-3) and math.isclose(c.lr[75], 0.75e-3)


def test_csv_errors_name_the_file_and_row(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("step,lr,loss\n1,0.1,3.0\n2,0.1,nan\n")
    with pytest.raises(UserError, match=r"bad.csv:3"):
        read_csv(bad)
    (tmp_path / "cols.csv").write_text("step,loss\n1,2\n")
    with pytest.raises(UserError, match="missing column"):
        read_csv(tmp_path / "cols.csv")
    with pytest.raises(UserError, match="cannot read"):
        read_csv(tmp_path / "absent.csv")


def test_parse_spec_accepts_toml_json_and_names() -> None:
    assert parse_spec('{kind = "cosine", warmup = 10}', "x") == {"kind": "cosine", "warmup": 10}
    assert parse_spec('{"kind": "wsd", "decay": 5}', "x") == {"kind": "wsd", "decay": 5}
    assert parse_spec("cosine_24000", "x") == "cosine_24000"
    with pytest.raises(UserError, match="--schedule"):
        parse_spec("{kind = ", "--schedule")
    with pytest.raises(UserError):
        parse_spec("nonsense", "--schedule")


def test_metrics_jsonl_stages_resume_duplicates_and_smoothing(tmp_path: Path) -> None:
    recs = [{"kind": "run", "event": "start"}]
    for s in range(0, 60):
        lr = 1e-3 * min(s, 10) / 10 if s < 30 else 5e-4
        stage = "pretrain" if s < 30 else "continue"
        recs.append(
            {
                "kind": "train",
                "step": s,
                "tokens": 256 * s,
                "stage": stage,
                "lr": lr,
                "loss": 6.0 - 0.05 * s,
            }
        )
        if s % 10 == 0:
            recs.append({"kind": "eval", "step": s, "domain": "a", "loss": 1.0})
    # a resumed run logs step 40 again; the later record wins
    recs.append(
        {
            "kind": "train",
            "step": 40,
            "tokens": 256 * 40,
            "stage": "continue",
            "lr": 5e-4,
            "loss": 1.5,
        }
    )
    run = tmp_path / "runs" / "demo"
    run.mkdir(parents=True)
    (run / "metrics.jsonl").write_text("\n".join(json.dumps(r) for r in recs) + "\n")
    whole = read_metrics(run)
    assert whole.warmup == 10 and whole.steps[0] == 11 and whole.steps[-1] == 59
    assert whole.loss[list(whole.steps).index(40)] == 1.5
    cont = read_metrics(run / "metrics.jsonl", stage="continue")
    assert cont.steps[0] == 30 and cont.lr.size == 60 and cont.name == "demo/continue"
    sm = read_metrics(run, smooth_window=3)
    i = list(sm.steps).index(20)
    assert math.isclose(sm.loss[i], np.mean([6.0 - 0.05 * s for s in (18, 19, 20)]))
    # the window restarts after warmup: the first fitted point is not averaged with it
    assert math.isclose(sm.loss[0], 6.0 - 0.05 * 11)
    with pytest.raises(UserError, match="stage 'nope'"):
        read_metrics(run, stage="nope")
    (run / "metrics.jsonl").write_text('{"kind": "train", "step": 1}\n')
    with pytest.raises(UserError, match=r"metrics.jsonl:1"):
        read_metrics(run)


def test_smooth_is_a_trailing_mean() -> None:
    y = np.array([1.0, 2.0, 3.0, 4.0])
    np.testing.assert_allclose(smooth(y, 2), [1.0, 1.5, 2.5, 3.5])
    np.testing.assert_allclose(smooth(y, 1), y)
