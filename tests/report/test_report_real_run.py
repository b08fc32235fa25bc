"""`rewarm report` on a real two-stage run of the tiny preset (not synthetic records):
the HTML renders in headless Chromium with every figure, and summary.md's numbers equal
the metric functions applied to the run's own metrics.jsonl."""

from __future__ import annotations

import contextlib
import io

import numpy as np
import pytest

from rewarm.cli import main
from rewarm.continual import metrics as m
from rewarm.continual.timeline import timeline_of
from rewarm.runlog import read_run
from rewarm.train.trainer import train
from tests.report.browser import render, require_chromium
from tests.report.test_report_command import close, parse_tables
from tests.runhelpers import load, one_thread, write_config


@pytest.fixture(scope="module")
def real_report(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("real")
    cfg = load(write_config(tmp))
    with one_thread():
        train(cfg, progress=False)
    out = tmp / "report"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert main(["report", str(cfg.run_dir), "--out", str(out)]) == 0
    return cfg, out, printed.getvalue()


def test_summary_of_a_real_run_matches_its_metrics(real_report):
    cfg, out, printed = real_report
    tables = parse_tables((out / "summary.md").read_text())
    tl = timeline_of(read_run(cfg.run_dir))
    assert list(tl.domains) == ["prose", "code"]
    r = m.loss_matrix(tl)
    assert r.values.shape == (2, 2) and np.isfinite(r.values).all()
    rows = tables["run: loss at the end of each stage"]
    for k, row in enumerate(rows):
        for i, d in enumerate(tl.domains):
            assert close(row[d], r.values[k, i])
    (over,) = tables["Runs"]
    bwt, _ = m.backward_transfer(tl, r)
    assert close(over["BWT"], bwt)
    gaps = m.stability_gaps(tl, 0.01)
    assert [g.domain for g in gaps] == ["prose"]  # the one old domain in stage 2
    assert close(over["max stability gap"], max(g.gap for g in gaps))
    assert int(over["tokens"]) == sum(st.tokens for st in cfg.stages)
    assert "run" in printed


def test_report_of_a_real_run_renders_in_chromium(real_report, tmp_path):
    require_chromium()
    _cfg, out, _ = real_report
    page = render(out / "report.html", tmp_path / "shot.png")
    assert page.errors == []
    assert len(page.images) >= 4
    broken = [img["alt"] for img in page.images if not (img["complete"] and img["width"] > 100)]
    assert broken == []
