"""Figures are addressed by id: one registration in `FIGURES` reaches summary.md and
report.html; the page places the known ids where they always were."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from matplotlib.figure import Figure

from rewarm import plotting
from rewarm.report import figures as figs
from rewarm.report.build import markdown
from rewarm.report.html import render
from rewarm.report.summary import RunSummary, Study, study
from rewarm.runlog import read_run
from tests.report.synthetic_runs import write_run

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory: pytest.TempPathFactory) -> Study:
    root = tmp_path_factory.mktemp("runs")
    write_run(root / "cont", "continual", seed=0)
    write_run(root / "retrain", "retrain", seed=1)
    return study([read_run(root / "cont"), read_run(root / "retrain")])


def _fake(tmp: Path, fid: str, run: str | None, caption: str) -> figs.SavedFigure:
    stem = fid if run is None else f"{fid}-{run}"
    png = tmp / f"{stem}.png"
    png.write_bytes(PNG + stem.encode())  # distinct bytes: the base64 tells figures apart
    return figs.SavedFigure(id=fid, run=run, caption=caption, png=png, svg=tmp / f"{stem}.svg")


def _order(page: str) -> list[str]:
    """Figure captions and section/table markers in page order."""
    marks = re.finditer(r"<figcaption>([^<]*)</figcaption>|<h2>([^<]*)</h2>|<table", page)
    return [m.group(1) or (f"## {m.group(2)}" if m.group(2) else "table") for m in marks]


def test_html_places_each_id_and_appends_unplaced_ones(two_runs: Study, tmp_path: Path) -> None:
    saved = [_fake(tmp_path, "lr", None, "LR"), _fake(tmp_path, "extra", None, "STUDY EXTRA")]
    for run in ("cont", "retrain"):
        saved += [
            _fake(tmp_path, fid, run, f"{run} {fid}") for fid in ("loss", "gap", "matrix", "x")
        ]
    saved.append(_fake(tmp_path, "compute", None, "COMPUTE"))
    order = _order(render(two_runs, saved))
    summary = order[: order.index("## cont")]
    assert [c for c in summary if c not in ("table", "## Summary")] == [
        "COMPUTE",
        "LR",
        "STUDY EXTRA",
    ]
    cont = order[order.index("## cont") : order.index("## retrain")]
    # loss and gap first, the matrix figure after the matrix table, a new id last
    assert cont[1:4] == ["cont loss", "cont gap", "table"]
    assert cont[4] == "cont matrix" and cont[-1] == "cont x"
    assert "retrain x" in order and "retrain loss" not in cont


def test_one_registration_reaches_files_markdown_and_html(
    two_runs: Study, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def small(_st: Study) -> Figure:
        fig, ax = plotting.subplots(figsize=(2, 1))
        ax.plot([0, 1], [1, 0])
        return fig

    def per_run(run: RunSummary, _colors: dict[str, str]) -> Figure | None:
        return None if run.name == "retrain" else small(two_runs)

    registry = {
        "first": figs.StudyFigure(caption="First", draw=small),
        "tokens": figs.RunFigure(caption="{run}: tokens", draw=per_run),
        "last": figs.StudyFigure(caption="Last", draw=small),
    }
    monkeypatch.setattr(figs, "FIGURES", registry)
    saved = figs.all_figures(two_runs, tmp_path)
    assert [(f.id, f.run, f.caption) for f in saved] == [
        ("first", None, "First"),
        ("tokens", "cont", "cont: tokens"),  # None from draw: no figure for retrain
        ("last", None, "Last"),
    ]
    assert {p.name for p in tmp_path.iterdir()} == {
        f"{stem}.{ext}" for stem in ("first", "tokens-cont", "last") for ext in ("png", "svg")
    }
    assert "![cont: tokens](tokens-cont.png) ([SVG](tokens-cont.svg))" in markdown([], [], saved)
    page = render(two_runs, saved)
    assert "<figcaption>cont: tokens</figcaption>" in page
    assert page.count("data:image/png;base64,") == 3


def test_side_evaluations_get_a_weights_figure_and_plain_runs_none(tmp_path: Path) -> None:
    import json

    from rewarm.report.side_plots import weights_figure

    write_run(tmp_path / "avg", "continual", seed=2)
    log = tmp_path / "avg" / "metrics.jsonl"
    evals = [json.loads(line) for line in log.read_text().splitlines()]
    evals = [r for r in evals if r["kind"] == "eval"]
    side = [{**r, "loss": r["loss"] - 0.05, "weights": "ema"} for r in evals[len(evals) // 2 :]]
    with log.open("a") as f:
        f.writelines(json.dumps(r) + "\n" for r in side)
    st = study([read_run(tmp_path / "avg")])
    run = st.runs[0]
    # the side records are not the trained model's: its evaluations are unchanged
    assert len(run.log.evals) == len(evals) and len(run.log.side_evals) == len(side)
    fig = weights_figure(run, {"docs": "#000000", "code": "#ff0000"})
    assert fig is not None
    lines = fig.axes[0].get_lines()
    labels = [ln.get_label() for ln in lines]
    assert "code: ema" in labels and "code: trained model" in labels
    ema = lines[labels.index("code: ema")]
    assert ema.get_linestyle() == "--"
    assert list(ema.get_ydata()) == [r["loss"] for r in side if r["domain"] == "code"]
    write_run(tmp_path / "plain", "continual", seed=3)
    assert weights_figure(study([read_run(tmp_path / "plain")]).runs[0], {}) is None
    saved = figs.all_figures(st, tmp_path / "figs")
    assert [s.id for s in saved].count("weights") == 1
