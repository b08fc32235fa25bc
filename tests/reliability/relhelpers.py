"""Helpers for the reliability tests: forked training children, CLI capture, checks."""

from __future__ import annotations

import contextlib
import io
import os
import signal
import time
import traceback
from collections.abc import Callable
from pathlib import Path

import torch

from rewarm import checkpoint
from rewarm.cli import main
from tests.runhelpers import write_config


def cli(*argv: str) -> tuple[int, str]:
    """Run `rewarm ARGV` in-process: (exit code, stderr). Tracebacks escape as exceptions."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        rc = main(list(argv))
    return rc, err.getvalue()


def fork_train(
    config: Path, log: Path, setup: Callable[[], None] | None = None, kill_after: float = 0.0
) -> tuple[int, float]:
    """`rewarm train CONFIG` in a forked child (torch already imported: no 15 s startup).

    `setup()` runs first in the child (fault hooks). With `kill_after` > 0 the parent
    sends SIGKILL after that many seconds. Returns (wait status as returncode, seconds):
    the exit code, or -9 when SIGKILL ended it.
    """
    warm_imports()
    start = time.perf_counter()
    pid = os.fork()
    if pid == 0:  # child: never return into pytest
        code = 99
        try:
            fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            os.dup2(fd, 1)
            os.dup2(fd, 2)
            torch.set_num_threads(1)  # the same arithmetic as the reference child
            if setup is not None:
                setup()
            code = main(["train", str(config), "--no-progress"])
        except BaseException:  # noqa: BLE001 - report anything, then exit hard
            traceback.print_exc()
        finally:
            os._exit(code)
    if kill_after > 0:
        deadline = start + kill_after
        while time.perf_counter() < deadline:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                return os.waitstatus_to_exitcode(status), time.perf_counter() - start
            time.sleep(0.005)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), time.perf_counter() - start


def assert_checkpoints_sound(root: Path) -> None:
    """`latest` (when present) names a complete, loadable checkpoint; so does every step_*."""
    if not root.exists():
        return
    pointer = root / checkpoint.LATEST
    if pointer.exists():
        name = pointer.read_text(encoding="utf-8").strip()
        target = root / name
        assert checkpoint.is_complete(target), f"latest names {name}, which is incomplete"
    for d in sorted(root.glob("step_*")):
        assert checkpoint.is_complete(d), f"{d.name} is visible but incomplete"
        state = checkpoint.read_state(d)
        assert state["step"] == int(d.name[5:])
        checkpoint.load_weights(d)  # raises on a torn file
        assert checkpoint.load_optimizer(d) is not None


def warm_imports() -> None:
    """Import what training imports lazily, so forked children start in well under a second."""
    import transformers.models.llama.modeling_llama  # noqa: F401
    from transformers import AutoModelForCausalLM, LlamaForCausalLM  # noqa: F401

    import rewarm.data.mixture  # noqa: F401
    import rewarm.data.prepare  # noqa: F401
    import rewarm.evaluation.evaluator  # noqa: F401
    import rewarm.schedules  # noqa: F401
    import rewarm.train.session  # noqa: F401
    import rewarm.train.trainer  # noqa: F401


def short_config(tmp: Path, name: str) -> Path:
    """The runhelpers two-stage config with 2 steps per stage (for tests that only
    need a real run, not a long one)."""
    path = write_config(tmp, name)
    text = path.read_text(encoding="utf-8")
    assert text.count("tokens = 768") == 2
    path.write_text(text.replace("tokens = 768", "tokens = 256"), encoding="utf-8")
    return path
