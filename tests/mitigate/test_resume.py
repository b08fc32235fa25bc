"""An average and MER survive a kill and a resume bit for bit: the rerun's records
(averages' included) and final weights equal an uninterrupted run's."""

from __future__ import annotations

import shutil

import pytest
import torch

from rewarm import checkpoint
from rewarm.train.trainer import train
from tests.mitigate.test_mer import _weights
from tests.runhelpers import cli, cli_killed_after_step_9, load, one_thread, records, write_config

UNIFORM_AND_MER = (
    'average = { kind = "uniform", every_tokens = 256, last = 3 }\n'
    "mer = { every_tokens = 384, beta = 0.3 }\n"
)


def _same_run(a, b) -> None:
    drop = {"tokens_per_s", "mfu", "seconds"}
    for kind in ("train", "eval", "stage"):
        ra = [{k: v for k, v in r.items() if k not in drop} for r in records(a, kind)]
        rb = [{k: v for k, v in r.items() if k not in drop} for r in records(b, kind)]
        assert ra == rb, kind
    wa = checkpoint.load_weights(checkpoint.latest(a / "checkpoints"))
    wb = checkpoint.load_weights(checkpoint.latest(b / "checkpoints"))
    assert all(torch.equal(wa[k], wb[k]) for k in wb)


@pytest.mark.slow
def test_sigkill_mid_stage_with_average_and_mer_resumes_bitwise(tmp_path):
    ref = load(write_config(tmp_path / "ref", "ref", extra=UNIFORM_AND_MER))
    with one_thread():
        train(ref, progress=False)
    path = write_config(tmp_path, "killed", extra=UNIFORM_AND_MER)
    args = ["train", str(path), "--no-progress"]
    # killed after step 9: the last checkpoint is step 8, where the average holds two
    # snapshots (steps 6 and 8) and MER its second anchor
    cli_killed_after_step_9(args)
    cfg = load(path)
    saved = cfg.run_dir / "checkpoints" / "step_00000008" / "mitigation.safetensors"
    assert saved.is_file()
    assert "mitigation.safetensors" in checkpoint.read_checksums(saved.parent)
    # A bit flip in the average's state is refused (exit 2, naming the file), not resumed.
    good = saved.read_bytes()
    saved.write_bytes(good[:-1] + bytes([good[-1] ^ 1]))
    refused = cli(args)
    assert refused.returncode == 2, refused.stderr[-2000:]
    assert "mitigation.safetensors: corrupt" in refused.stderr
    saved.write_bytes(good)
    rerun = cli(args)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert [r["step"] for r in records(cfg.run_dir, "run") if r["event"] == "resume"] == [8]
    assert any("weights" in r for r in records(cfg.run_dir, "eval"))
    _same_run(cfg.run_dir, ref.run_dir)


@pytest.mark.slow
@pytest.mark.parametrize(
    "extra",
    [
        'average = { kind = "ema", decay = 0.7 }\n',
        'average = { kind = "wsm", every_tokens = 128, last = 4, shape = "cosine" }\n',
        "merge = { weight = 0.5 }\n",
    ],
)
def test_resume_from_a_mid_stage_checkpoint_is_exact(tmp_path, extra):
    ref = load(write_config(tmp_path / "ref", "ref", extra=extra))
    with one_thread():
        train(ref, progress=False)
    # Rewind a copy to its step-8 checkpoint, as a crash after it would leave it.
    copy = tmp_path / "copy"
    shutil.copytree(tmp_path / "ref", copy, symlinks=True)
    cfg = load(write_config(copy, "ref", extra=extra, corpus=tmp_path / "ref" / "corpus"))
    ckpts = cfg.run_dir / "checkpoints"
    for later in ("step_00000010", "step_00000012"):
        shutil.rmtree(ckpts / later, ignore_errors=True)
    (ckpts / "latest").write_text("step_00000008\n", encoding="utf-8")
    assert _weights(cfg.run_dir, 8) is not None
    with one_thread():
        train(cfg, progress=False)
    assert [r["step"] for r in records(cfg.run_dir, "run") if r["event"] == "resume"] == [8]
    _same_run(cfg.run_dir, ref.run_dir)
