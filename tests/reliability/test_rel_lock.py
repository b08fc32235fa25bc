"""One run per directory: a second `rewarm train` on a live run is refused, naming the
holder; a lock left by a dead process is taken over."""

from __future__ import annotations

import json
import os
import signal
import socket
import time

import torch

from rewarm.train import runlock, trainer
from tests.reliability.relhelpers import cli, fork_train, short_config, warm_imports
from tests.runhelpers import load, one_thread, records


def _hang_in_stage() -> None:
    """In the child: train until the first stage begins, then sleep (holding the lock)."""
    real = trainer.begin_stage

    def slow(s):
        real(s)
        time.sleep(120)

    trainer.begin_stage = slow


def _wait_for_holder(lock, pid: int) -> None:
    """Until the child holds the lock and has begun its first stage (it sleeps there)."""
    deadline = time.time() + 120
    metrics = lock.parent / "metrics.jsonl"
    while time.time() < deadline:
        try:
            held = json.loads(lock.read_text(encoding="utf-8"))["pid"] == pid
            if held and '"kind": "eval"' in metrics.read_text(encoding="utf-8"):
                return
        except (OSError, ValueError, KeyError):
            pass
        time.sleep(0.05)
    raise AssertionError("the training child never took the lock")


def test_second_process_is_refused_then_takes_over_after_a_kill(tmp_path):
    config = short_config(tmp_path, "locked")
    run_dir = load(config).run_dir
    lock = run_dir / runlock.LOCK
    warm_imports()
    pid = os.fork()
    if pid == 0:  # the first trainer: forked so that a SIGKILL ends it for real
        code = 99
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 2)
            # A forked child must not use the parent's OpenMP pool (it would hang).
            torch.set_num_threads(1)
            _hang_in_stage()
            from rewarm.cli import main

            code = main(["train", str(config), "--no-progress"])
        finally:
            os._exit(code)
    try:
        _wait_for_holder(lock, pid)
        metrics_before = (run_dir / "metrics.jsonl").read_bytes()
        rc, err = cli("train", str(config), "--no-progress")
        assert rc == 2
        lines = err.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in err, err
        assert f"pid {pid} on {socket.gethostname()}" in lines[0]
        assert str(run_dir) in lines[0]
        # The refused process touched nothing of the live run.
        assert (run_dir / "metrics.jsonl").read_bytes() == metrics_before
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)

    # The holder died without cleaning up: its pid is still in the file, and the
    # next run takes the lock over and finishes.
    assert json.loads(lock.read_text(encoding="utf-8"))["pid"] == pid
    with one_thread():
        rc, err = cli("train", str(config), "--no-progress")
    assert rc == 0, err
    assert records(run_dir, "run")[-1]["event"] == "end"
    assert json.loads(lock.read_text(encoding="utf-8"))["pid"] == os.getpid()


def test_lock_is_released_when_the_run_ends_or_fails(tmp_path):
    run_dir = tmp_path / "runs" / "r"
    with runlock.hold(run_dir):
        pass
    with runlock.hold(run_dir):  # released: taken again at once
        pass
    try:
        with runlock.hold(run_dir):
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    with runlock.hold(run_dir):
        # Held here: a second holder in this same process is refused too.
        rc, err = 0, ""
        try:
            with runlock.hold(run_dir):
                rc = 1
        except Exception as exc:  # noqa: BLE001
            err = str(exc)
        assert rc == 0 and f"pid {os.getpid()}" in err


def test_forked_trainers_racing_on_one_run_never_both_train(tmp_path):
    """Two trainers started together: exactly one trains, the other exits 2."""
    config = short_config(tmp_path, "race")
    load(config)
    a = os.fork()
    if a == 0:
        os._exit(fork_train(config, tmp_path / "a.log")[0] & 0xFF)
    rc_b, _ = fork_train(config, tmp_path / "b.log")
    _, status = os.waitpid(a, 0)
    rc_a = os.waitstatus_to_exitcode(status)
    assert sorted([rc_a, rc_b]) in ([0, 0], [0, 2]), (rc_a, rc_b)
    run_dir = load(config).run_dir
    starts = [r for r in records(run_dir, "run") if r["event"] in ("start", "resume")]
    if sorted([rc_a, rc_b]) == [0, 0]:
        # Not concurrent after all: the second saw a finished run and did nothing.
        assert len(starts) == 1
    assert [r["step"] for r in records(run_dir, "train")] == list(range(1, 5))


def test_a_run_that_fails_before_writing_leaves_no_run_directory(tmp_path):
    config = short_config(tmp_path, "empty")
    for p in (tmp_path / "corpus" / "prose").iterdir():
        p.write_bytes(b"\0binary\0")  # skipped as binary: the domain yields no documents
    rc, err = cli("train", str(config), "--no-progress")
    assert rc == 2 and "domains.prose" in err and len(err.strip().splitlines()) == 1, err
    assert not load(config).run_dir.exists()
