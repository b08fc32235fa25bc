"""MER and an average under `torchrun --nproc_per_node=2` (gloo, CPU), DDP and FSDP2:
the loss curve and the average's evaluations follow one process, and a resume from a
mid-stage checkpoint written by the sharded run is exact."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest
import torch

from rewarm import checkpoint
from rewarm.train.trainer import train
from tests.runhelpers import ONE_THREAD_ENV, load, one_thread, records, train_losses, write_config

EXTRA = (
    'average = { kind = "uniform", every_tokens = 256, last = 2 }\n'
    "mer = { every_tokens = 256, beta = 0.5 }\n"
)


def _torchrun(path, *sets: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    cmd += ["-m", "rewarm", "train", str(path), "--no-progress"]
    for s in sets:
        cmd += ["--set", s]
    return subprocess.run(
        cmd, capture_output=True, text=True, check=False, env=ONE_THREAD_ENV, timeout=600
    )


@pytest.fixture(scope="module")
def single(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("mer_single")
    cfg = load(write_config(tmp, "single", extra=EXTRA))
    with one_thread():
        train(cfg, progress=False)
    return cfg


def _weights(ckpt):
    """A checkpoint's full weights, sharded (FSDP's default format) or not."""
    if not checkpoint.is_sharded(ckpt):
        return checkpoint.load_weights(ckpt)
    from transformers import AutoConfig, AutoModelForCausalLM

    from rewarm import sharded_checkpoint

    model = AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(ckpt))
    sharded_checkpoint.load_model_weights(ckpt, model, str(ckpt))
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _side(run_dir):
    return {(r["step"], r["domain"]): r["loss"] for r in records(run_dir, "eval") if "weights" in r}


@pytest.mark.slow
@pytest.mark.parametrize("fsdp", [False, True], ids=["ddp", "fsdp"])
def test_two_processes_follow_one_with_mer_and_an_average(single, tmp_path, fsdp):
    sets = ["train.fsdp=true"] if fsdp else []
    path = write_config(tmp_path, "dist", extra=EXTRA)
    proc = _torchrun(path, *sets)
    assert proc.returncode == 0, proc.stderr[-3000:]
    cfg = load(path, *sets)
    dist, one = train_losses(cfg.run_dir), train_losses(single.run_dir)
    assert [s for s, _ in dist] == [s for s, _ in one] == list(range(1, 13))
    for (step, a), (_, b) in zip(dist, one, strict=True):
        assert a == pytest.approx(b, rel=1e-4), step
    side, side_one = _side(cfg.run_dir), _side(single.run_dir)
    assert side.keys() == side_one.keys() and side
    assert all(side[k] == pytest.approx(side_one[k], rel=1e-4) for k in side)
    if not fsdp:
        return
    assert checkpoint.is_sharded(checkpoint.latest(cfg.run_dir / "checkpoints"))
    # Resume the sharded run from its step-8 checkpoint (average window, MER anchor saved
    # as full tensors, scattered back into shards): the same records again.
    ckpts = cfg.run_dir / "checkpoints"
    before = {k: records(cfg.run_dir, k) for k in ("train", "eval")}
    final = _weights(checkpoint.latest(ckpts))
    for later in ("step_00000010", "step_00000012"):
        shutil.rmtree(ckpts / later, ignore_errors=True)
    (ckpts / "latest").write_text("step_00000008\n", encoding="utf-8")
    proc = _torchrun(path, *sets)
    assert proc.returncode == 0, proc.stderr[-3000:]
    drop = {"tokens_per_s", "mfu", "seconds"}
    for kind, recs in before.items():
        again = [{k: v for k, v in r.items() if k not in drop} for r in records(cfg.run_dir, kind)]
        assert again == [{k: v for k, v in r.items() if k not in drop} for r in recs], kind
    resumed = _weights(checkpoint.latest(ckpts))
    assert all(torch.equal(resumed[k], final[k]) for k in final)
