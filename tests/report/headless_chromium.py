"""Load a page in headless Chromium over the DevTools protocol (pipe transport).

`--remote-debugging-pipe` makes Chromium read protocol messages from fd 3 and
write them to fd 4, each a JSON object ended by a NUL byte; no websocket or
open port is needed. `render(path, screenshot)` loads a local HTML file, waits
for the load event, reports every image's load state and every console error
or uncaught exception, and saves a full-page screenshot.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import select
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--no-first-run",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1280,900",
    "--remote-debugging-pipe",
]


def find_or_install() -> tuple[str | None, str]:
    """Path of a Chromium binary (installing Debian's package if absent), or (None, why)."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path, ""
    if shutil.which("apt-get") is None:
        return None, "chromium is not installed and apt-get is not available"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    try:
        proc = subprocess.run(
            ["apt-get", "install", "-y", "-q", "chromium"],
            capture_output=True,
            text=True,
            timeout=600,
            env=env,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as err:
        return None, f"apt-get install chromium failed: {err}"
    path = shutil.which("chromium")
    if path is None:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        return None, f"apt-get install chromium failed: {tail[0]}"
    return path, ""


@dataclass
class PageResult:
    images: list[dict[str, Any]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    title: str = ""


class _Pipe:
    """Minimal DevTools client: numbered requests, events collected while waiting."""

    def __init__(self, write_fd: int, read_fd: int) -> None:
        self.write_fd, self.read_fd = write_fd, read_fd
        self.buf = b""
        self.next_id = 0
        self.events: list[dict[str, Any]] = []

    def _read(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no answer from chromium")
            ready, _, _ = select.select([self.read_fd], [], [], left)
            if ready:
                chunk = os.read(self.read_fd, 1 << 20)
                if not chunk:
                    raise RuntimeError("chromium closed the DevTools pipe")
                self.buf += chunk
        raw, self.buf = self.buf.split(b"\0", 1)
        return json.loads(raw)

    def call(self, method: str, session: str | None = None, timeout: float = 30, **params: Any):
        self.next_id += 1
        msg: dict[str, Any] = {"id": self.next_id, "method": method, "params": params}
        if session:
            msg["sessionId"] = session
        os.write(self.write_fd, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            reply = self._read(deadline)
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_event(self, method: str, timeout: float = 30) -> dict[str, Any]:
        for ev in self.events:
            if ev.get("method") == method:
                return ev
        deadline = time.monotonic() + timeout
        while True:
            ev = self._read(deadline)
            self.events.append(ev)
            if ev.get("method") == method:
                return ev


def _high_fd(fd: int) -> int:
    """Move `fd` above 10 so the dup2 onto 3 and 4 in the child cannot clobber it."""
    new = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10)
    os.close(fd)
    return new


IMAGES_JS = (
    "JSON.stringify(Array.from(document.images).map(i => ({alt: i.alt, complete: i.complete,"
    " width: i.naturalWidth, height: i.naturalHeight})))"
)


def render(binary: str, page: Path, screenshot: Path, timeout: float = 60) -> PageResult:
    """Load `page`, check images and console, write a full-page PNG to `screenshot`."""
    to_r, to_w = (_high_fd(fd) for fd in os.pipe())
    from_r, from_w = (_high_fd(fd) for fd in os.pipe())

    def child_fds() -> None:
        os.dup2(to_r, 3)
        os.dup2(from_w, 4)

    with tempfile.TemporaryDirectory(prefix="rewarm-chromium-") as profile:
        proc = subprocess.Popen(
            [binary, *FLAGS, f"--user-data-dir={profile}", "about:blank"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            preexec_fn=child_fds,  # only dup2 in the child; no Python state touched
            pass_fds=(3, 4),
        )
        os.close(to_r)
        os.close(from_w)
        cdp = _Pipe(to_w, from_r)
        try:
            target = cdp.call("Target.createTarget", url="about:blank", timeout=timeout)
            attached = cdp.call("Target.attachToTarget", targetId=target["targetId"], flatten=True)
            sid = attached["sessionId"]
            for domain in ("Page", "Runtime", "Log"):
                cdp.call(f"{domain}.enable", session=sid)
            cdp.call("Page.navigate", session=sid, url=page.resolve().as_uri())
            cdp.wait_event("Page.loadEventFired", timeout=timeout)
            res = cdp.call(
                "Runtime.evaluate", session=sid, expression=IMAGES_JS, returnByValue=True
            )
            title = cdp.call(
                "Runtime.evaluate", session=sid, expression="document.title", returnByValue=True
            )
            metrics = cdp.call("Page.getLayoutMetrics", session=sid)
            size = metrics.get("cssContentSize") or metrics["contentSize"]
            shot = cdp.call(
                "Page.captureScreenshot",
                session=sid,
                format="png",
                captureBeyondViewport=True,
                clip={"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1},
                timeout=timeout,
            )
            screenshot.write_bytes(base64.b64decode(shot["data"]))
            result = PageResult(
                images=json.loads(res["result"]["value"]), title=title["result"]["value"]
            )
            for ev in cdp.events:
                method, params = ev.get("method"), ev.get("params", {})
                if method == "Runtime.exceptionThrown":
                    result.errors.append(str(params.get("exceptionDetails", {}).get("text")))
                elif method == "Runtime.consoleAPICalled" and params.get("type") in (
                    "error",
                    "assert",
                ):
                    result.errors.append(json.dumps(params.get("args")))
                elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
                    result.errors.append(str(params["entry"].get("text")))
            with contextlib.suppress(RuntimeError, TimeoutError):
                cdp.call("Browser.close", timeout=10)
            return result
        finally:
            os.close(to_w)
            os.close(from_r)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
