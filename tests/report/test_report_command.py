"""`rewarm report`: outputs, bad input, and summary.md numbers recomputed from metrics.jsonl."""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
from pathlib import Path

import numpy as np
import pytest

from rewarm.cli import main
from rewarm.continual import compare as cmp
from rewarm.continual import metrics as m
from rewarm.continual.timeline import timeline_of
from rewarm.runlog import read_run
from tests.report.synthetic_runs import write_run


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    """One report of a continual run and a re-training run (built once: matplotlib is slow)."""
    root = tmp_path_factory.mktemp("runs")
    write_run(root / "cont", "continual", seed=0)
    write_run(root / "retrain", "retrain", seed=1)
    out = root / "out"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        code = main(["report", str(root / "cont"), str(root / "retrain"), "--out", str(out)])
    assert code == 0
    return root, out, printed.getvalue()


def parse_tables(md: str) -> dict[str, list[dict[str, str]]]:
    tables: dict[str, list[dict[str, str]]] = {}
    title, header = None, None
    for line in md.splitlines():
        if line.startswith("## "):
            title, header = line[3:], None
            tables[title] = []
        elif line.startswith("|") and title is not None:
            cells = [c.strip() for c in line.strip("|").split(" | ")]
            if header is None:
                header = cells
            elif not set(line) <= set("|-: "):
                tables[title].append(dict(zip(header, cells, strict=True)))
    return tables


def close(cell: str, value: float | None, digits: int = 4) -> bool:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return cell == "n/a"
    return abs(float(cell) - value) <= 0.51 * 10**-digits


def test_writes_every_output_and_prints_the_summary(report):
    _root, out, text = report
    names = {p.name for p in out.iterdir()}
    assert {"summary.md", "report.html", "lr.png", "lr.svg", "compute.png"} <= names
    for stem in ("loss-cont", "gap-cont", "matrix-cont", "loss-retrain", "matrix-retrain"):
        assert {f"{stem}.png", f"{stem}.svg"} <= names
        assert (out / f"{stem}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not [n for n in names if n.startswith(".")], "temporary files left behind"
    html = (out / "report.html").read_text()
    assert "http://" not in html and "https://" not in html and "<script" not in html
    assert html.count("data:image/png;base64,") == 7
    # The terminal gets the overview and the comparison.
    assert "retrain (baseline)" in text and "token ratio" in text


def test_summary_numbers_equal_metrics_recomputed_from_the_records(report):
    root, out, _text = report
    tables = parse_tables((out / "summary.md").read_text())
    log = read_run(root / "cont")
    tl = timeline_of(log)
    r = m.loss_matrix(tl)
    rows = tables["cont: loss at the end of each stage"]
    avg = m.average_seen_loss(tl, r)
    for k, row in enumerate(rows):
        for i, d in enumerate(tl.domains):
            assert close(row[d], r.values[k, i])
        assert close(row["avg over seen"], avg[k])
    bwt, terms = m.backward_transfer(tl, r)
    forget = m.forgetting(tl, r)[-1]
    gaps = m.stability_gaps(tl, 0.01)
    wc = m.worst_case(tl)
    wf10, wf100 = m.windowed_forgetting(tl, 10), m.windowed_forgetting(tl, 100)
    (over,) = [row for row in tables["Runs"] if row["run"] == "cont"]
    assert close(over["BWT"], bwt)
    assert close(over["forgetting (mean)"], float(np.mean(list(forget.values()))))
    assert close(over["max stability gap"], max(g.gap for g in gaps))
    assert close(over["WC-loss (final)"], float(wc.wc_loss[-1]))
    assert close(over["max WF^10"], max(wf10.values()))
    assert close(over["max WF^100"], max(wf100.values()))
    assert close(over["final loss (mean)"], float(np.nanmean(r.values[-1])))
    c = m.compute(tl, flops_per_token=log.start.flops_per_token)
    assert int(over["tokens"]) == c.tokens
    assert float(over["train FLOPs"]) == pytest.approx(c.flops, rel=1e-3)
    fwt = m.forward_transfer(tl)
    for row in tables["cont: per domain"]:
        d = row["domain"]
        assert close(row["forgetting"], forget.get(d))
        assert close(row["BWT term"], terms.get(d))
        assert close(row["forward transfer"], fwt[1].get(d))
        assert close(row["worst-case loss"], wc.final_worst.get(d))
        assert close(row["WF^10"], wf10.get(d))
    (gap_row,) = tables["cont: stability gap of old domains"]
    (gap,) = gaps
    assert close(gap_row["gap"], gap.gap) and close(gap_row["peak loss"], gap.peak_loss)
    assert gap_row["evals to recover"] == (
        str(gap.recover_evals) if gap.recovered else "not recovered"
    )
    # Against re-training.
    base_tl = timeline_of(read_run(root / "retrain"))
    (comp,) = tables["Against re-training (retrain)"]
    mine, theirs = cmp.final_losses(tl), cmp.final_losses(base_tl)
    for d in tl.domains:
        assert close(comp[f"Δloss {d}"], mine[d] - theirs[d])
    assert close(comp["token ratio"], sum(c.tokens_by_stage[1:]) / m.compute(base_tl).tokens, 3)


def test_default_out_dir_is_inside_a_single_run(tmp_path, capsys):
    write_run(tmp_path / "solo", "continual", drop_boundary_eval=True)
    assert main(["report", str(tmp_path / "solo")]) == 0
    md = (tmp_path / "solo" / "report" / "summary.md").read_text()
    # The boundary evaluation was dropped: the report says where the value came from.
    assert "No evaluation at the end of stage 1" in md
    assert "Against re-training" not in md
    assert "solo" in capsys.readouterr().out


def test_several_runs_default_to_report_in_the_working_directory(tmp_path, monkeypatch):
    write_run(tmp_path / "a" / "run", "continual")
    write_run(tmp_path / "b" / "run", "continual", seed=3)
    monkeypatch.chdir(tmp_path)
    assert main(["report", "a/run", "b/run"]) == 0
    md = (tmp_path / "report" / "summary.md").read_text()
    assert "a/run" in md and "b/run" in md  # same directory names told apart


def _bad(tmp_path: Path, lines: list[str]) -> Path:
    run = tmp_path / "bad"
    run.mkdir()
    (run / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    return run


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        (['{"kind": "run", "event": "start"}', "{not json"], "metrics.jsonl:2: not valid JSON"),
        (
            ['{"kind": "eval", "step": 1, "tokens": 5, "domain": "a", "loss": "x"}'],
            "metrics.jsonl:1: field 'loss' must be a number",
        ),
        (['{"kind": "eval", "step": 1, "tokens": 5, "loss": 1.0}'], "metrics.jsonl:1: eval record"),
        (["[1, 2]"], "metrics.jsonl:1: expected a JSON object"),
    ],
)
def test_corrupt_records_exit_2_naming_file_and_line(tmp_path, capsys, lines, message):
    run = _bad(tmp_path, lines)
    assert main(["report", str(run)]) == 2
    err = capsys.readouterr().err
    assert message in err and str(run) in err
    assert len(err.strip().splitlines()) == 1
    assert not (run / "report").exists()


