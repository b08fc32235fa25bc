"""Exact resume: SIGKILL mid-stage, rerun, and the loss curve equals an uninterrupted run."""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest

from tests.runhelpers import ONE_THREAD_ENV, load, records, train_losses, write_config

# The child kills itself with SIGKILL right after writing the train record of step 9
# (stage two runs steps 7-12; the last checkpoint before the kill is step 8), so the
# kill lands mid-stage, between checkpoints, on any machine speed.
KILLED_CHILD = """
import os, signal, sys
from rewarm.train import trainer
real = trainer.log_train
def log_then_die(s, *args):
    real(s, *args)
    if s.state.step == 9:
        os.kill(os.getpid(), signal.SIGKILL)
trainer.log_train = log_then_die
from rewarm.cli import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.slow
def test_sigkill_mid_stage_then_rerun_is_bitwise_identical(finished, tmp_path):
    ref = finished[0]  # the same config, run without interruption
    cfg_path = write_config(tmp_path, "killed")
    args = ["train", str(cfg_path), "--no-progress"]
    killed = subprocess.run(
        [sys.executable, "-c", KILLED_CHILD, *args],
        capture_output=True, text=True, check=False, env=ONE_THREAD_ENV,
    )  # fmt: skip
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    cfg = load(cfg_path)
    assert max(s for s, _ in train_losses(cfg.run_dir)) == 9

    rerun = subprocess.run(
        [sys.executable, "-m", "rewarm", *args],
        capture_output=True, text=True, check=False, env=ONE_THREAD_ENV,
    )  # fmt: skip
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    resumed = [r for r in records(cfg.run_dir, "run") if r["event"] == "resume"]
    assert [r["step"] for r in resumed] == [8]
    # Bitwise: floats round-trip exactly through JSON.
    assert train_losses(cfg.run_dir) == train_losses(ref.run_dir)
    drop = {"tokens_per_s", "mfu"}
    evals = [{k: v for k, v in r.items() if k not in drop} for r in records(cfg.run_dir, "eval")]
    assert evals == records(ref.run_dir, "eval")
    assert records(cfg.run_dir, "stage") == records(ref.run_dir, "stage")
    # The killed process's records after step 8 were cut, then written once again.
    assert [r["step"] for r in records(cfg.run_dir, "train")] == list(range(1, 13))
