"""A run from a checkpoint reports forgetting against the model it started from."""

from __future__ import annotations

from pathlib import Path

import pytest

from rewarm import checkpoint
from rewarm.cli import main
from rewarm.report.summary import summarize
from rewarm.runlog import read_run
from rewarm.train.trainer import train
from tests.runhelpers import load, one_thread, records, write_config


def test_checkpoint_init_run_reports_forgetting_against_its_start(finished, tmp_path):
    parent, _ = finished
    ckpt = parent.run_dir / "checkpoints" / checkpoint.step_dir_name(6)  # prose-trained
    path = write_config(
        tmp_path, "cont", init=f"checkpoint:{ckpt}", corpus=Path(parent.source).parent / "corpus"
    )
    cfg = load(
        path,
        'stages=[{name="code", tokens=768, mix={code=1.0}, schedule={kind="constant"}}]',
    )
    with one_thread():
        train(cfg, progress=False)
    start = {r["domain"]: r["loss"] for r in records(cfg.run_dir, "eval") if r["tokens"] == 0}
    end = {r["domain"]: r["loss"] for r in records(cfg.run_dir, "eval") if r["tokens"] == 768}

    run = summarize(read_run(cfg.run_dir))
    assert [s.name for s in run.timeline.stages] == ["start", "code"]
    assert run.forgetting[-1]["prose"] == pytest.approx(end["prose"] - start["prose"])
    assert run.bwt == pytest.approx(start["prose"] - end["prose"])
    assert [g.domain for g in run.gaps] == ["prose"]
    assert run.worst.final_worst["prose"] >= end["prose"]

    out = tmp_path / "report"
    assert main(["report", str(cfg.run_dir), "--out", str(out)]) == 0
    md = (out / "summary.md").read_text(encoding="utf-8")
    assert "| 0. start |" in md and "| 1. code |" in md
    prose = next(line for line in md.splitlines() if line.startswith("| prose |"))
    cells = [c.strip() for c in prose.strip("|").split("|")]
    assert cells[1] == "0"  # first trained in stage 0: the starting model
    assert float(cells[4]) == pytest.approx(end["prose"] - start["prose"], abs=1e-4)
