"""`rewarm.plotting`: no matplotlib settings change on import; a style applies only inside
its `with` block; figures are written atomically with a user's file mode."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import matplotlib

from rewarm import plotting

FIGURE_MODULES = (
    "rewarm.plotting",
    "rewarm.report.drawing",
    "rewarm.report.figures",
    "rewarm.report.build",
    "rewarm.demo.figure",
    "rewarm.schedules.lr_plot",
    "rewarm.laws.plots",
)


def test_importing_figure_modules_changes_no_setting_and_loads_no_pyplot() -> None:
    # dict.__getitem__: reading rcParams["backend"] the normal way would load pyplot
    code = (
        "import sys, matplotlib\n"
        "def rc(): return {k: dict.__getitem__(matplotlib.rcParams, k) for k in matplotlib.rcParams}\n"
        "before = rc()\n"
        f"for m in {FIGURE_MODULES!r}: __import__(m)\n"
        "assert 'matplotlib.pyplot' not in sys.modules\n"
        "after = rc()\n"
        "changed = sorted(k for k in before if before[k] != after[k])\n"
        "assert not changed, changed\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_style_applies_inside_only(tmp_path: Path) -> None:
    before = dict(matplotlib.rcParams)
    with plotting.style(plotting.REPORT_STYLE):
        fig, ax = plotting.subplots(figsize=(2, 1))
        assert fig.dpi == plotting.REPORT_STYLE["figure.dpi"]
        assert not ax.spines["top"].get_visible()
        path = plotting.save(fig, tmp_path / "f.svg", format="svg")
    assert dict(matplotlib.rcParams) == before
    fig, ax = plotting.subplots(figsize=(2, 1))  # outside: matplotlib's settings again
    assert ax.spines["top"].get_visible() == matplotlib.rcParams["axes.spines.top"]
    assert b"<svg" in path.read_bytes()


def test_save_is_atomic_with_the_mode_of_a_plain_open(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        fig, ax = plotting.subplots(figsize=(2, 1))
        ax.plot([0, 1], [0, 1])
        path = plotting.save(fig, tmp_path / "sub" / "f.png", format="png", dpi=50)
    finally:
        os.umask(old)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert [p.name for p in path.parent.iterdir()] == ["f.png"]
