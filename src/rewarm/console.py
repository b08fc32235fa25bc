"""Where rewarm's notices go: the `rewarm` logger hierarchy and its one handler.

Library modules never print: they log through `logging.getLogger(__name__)` (a
logger under `rewarm`): INFO for what a user may like to know (a resumed schedule
change, a finished run), WARNING for what they should act on (stale shards rebuilt,
a skipped non-finite step). Commands print only their primary results (tables,
paths) to stdout. `rewarm.cli.main` calls `configure()` once per process, which
adds `ConsoleHandler` to the `rewarm` logger:

- one line per record, the message alone (messages already start with
  `rewarm VERB:` or name the file they are about), on the *current* `sys.stderr`
  (so `contextlib.redirect_stderr` and pytest's capture see it);
- while a tqdm progress bar is on screen the line goes through `tqdm.write`, which
  clears the bar, writes the line and redraws the bar, so lines never cut a bar;
- `RankFilter`: under `torchrun` (environment variable `RANK`) only rank 0 logs
  below WARNING, so N processes print one copy of each notice; warnings and errors
  of every rank are shown.

Without `configure()` (rewarm used as a library) the standard `logging` rules
apply: warnings reach stderr through logging's last-resort handler, INFO is
dropped unless the application configures logging.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

ROOT = "rewarm"


class RankFilter(logging.Filter):
    """Pass records at WARNING and above from every rank, the rest only from rank 0."""

    def __init__(self, rank: int) -> None:
        super().__init__()
        self.rank = rank

    def filter(self, record: logging.LogRecord) -> bool:
        return self.rank == 0 or record.levelno >= logging.WARNING


def _active_bar_class() -> Any:
    """tqdm's bar class when a bar is on screen, else None (tqdm is never imported here)."""
    module = sys.modules.get("tqdm")
    bar = getattr(module, "tqdm", None)
    return bar if bar is not None and len(getattr(bar, "_instances", ())) > 0 else None


class ConsoleHandler(logging.Handler):
    """Each record's message as one line on the current `sys.stderr`, above any tqdm bar."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
            stream = sys.stderr
            bar = _active_bar_class()
            if bar is not None:
                bar.write(line, file=stream)
            else:
                stream.write(line + "\n")
            stream.flush()
        except Exception:  # noqa: BLE001 - logging's contract: report, never raise
            self.handleError(record)


def rank_from_env() -> int:
    """This process's rank under torchrun (`RANK`), 0 otherwise."""
    try:
        return int(os.environ.get("RANK", "0"))
    except ValueError:
        return 0


def configure(level: int = logging.INFO) -> logging.Logger:
    """Attach `ConsoleHandler` (with `RankFilter`) to the `rewarm` logger, once."""
    logger = logging.getLogger(ROOT)
    if not any(isinstance(h, ConsoleHandler) for h in logger.handlers):
        handler = ConsoleHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        handler.addFilter(RankFilter(rank_from_env()))
        logger.addHandler(handler)
    logger.setLevel(level)
    return logger
