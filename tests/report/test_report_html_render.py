"""report.html renders in headless Chromium (Selenium): every figure loads, no console
errors."""

from __future__ import annotations

from rewarm.cli import main
from tests.report.browser import render, require_chromium
from tests.report.synthetic_runs import write_run


def test_report_html_renders_in_headless_chromium(tmp_path):
    require_chromium()
    write_run(tmp_path / "cont", "continual")
    write_run(tmp_path / "retrain", "retrain", seed=1)
    out = tmp_path / "report"
    assert (
        main(["report", str(tmp_path / "cont"), str(tmp_path / "retrain"), "--out", str(out)]) == 0
    )
    shot = tmp_path / "screenshot.png"
    page = render(out / "report.html", shot)
    assert page.errors == []
    assert page.title.startswith("rewarm report")
    assert len(page.images) == 7
    broken = [img["alt"] for img in page.images if not (img["complete"] and img["width"] > 100)]
    assert broken == []
    # A full-page screenshot: a real PNG taller than one screen (the page has content).
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    height = int.from_bytes(data[20:24], "big")
    assert height > 2000


def test_broken_figure_is_detected(tmp_path):
    """The check itself can fail: an image that cannot decode is reported."""
    require_chromium()
    page_path = tmp_path / "page.html"
    page_path.write_text(
        "<!doctype html><title>t</title><img alt='bad' src='data:image/png;base64,AAAA'>"
        "<script>console.error('boom')</script>"
    )
    page = render(page_path, tmp_path / "shot.png")
    assert [img["alt"] for img in page.images if img["width"] == 0] == ["bad"]
    assert any("boom" in e for e in page.errors)
