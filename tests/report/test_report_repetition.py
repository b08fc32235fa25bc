"""Repetition made visible: each stage-end record's `epochs_by_domain` becomes the
report's repetition table (and logs written before it existed still report)."""

from __future__ import annotations

import json

from rewarm.report import tables as tb
from rewarm.report.build import build_report
from rewarm.report.summary import summarize
from rewarm.runlog import read_run
from tests.report.synthetic_runs import write_run


def _add_epochs(path, epochs: list[dict[str, float]]) -> None:
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    ends = [r for r in lines if r["kind"] == "stage" and r["event"] == "end"]
    for rec, e in zip(ends, epochs, strict=True):
        rec["epochs_by_domain"] = e
    path.write_text("".join(json.dumps(r) + "\n" for r in lines))


def test_epochs_per_stage_and_run_total(tmp_path):
    path = write_run(tmp_path / "cont")
    _add_epochs(path, [{"docs": 0.5}, {"code": 0.75, "docs": 0.125}])
    log = read_run(tmp_path / "cont")
    assert [s.epochs_by_domain for s in log.stages if s.event == "end"] == [
        {"docs": 0.5},
        {"code": 0.75, "docs": 0.125},
    ]
    table = tb.repetition_table(summarize(log))
    assert table is not None and table.columns == ["stage", "docs", "code"]
    assert [row[1:] for row in table.rows] == [["0.50", "n/a"], ["0.12", "0.75"], ["0.62", "0.75"]]
    assert table.rows[-1][0] == "run"
    build_report([log], tmp_path / "report")
    summary = (tmp_path / "report" / "summary.md").read_text()
    assert "repetition (epochs" in summary
    assert "repetition (epochs" in (tmp_path / "report" / "report.html").read_text()


def test_logs_without_epochs_have_no_repetition_table(tmp_path):
    write_run(tmp_path / "old")
    log = read_run(tmp_path / "old")
    assert all(s.epochs_by_domain is None for s in log.stages)
    assert tb.repetition_table(summarize(log)) is None
