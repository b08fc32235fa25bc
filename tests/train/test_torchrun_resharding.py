"""Sharded checkpoints under torchrun (gloo, CPU): killed mid-save, resumed on another
number of processes (2 -> 1, 1 -> 2), exported; activation checkpointing with DDP/FSDP2.

Each test trains the runhelpers two-stage run (12 steps, checkpoints every 2 steps,
stage end at step 6) and compares its losses with the uninterrupted one-process run
(`finished`): within 1e-5 relative, the float drift of splitting a batch over ranks.
"""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from rewarm import checkpoint
from rewarm.model.export import export
from rewarm.model.hf import load_checkpoint_model
from rewarm.train.trainer import train
from tests.runhelpers import (
    ONE_THREAD_ENV,
    cli_killed_after_step_9,
    load,
    one_thread,
    records,
    train_losses,
    write_config,
)

# Run as `torchrun ... SCRIPT train CONFIG ...`: the CLI, with every process SIGKILLing
# itself right after its shards of the step-10 checkpoint are written (the temporary
# directory then holds both ranks' shards and DCP's metadata, but no state.json).
KILLED_MID_SAVE = """
import os, signal, sys
from rewarm import sharded_checkpoint
real = sharded_checkpoint._write_shards
def write_then_die(tmp, state_dict):
    out = real(tmp, state_dict)
    if "step_00000010" in tmp.name:
        os.kill(os.getpid(), signal.SIGKILL)
    return out
sharded_checkpoint._write_shards = write_then_die
from rewarm.cli import main
sys.exit(main(sys.argv[1:]))
"""


def _torchrun(entry: list[str], config: Path, sets: list[str]) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    cmd += [*entry, "train", str(config), "--no-progress"]
    for item in sets:
        cmd += ["--set", item]
    return subprocess.run(
        cmd, capture_output=True, text=True, check=False, env=ONE_THREAD_ENV, timeout=400
    )


def _assert_follows(run_dir: Path, ref_dir: Path) -> None:
    got, want = train_losses(run_dir), train_losses(ref_dir)
    assert [s for s, _ in got] == [s for s, _ in want] == list(range(1, 13))
    for (step, a), (_, b) in zip(got, want, strict=True):
        assert a == pytest.approx(b, rel=1e-5), step
    ev = {(r["step"], r["domain"]): r["loss"] for r in records(run_dir, "eval")}
    ev_ref = {(r["step"], r["domain"]): r["loss"] for r in records(ref_dir, "eval")}
    assert ev.keys() == ev_ref.keys()
    assert all(ev[k] == pytest.approx(ev_ref[k], rel=1e-4) for k in ev)


def _world_changes(run_dir: Path) -> list[tuple[int, int, int]]:
    return [
        (r["step"], r["old_world_size"], r["new_world_size"])
        for r in records(run_dir, "run")
        if r["event"] == "world_size_changed"
    ]


def _logits(model: torch.nn.Module) -> torch.Tensor:
    tokens = torch.arange(40).reshape(2, 20) % 250
    with torch.no_grad():
        return model.eval()(input_ids=tokens).logits