def test_missing_run_or_metrics_file_exit_2(tmp_path, capsys):
    assert main(["report", str(tmp_path / "nope")]) == 2
    assert "run directory not found" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["report", str(tmp_path / "empty")]) == 2
    assert "no metrics.jsonl" in capsys.readouterr().err


def test_unknown_baseline_exit_2(tmp_path, capsys):
    write_run(tmp_path / "cont", "continual")
    assert main(["report", str(tmp_path / "cont"), "--baseline", "other"]) == 2
    assert "--baseline other" in capsys.readouterr().err


def test_extra_fields_and_unknown_kinds_are_ignored(tmp_path):
    path = write_run(tmp_path / "cont", "continual")
    lines = path.read_text().splitlines()
    rec = json.loads(lines[3])
    rec["future_field"] = 1
    lines[3] = json.dumps(rec)
    lines.append(json.dumps({"kind": "profile", "what": "ever"}))
    path.write_text("\n".join(lines) + "\n")
    before = os.stat(path).st_size
    log = read_run(tmp_path / "cont")
    assert log.evals and log.trains and os.stat(path).st_size == before


def test_non_finite_values_written_as_strings_are_read(tmp_path):
    """The trainer writes NaN/Inf as "nan"/"inf" strings; a diverged run still reports."""
    path = write_run(tmp_path / "div", "continual")
    lines = [json.loads(x) for x in path.read_text().splitlines()]
    train = next(r for r in lines if r["kind"] == "train")
    train["loss"], train["grad_norm"] = "nan", "inf"
    last_eval = [r for r in lines if r["kind"] == "eval"][-1]
    last_eval["loss"] = "inf"
    path.write_text("".join(json.dumps(r) + "\n" for r in lines))
    log = read_run(tmp_path / "div")
    assert math.isnan(log.trains[0].loss) and log.trains[0].grad_norm == math.inf
    assert log.evals[-1].loss == math.inf
    assert main(["report", str(tmp_path / "div")]) == 0
    assert "inf" in (tmp_path / "div" / "report" / "summary.md").read_text()
