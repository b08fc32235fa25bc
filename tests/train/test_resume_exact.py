"""Exact resume: SIGKILL mid-stage, rerun, and the loss curve equals an uninterrupted run."""

from __future__ import annotations

import pytest

from tests.runhelpers import (
    cli,
    cli_killed_after_step_9,
    load,
    records,
    train_losses,
    write_config,
)


@pytest.mark.slow
def test_sigkill_mid_stage_then_rerun_is_bitwise_identical(finished, tmp_path):
    ref = finished[0]  # the same config, run without interruption
    cfg_path = write_config(tmp_path, "killed")
    args = ["train", str(cfg_path), "--no-progress"]
    cli_killed_after_step_9(args)  # mid-stage, between the checkpoints of steps 8 and 10
    cfg = load(cfg_path)
    assert max(s for s, _ in train_losses(cfg.run_dir)) == 9

    rerun = cli(args)
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
