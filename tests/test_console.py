"""`rewarm.console`: one handler on the `rewarm` logger, above tqdm bars, rank 0 only."""

from __future__ import annotations

import contextlib
import io
import logging
import os
import subprocess
import sys

import pytest
from tqdm import tqdm

from rewarm import console


def test_configure_once_writes_messages_to_the_current_stderr() -> None:
    logger = console.configure()
    console.configure()
    assert sum(isinstance(h, console.ConsoleHandler) for h in logger.handlers) == 1
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        logging.getLogger("rewarm.some.module").info("rewarm x: a notice")
        logging.getLogger("rewarm.some.module").debug("not shown")
    assert err.getvalue() == "rewarm x: a notice\n"


def test_lines_go_above_an_active_progress_bar(monkeypatch: pytest.MonkeyPatch) -> None:
    console.configure()
    written: list[str] = []
    monkeypatch.setattr(tqdm, "write", classmethod(lambda cls, s, file=None: written.append(s)))
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        bar = tqdm(total=10, file=sys.stderr)
        logging.getLogger("rewarm.t").warning("during the bar")
        bar.close()
        logging.getLogger("rewarm.t").warning("after the bar")
    assert written == ["during the bar"]  # tqdm clears the bar, writes, redraws it
    assert err.getvalue().endswith("after the bar\n")


def test_a_real_bar_is_not_cut_by_a_line() -> None:
    console.configure()
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        bar = tqdm(total=10, file=sys.stderr, mininterval=0, ascii=True)
        bar.update(3)
        logging.getLogger("rewarm.t").warning("a notice")
        bar.update(3)
        bar.close()
    lines = err.getvalue().replace("\r", "\n").splitlines()
    assert "a notice" in lines  # a whole line of its own, not glued to bar text


def test_rank_filter() -> None:
    def record(level: int) -> logging.LogRecord:
        return logging.LogRecord("rewarm.x", level, __file__, 1, "m", None, None)

    assert console.RankFilter(0).filter(record(logging.INFO))
    assert not console.RankFilter(1).filter(record(logging.INFO))
    assert console.RankFilter(3).filter(record(logging.WARNING))
    assert console.RankFilter(3).filter(record(logging.ERROR))


@pytest.mark.parametrize(("rank", "expected"), [("0", "info\nwarning\n"), ("1", "warning\n")])
def test_under_torchrun_only_rank_0_logs_below_warning(rank: str, expected: str) -> None:
    code = (
        "import logging; from rewarm import console; console.configure(); "
        "log = logging.getLogger('rewarm.x'); log.info('info'); log.warning('warning')"
    )
    env = {**os.environ, "RANK": rank}
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    assert proc.stderr == expected and proc.stdout == ""
