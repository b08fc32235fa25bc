"""Task evaluation under `torchrun --nproc_per_node=2` (gloo, CPU): with DDP the
harness shards the items over the ranks, with FSDP every rank evaluates everything;
either way rank 0 writes one set of task records, and they match a single-process
evaluation of the same checkpoints."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from rewarm import checkpoint
from rewarm.cli import main
from rewarm.runconfig import load
from rewarm.runlog import read_run
from tests.tasks.taskhelpers import write_config

pytest.importorskip("lm_eval", reason="needs the tasks extra: pip install 'rewarm[tasks]'")

TOKENS, LIMIT = 2048, 24


@pytest.mark.slow
@pytest.mark.parametrize("fsdp", [False, True], ids=["ddp", "fsdp"])
def test_two_process_task_records_match_one_process_evaluation(tmp_path, capsys, fsdp):
    path = write_config(tmp_path, tokens=TOKENS, task_every=1024, limit=LIMIT)
    sets = ["--set", f"train.fsdp={str(fsdp).lower()}"]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    cmd += ["-m", "rewarm", "train", str(path), "--no-progress", *sets]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, env=env, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    cfg = load(path, [sets[1]])
    log = read_run(cfg.run_dir)
    assert log.start is not None and log.start.world_size == 2
    # Rank 0 alone writes: one record per evaluation point (two at the boundary).
    mine = [r for r in log.tasks if r.task == "rewarm_api_next_line"]
    assert sorted(r.tokens for r in mine) == [0, 1024, 2048, 2048, 3072, 4096]
    yaml = cfg.data_dir / "tasks" / "api-next-line-64" / "task.yaml"
    for ckpt in sorted((cfg.run_dir / "checkpoints").glob("step_*")):
        tokens = checkpoint.read_state(ckpt)["loop"]["tokens"]
        capsys.readouterr()
        assert main(["eval", str(ckpt), "--tasks", str(yaml), "--limit", str(LIMIT), "--json"]) == 0
        single = json.loads(capsys.readouterr().out)
        for r in (r for r in mine if r.tokens == tokens):
            assert r.samples == LIMIT
            # The same weights; sharded batches may round differently, so within the
            # standard error (exactly, in practice).
            assert abs(r.value - single["value"]) <= single["stderr"]
