"""`torchrun --nproc_per_node=2` (gloo, CPU) follows the single-process loss curve."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest
import torch

from rewarm import checkpoint
from rewarm.model.presets import preset_config
from rewarm.train.distributed import shard_units
from rewarm.train.trainer import train
from tests.runhelpers import ONE_THREAD_ENV, load, one_thread, records, train_losses, write_config


@pytest.mark.slow
def test_two_process_ddp_matches_one_process(finished, tmp_path):
    ref = finished[0]
    path = write_config(tmp_path, "ddp")
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        "-m",
        "rewarm",
        "train",
        str(path),
        "--no-progress",
    ]
    proc = subprocess.run(
        cmd, capture_output=True, text=True, check=False, env=ONE_THREAD_ENV, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    cfg = load(path)
    ddp, single = train_losses(cfg.run_dir), train_losses(ref.run_dir)
    assert [s for s, _ in ddp] == [s for s, _ in single] == list(range(1, 13))
    for (step, a), (_, b) in zip(ddp, single, strict=True):
        assert a == pytest.approx(b, rel=1e-5), step
    assert records(cfg.run_dir, "run")[0]["world_size"] == 2
    # Only rank 0 logs: one record per step, one start, one end.
    assert [r["event"] for r in records(cfg.run_dir, "run")] == ["start", "end"]
    # Evaluation splits the windows over ranks and all-reduces: same numbers.
    ev = {(r["step"], r["domain"]): r["loss"] for r in records(cfg.run_dir, "eval")}
    ev_ref = {(r["step"], r["domain"]): r["loss"] for r in records(ref.run_dir, "eval")}
    assert ev.keys() == ev_ref.keys()
    assert all(ev[k] == pytest.approx(ev_ref[k], rel=1e-4) for k in ev)


@pytest.mark.slow
def test_two_process_fsdp_matches_one_process(finished, tmp_path):
    """train.fsdp shards every `_no_split_modules` layer; the loss curve is unchanged and
    only rank 0 writes its notices."""
    ref = finished[0]
    path = write_config(tmp_path, "fsdp")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    cmd += ["-m", "rewarm", "train", str(path), "--no-progress", "--set", "train.fsdp=true"]
    # The gathered (full) checkpoint format under FSDP2; "auto" would write sharded ones,
    # which test_torchrun_resharding.py covers.
    cmd += ["--set", 'checkpoint.format="full"']
    proc = subprocess.run(
        cmd, capture_output=True, text=True, check=False, env=ONE_THREAD_ENV, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    cfg = load(path, "train.fsdp=true")
    fsdp, single = train_losses(cfg.run_dir), train_losses(ref.run_dir)
    assert [s for s, _ in fsdp] == [s for s, _ in single] == list(range(1, 13))
    for (step, a), (_, b) in zip(fsdp, single, strict=True):
        assert a == pytest.approx(b, rel=1e-5), step
    assert records(cfg.run_dir, "run")[0]["world_size"] == 2
    # The rank filter: the closing notice comes from rank 0 only.
    assert proc.stderr.count("rewarm train: fsdp: 12 steps") == 1, proc.stderr[-3000:]
    assert (checkpoint.latest(cfg.run_dir / "checkpoints") / checkpoint.WEIGHTS).is_file()


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("c++") is None, reason="Inductor needs a C++ compiler")
def test_two_process_ddp_with_compile_matches_one_eager_process(tmp_path):
    """Under torchrun, train.compile compiles the DDP-wrapped model (the loss runs eagerly)."""
    short = ["stages.0.tokens=384", "stages.1.tokens=256"]
    eager = load(write_config(tmp_path, "eager"), *short)
    with one_thread():
        train(eager, progress=False)
    path = write_config(tmp_path, "ddpc")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    cmd += ["-m", "rewarm", "train", str(path), "--no-progress", "--set", "train.compile=true"]
    for item in short:
        cmd += ["--set", item]
    # Inductor compiles in each rank's own process (no pool of compile workers per rank
    # competing for two cores); the test is about DDP + compile, not parallel compilation.
    env = {**ONE_THREAD_ENV, "TORCHINDUCTOR_COMPILE_THREADS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ddp, single = train_losses(load(path, *short).run_dir), train_losses(eager.run_dir)
    assert [s for s, _ in ddp] == [s for s, _ in single] == [1, 2, 3, 4, 5]
    for (step, a), (_, b) in zip(ddp, single, strict=True):
        assert a == pytest.approx(b, rel=1e-5), step


def test_fsdp_units_are_the_model_s_no_split_modules() -> None:
    """FSDP2 shards what the model declares (`_no_split_modules`), not a guessed ModuleList."""
    from transformers import LlamaForCausalLM

    cfg = preset_config("llama-tiny", vocab_size=300, seq_len=32, overrides={}, where="test")
    model = LlamaForCausalLM(cfg)
    units = shard_units(model)
    assert units == list(model.model.layers) and len(units) == cfg.num_hidden_layers

    class Block(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = torch.nn.ModuleList([torch.nn.Linear(2, 2)])  # a ModuleList first
            self.sub = Leaf()

    class Leaf(torch.nn.Linear):
        def __init__(self) -> None:
            super().__init__(2, 2)

    class Net(torch.nn.Module):
        _no_split_modules = ["Block", "Leaf"]

        def __init__(self) -> None:
            super().__init__()
            self.blocks = torch.nn.ModuleList([Block(), Block()])

    net = Net()
    assert shard_units(net) == list(net.blocks)  # the outermost of nested units
    net._no_split_modules = None
    assert shard_units(net) == []  # nothing declared: the root is the one unit
