"""Load a local page in headless Chromium through Selenium: every image's load state,
the console errors, the title and a full-page screenshot.

The browser is Debian's `chromium` driven by its `chromium-driver` (`chromedriver`),
both installed by `.ci/run`, never by a test: without them the tests skip with the
reason. Selenium is given both paths, so it never looks for (or downloads) a driver.
"""

from __future__ import annotations

import base64
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

# As root in a container: no sandbox, no GPU, nothing fetched in the background.
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1280,900",
)

IMAGES_JS = (
    "return Array.from(document.images).map(i => ({alt: i.alt, complete: i.complete,"
    " width: i.naturalWidth, height: i.naturalHeight}))"
)


@dataclass
class PageResult:
    images: list[dict[str, Any]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    title: str = ""


def require_chromium() -> tuple[str, str]:
    """(chromium, chromedriver) paths; skips the calling test when either is missing."""
    binary = next(
        (p for p in map(shutil.which, ("chromium", "chromium-browser")) if p is not None), None
    )
    driver = shutil.which("chromedriver")
    if binary is None or driver is None:
        missing = " and ".join(
            name for name, path in (("chromium", binary), ("chromedriver", driver)) if path is None
        )
        pytest.skip(
            f"{missing} not installed (.ci/run installs Debian's chromium and chromium-driver)"
        )
    return binary, driver


def render(page: Path, screenshot: Path, timeout: float = 60) -> PageResult:
    """Load `page`, collect its images and console errors, write a full-page PNG."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    binary, driver_path = require_chromium()
    with tempfile.TemporaryDirectory(prefix="rewarm-chromium-") as profile:
        options = webdriver.ChromeOptions()
        options.binary_location = binary
        for flag in (*FLAGS, f"--user-data-dir={profile}"):
            options.add_argument(flag)
        # Console messages (console.error, uncaught exceptions, failed loads) at SEVERE.
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        driver = webdriver.Chrome(options=options, service=Service(executable_path=driver_path))
        try:
            driver.set_page_load_timeout(timeout)
            driver.get(page.resolve().as_uri())  # returns after the load event
            result = PageResult(images=driver.execute_script(IMAGES_JS), title=driver.title)
            result.errors = [
                str(entry.get("message"))
                for entry in driver.get_log("browser")
                if entry.get("level") == "SEVERE"
            ]
            metrics = driver.execute_cdp_cmd("Page.getLayoutMetrics", {})
            size = metrics.get("cssContentSize") or metrics["contentSize"]
            shot = driver.execute_cdp_cmd(
                "Page.captureScreenshot",
                {
                    "format": "png",
                    "captureBeyondViewport": True,
                    "clip": {
                        "x": 0,
                        "y": 0,
                        "width": size["width"],
                        "height": size["height"],
                        "scale": 1,
                    },
                },
            )
            screenshot.write_bytes(base64.b64decode(shot["data"]))
            return result
        finally:
            driver.quit()