@pytest.mark.slow
def test_two_rank_sharded_checkpoint_killed_mid_save_resumes_on_one_process(
    finished, tmp_path, caplog
):
    """FSDP2 + full activation checkpointing on 2 ranks writes sharded checkpoints
    (checkpoint.format = "auto"); both ranks die inside the step-10 save; one process
    resumes from step 8 and finishes on the uninterrupted run's curve. The stage-end
    checkpoint the two ranks wrote exports to a Hugging Face directory."""
    ref = finished[0]
    sets = ["train.fsdp=true", 'train.activation_checkpointing="full"']
    path = write_config(tmp_path, "two2one")
    script = tmp_path / "killed_mid_save.py"
    script.write_text(KILLED_MID_SAVE, encoding="utf-8")
    proc = _torchrun([str(script)], path, sets)
    assert proc.returncode != 0, proc.stderr[-3000:]
    cfg = load(path, *sets)
    root = cfg.run_dir / "checkpoints"
    assert (root / checkpoint.LATEST).read_text().strip() == "step_00000008"
    [partial] = root.glob(".tmp-step_00000010-*")
    assert not (partial / checkpoint.STATE).exists()
    written = sorted(p.name for p in (partial / "dcp").iterdir())
    assert written == [".metadata", "__0_0.distcp", "__1_0.distcp"]  # both ranks wrote
    for step in (6, 8):  # complete, sharded, one file per rank, no gathered copy
        done = root / checkpoint.step_dir_name(step)
        assert checkpoint.is_sharded(done) and not (done / checkpoint.WEIGHTS).exists()
        assert sorted(p.name for p in (done / "dcp").glob("*.distcp")) == [
            "__0_0.distcp",
            "__1_0.distcp",
        ]

    with one_thread(), caplog.at_level(logging.INFO, logger="rewarm"):
        train(cfg, progress=False)
    _assert_follows(cfg.run_dir, ref.run_dir)
    assert _world_changes(cfg.run_dir) == [(8, 2, 1)]
    notices = [r.getMessage() for r in caplog.records if "process(es)" in r.getMessage()]
    assert notices == [
        "rewarm train: the checkpoint was written by 2 process(es), resuming with 1; "
        "the global batch (128 tokens), data order and schedule are unchanged"
    ]
    assert not list(root.glob(".tmp-*"))  # the partial save was cleaned up

    # Export of the two ranks' stage-end checkpoint: the same logits as the weights DCP's
    # own converter reads from it, and (to float drift) as the one-process run's.
    from torch.distributed.checkpoint.format_utils import dcp_to_torch_save
    from transformers import AutoModelForCausalLM

    stage_end = root / "step_00000006"
    out = export(stage_end, tmp_path / "exported")
    exported = AutoModelForCausalLM.from_pretrained(out)
    dcp_to_torch_save(stage_end / "dcp", tmp_path / "whole.pt")
    whole = torch.load(tmp_path / "whole.pt", weights_only=True)["model"]
    direct = load_checkpoint_model(ref.run_dir / "checkpoints" / "step_00000006")
    direct.load_state_dict(whole)
    assert torch.equal(_logits(exported), _logits(direct))
    one_process = load_checkpoint_model(ref.run_dir / "checkpoints" / "step_00000006")
    torch.testing.assert_close(_logits(exported), _logits(one_process), rtol=1e-4, atol=1e-4)


@pytest.mark.slow
def test_one_process_sharded_checkpoint_resumes_on_two_fsdp_processes(finished, tmp_path):
    """One process writes sharded checkpoints (checkpoint.format = "sharded", selective
    recomputation), dies after step 9; two FSDP2 processes reshard step 8 and finish."""
    ref = finished[0]
    sets = [
        "train.fsdp=true",
        'train.activation_checkpointing="selective"',
        'checkpoint.format="sharded"',
    ]
    path = write_config(tmp_path, "one2two")
    args = ["train", str(path), "--no-progress"] + [x for s in sets for x in ("--set", s)]
    cli_killed_after_step_9(args)  # one process; its last checkpoint: step 8
    cfg = load(path, *sets)
    root = cfg.run_dir / "checkpoints"
    assert checkpoint.latest(root) == root / "step_00000008"
    assert [p.name for p in (root / "step_00000008" / "dcp").glob("*.distcp")] == ["__0_0.distcp"]

    proc = _torchrun(["-m", "rewarm"], path, sets)
    assert proc.returncode == 0, proc.stderr[-3000:]
    _assert_follows(cfg.run_dir, ref.run_dir)
    assert _world_changes(cfg.run_dir) == [(8, 1, 2)]
    assert proc.stderr.count("written by 1 process(es), resuming with 2") == 1  # rank 0 only
    last = sorted(p.name for p in (root / "step_00000012" / "dcp").glob("*.distcp"))
    assert last == ["__0_0.distcp", "__1_0.distcp"]


@pytest.mark.slow
def test_two_process_ddp_with_activation_checkpointing_matches_one_process(finished, tmp_path):
    ref = finished[0]
    path = write_config(tmp_path, "ddpac")
    proc = _torchrun(["-m", "rewarm"], path, ['train.activation_checkpointing="full"'])
    assert proc.returncode == 0, proc.stderr[-3000:]
    cfg = load(path, 'train.activation_checkpointing="full"')
    _assert_follows(cfg.run_dir, ref.run_dir)
    # DDP under "auto" keeps the full format: one gathered copy, written by rank 0.
    assert (checkpoint.latest(cfg.run_dir / "checkpoints") / checkpoint.WEIGHTS).is_file()
