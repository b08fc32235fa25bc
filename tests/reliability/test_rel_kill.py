"""Kill safety: SIGKILL a two-stage run at random moments, rerun it each time.

Each kill lands either at a random point in time (the parent kills the child) or
at a random *event* inside the child: before/after/in the middle of a checkpoint
file write, the `latest` update, a rename, pruning, a metrics record, or a stage
transition. After every kill `latest` must name a complete, loadable checkpoint;
every rerun must resume (exit 0 or be killed again, never fail); the finished
run's metrics must equal an uninterrupted run's bit for bit.

Kills: 20, or 4 under CI=true; REWARM_KILLS=N and REWARM_KILL_SEED=S override
(docs/reliability.md).
"""

from __future__ import annotations

import os
import random
import shutil
from pathlib import Path

import torch

from rewarm import atomic, checkpoint
from rewarm.runlog import RunLogWriter
from rewarm.train import trainer
from tests.reliability.relhelpers import assert_checkpoints_sound, fork_train
from tests.runhelpers import load, records, train_losses, write_config

KILLS = int(os.environ.get("REWARM_KILLS", "4" if os.environ.get("CI") == "true" else "20"))
# Every step is checkpointed so kills land in and around checkpoint writes often.
EXTRA = ["checkpoint.every_tokens=128", "checkpoint.keep=2"]


def _config(tmp: Path, name: str) -> Path:
    path = write_config(tmp, name)
    text = path.read_text(encoding="utf-8")
    text = text.replace("every_tokens = 256\nkeep = 2", "every_tokens = 128\nkeep = 2")
    assert "every_tokens = 128" in text
    path.write_text(text, encoding="utf-8")
    return path


def _install_hooks(kill_at: int, how: str, counter: Path | None = None) -> None:
    """In the child: count events; SIGKILL this process at event `kill_at`.

    how: "before" the call, "after" it, or "torn" (the file being written is left
    half-written, as if the kill hit mid-write; for the writers only).
    """
    n = {"events": 0}

    def die() -> None:
        os.kill(os.getpid(), 9)

    def hit() -> bool:
        n["events"] += 1
        if counter is not None:
            counter.write_text(str(n["events"]))
        return n["events"] == kill_at

    def tear(path: Path) -> None:
        data = Path(path).read_bytes()
        Path(path).write_bytes(data[: len(data) // 2])

    def wrap(obj: object, name: str, path_arg: int | None = None) -> None:
        real = getattr(obj, name)

        def hooked(*args, **kwargs):
            if not hit():
                return real(*args, **kwargs)
            if how == "before":
                die()
            out = real(*args, **kwargs)
            if how == "torn" and path_arg is not None:
                tear(args[path_arg])
            die()
            return out

        setattr(obj, name, hooked)

    wrap(checkpoint, "save_file", path_arg=1)
    wrap(torch, "save", path_arg=1)
    real_atomic = atomic.write_bytes

    def write_bytes(path, data):
        if hit():
            if how == "torn":  # killed mid-write: half of the temporary file, no rename
                tmp = Path(path).with_name(f".{Path(path).name}.{os.getpid()}-0badc0de.tmp")
                tmp.write_bytes(data[: len(data) // 2])
            elif how == "after":
                real_atomic(path, data)
            die()
        return real_atomic(path, data)

    atomic.write_bytes = write_bytes  # every atomic file write: checksums, state, latest, ...
    wrap(checkpoint, "prune")
    wrap(os, "replace")
    wrap(shutil, "copytree")
    wrap(trainer, "begin_stage")
    wrap(trainer, "end_stage")
    real_write = RunLogWriter.write

    def write(self, record):
        if hit() and how == "torn":
            self._f.write('{"kind": "' + record.kind + '", "ste')  # half a record, no newline
            self._f.flush()
            die()
        if n["events"] == kill_at and how == "before":
            die()
        real_write(self, record)
        if n["events"] == kill_at:
            die()

    RunLogWriter.write = write


def _final_checks(run_dir: Path, ref_dir: Path) -> None:
    assert train_losses(run_dir) == train_losses(ref_dir)  # floats round-trip JSON exactly
    assert [r["step"] for r in records(run_dir, "train")] == list(range(1, 13))
    drop = {"tokens_per_s", "mfu"}
    evals = [{k: v for k, v in r.items() if k not in drop} for r in records(run_dir, "eval")]
    assert evals == [
        {k: v for k, v in r.items() if k not in drop} for r in records(ref_dir, "eval")
    ]
    assert records(run_dir, "stage") == records(ref_dir, "stage")


def test_sigkill_at_random_moments_then_rerun_is_bitwise_identical(tmp_path):
    rng = random.Random(int(os.environ.get("REWARM_KILL_SEED", "20261124")))
    ref_cfg = _config(tmp_path, "ref")
    counter = tmp_path / "events"
    rc, ref_seconds = fork_train(
        ref_cfg, tmp_path / "ref.log", lambda: _install_hooks(-1, "after", counter)
    )
    assert rc == 0, (tmp_path / "ref.log").read_text()
    ref_dir = load(ref_cfg).run_dir
    events = int(counter.read_text())
    assert events > 100  # checkpoint writes, records and stage transitions were counted

    kills, run_no, resumes = 0, 0, 0
    cfg_path = _config(tmp_path, f"killed{run_no}")
    log = tmp_path / "children.log"
    history: list[str] = []
    while kills < KILLS:
        if len(history) % 4 == 1:  # a kill at a random instant, from outside
            delay = rng.uniform(0.05, ref_seconds)
            rc, _ = fork_train(cfg_path, log, kill_after=delay)
            history.append(f"t={delay:.2f}s")
        else:  # a kill at a random event inside the child
            at = rng.randint(1, max(2, 2 * events // KILLS))
            how = rng.choice(["before", "after", "torn"])
            rc, _ = fork_train(cfg_path, log, lambda a=at, h=how: _install_hooks(a, h))
            history.append(f"event {at} {how}")
        run_dir = load(cfg_path).run_dir
        assert rc in (0, -9), f"rerun failed after {history}: {log.read_text()[-3000:]}"
        assert_checkpoints_sound(run_dir / "checkpoints")
        if rc == -9:
            kills += 1
            continue
        # The run finished before the kill point: check it, go on with a fresh run.
        resumes += sum(r["event"] == "resume" for r in records(run_dir, "run"))
        _final_checks(run_dir, ref_dir)
        run_no += 1
        cfg_path = _config(tmp_path, f"killed{run_no}")
    rc, _ = fork_train(cfg_path, log)
    assert rc == 0, f"final rerun failed after {history}: {log.read_text()[-3000:]}"
    run_dir = load(cfg_path).run_dir
    resumes += sum(r["event"] == "resume" for r in records(run_dir, "run"))
    _final_checks(run_dir, ref_dir)
    assert resumes >= 1, history
    assert "Traceback" not in log.read_text()
