"""Checkpoints under faults: a full disk mid-write, corrupted files, a planted pickle.

Every case ends with exit code 2 and one stderr line naming the file, never a
traceback; the previous checkpoint, `latest` and metrics.jsonl stay valid.
"""

from __future__ import annotations

import errno
import json
import os
import pickle
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rewarm import checkpoint
from rewarm.runlog import RunLogWriter
from rewarm.train.trainer import train
from tests.reliability.relhelpers import assert_checkpoints_sound, cli
from tests.runhelpers import ONE_THREAD_ENV, copy_run, load, one_thread, train_losses, write_config


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """An uninterrupted two-stage run (checkpoints at steps 6, 8, 10, 12)."""
    tmp = tmp_path_factory.mktemp("faults_ref")
    cfg = load(write_config(tmp))
    with one_thread():
        train(cfg, progress=False)
    return cfg


def _mid_run(cfg, tmp: Path) -> tuple[Path, Path]:
    """A copy of the run rolled back to step 10 (resuming from it is real work)."""
    config = copy_run(cfg, tmp)
    root = load(config).run_dir / "checkpoints"
    shutil.rmtree(root / "step_00000012")
    (root / checkpoint.LATEST).write_text("step_00000010\n", encoding="utf-8")
    return config, root / "step_00000010"


def _one_line(stderr: str, *names: str) -> None:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    for name in names:
        assert name in lines[0], (name, lines[0])


def _snapshot(run_dir: Path) -> dict[str, bytes]:
    files = [p for p in sorted(run_dir.rglob("*")) if p.is_file() and p.name != "run.lock"]
    return {str(p.relative_to(run_dir)): p.read_bytes() for p in files}


def test_disk_full_mid_checkpoint_stops_cleanly_and_resumes_exactly(
    finished, tmp_path, monkeypatch
):
    config = write_config(tmp_path, "full")
    real = checkpoint.save_file
    calls = {"n": 0}

    def full_disk(tensors, filename, metadata=None):
        calls["n"] += 1
        if calls["n"] == 3:  # the stage-end checkpoint (step 6) fills the disk mid-write
            Path(filename).write_bytes(b"\0" * 100)
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), filename)
        return real(tensors, filename, metadata=metadata)

    monkeypatch.setattr(checkpoint, "save_file", full_disk)
    with one_thread():
        rc, err = cli("train", str(config), "--no-progress")
    assert rc == 2
    _one_line(err, "step_00000006", "No space left on device", "step_00000004")
    root = load(config).run_dir / "checkpoints"
    assert (root / "latest").read_text(encoding="utf-8").strip() == "step_00000004"
    assert not list(root.glob(".tmp-*")), "the partial checkpoint directory was left behind"
    assert_checkpoints_sound(root)

    monkeypatch.setattr(checkpoint, "save_file", real)  # space freed: rerun resumes
    with one_thread():
        rc, err = cli("train", str(config), "--no-progress")
    assert rc == 0, err
    assert train_losses(load(config).run_dir) == train_losses(finished.run_dir)


def test_disk_full_writing_metrics_stops_with_one_line(tmp_path, monkeypatch):
    config = write_config(tmp_path, "fullmetrics")
    real = RunLogWriter.write
    calls = {"n": 0}

    def full_disk(self, record):
        calls["n"] += 1
        if calls["n"] == 12:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self.path))
        return real(self, record)

    monkeypatch.setattr(RunLogWriter, "write", full_disk)
    with one_thread():
        rc, err = cli("train", str(config), "--no-progress")
    assert rc == 2
    _one_line(err, "metrics.jsonl", "No space left on device")
    assert_checkpoints_sound(load(config).run_dir / "checkpoints")
    monkeypatch.setattr(RunLogWriter, "write", real)
    with one_thread():
        rc, err = cli("train", str(config), "--no-progress")
    assert rc == 0, err
    steps = [s for s, _ in train_losses(load(config).run_dir)]
    assert steps == list(range(1, 13))


def test_unwritable_checkpoint_dir_stops_with_one_line(finished, tmp_path, monkeypatch):
    config, _ = _mid_run(finished, tmp_path)
    real_mkdir = Path.mkdir

    def denied(self, *args, **kwargs):
        if self.name.startswith(".tmp-step_"):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(self))
        return real_mkdir(self, *args, **kwargs)

    monkeypatch.setattr(Path, "mkdir", denied)
    with one_thread():
        rc, err = cli("train", str(config), "--no-progress")
    assert rc == 2
    _one_line(err, "cannot write checkpoint", "Permission denied", "step_00000010")
    root = load(config).run_dir / "checkpoints"
    assert (root / "latest").read_text(encoding="utf-8").strip() == "step_00000010"
    assert_checkpoints_sound(root)


def _corrupt_bytes(data: bytes, draw) -> bytes:
    kind = draw(st.sampled_from(["truncate", "garbage", "flip"]))
    if kind == "truncate":
        return data[: draw(st.integers(0, len(data) - 1))]
    if kind == "garbage":
        return draw(st.binary(min_size=0, max_size=300))
    i = draw(st.integers(0, min(len(data), 64) - 1))  # the header: sizes, offsets, zip magic
    return data[:i] + bytes([data[i] ^ 0xFF]) + data[i + 1 :]


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 10**6) | st.floats() | st.text(max_size=8),
    lambda kids: (
        st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=6), kids, max_size=3)
    ),
    max_leaves=8,
)


@settings(
    max_examples=10 if os.environ.get("CI") == "true" else 40,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
@given(data=st.data())
def test_corrupted_checkpoint_refuses_with_exit_2(finished, tmp_path, data):
    tmp = tmp_path / uuid.uuid4().hex
    config, ckpt = _mid_run(finished, tmp)
    target = data.draw(
        st.sampled_from([checkpoint.WEIGHTS, checkpoint.OPTIMIZER, checkpoint.STATE])
    )
    path = ckpt / target
    if target == checkpoint.STATE and data.draw(st.booleans()):
        # Valid JSON, wrong structure: drop or replace one top-level / loop entry.
        state = json.loads(path.read_text(encoding="utf-8"))
        section = data.draw(st.sampled_from(["top", "loop"]))
        where = state if section == "top" else state["loop"]
        key = data.draw(st.sampled_from(sorted(where)))
        if data.draw(st.booleans()):
            del where[key]
        else:
            # A value of the wrong type (a same-typed edit of plain JSON is not corruption
            # a checkpoint can detect; the tensor files have checksums for that).
            value = data.draw(JSON_VALUES.filter(lambda v: type(v) is not type(where[key])))
            if value == where[key]:
                value = [value]
            where[key] = value
        if section == "top" and key in ("step", "stage", "position", "stage_end", "world_size"):
            # Informational fields, not used to restore: nothing to refuse.
            return
        if section == "top" and key in ("plan_fingerprint", "config_hash") and key not in state:
            return  # no fingerprint/hash recorded (older checkpoints): accepted
        path.write_text(json.dumps(state), encoding="utf-8")
    else:
        path.write_bytes(_corrupt_bytes(path.read_bytes(), data.draw))
    run_dir = load(config).run_dir
    before = _snapshot(run_dir)
    with one_thread():
        try:
            rc, err = cli("train", str(config), "--no-progress")
        except Exception as exc:  # noqa: BLE001 - a traceback is the failure we look for
            pytest.fail(f"{target}: {type(exc).__name__}: {exc}")
    if rc == 0:  # only a corruption that changes nothing restored may train on
        pytest.fail(f"{target}: corrupted checkpoint was accepted")
    assert rc == 2
    _one_line(err, str(ckpt))
    assert _snapshot(run_dir) == before  # nothing written, nothing truncated


class PlantedCode:
    """Unpickling this would call open(MARKER, "w"), creating the marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _rehash(ckpt: Path) -> None:
    """Record the planted file's checksum, as a careful attacker would, so what
    refuses it is the weights-only unpickler, not the checksum."""
    sums = json.loads((ckpt / checkpoint.CHECKSUMS).read_text(encoding="utf-8"))
    sums[checkpoint.OPTIMIZER] = checkpoint.digest(ckpt / checkpoint.OPTIMIZER)
    (ckpt / checkpoint.CHECKSUMS).write_text(json.dumps(sums), encoding="utf-8")


@pytest.mark.parametrize("fmt", ["raw_pickle", "torch_zip"])
def test_planted_pickle_never_runs_in_process(finished, tmp_path, fmt):
    config, ckpt = _mid_run(finished, tmp_path)
    marker = tmp_path / "PWNED"
    evil = {"state": {0: PlantedCode(marker)}, "param_groups": []}
    if fmt == "raw_pickle":
        (ckpt / checkpoint.OPTIMIZER).write_bytes(pickle.dumps(evil))
    else:
        torch.save(evil, ckpt / checkpoint.OPTIMIZER)
    _rehash(ckpt)
    assert not marker.exists()
    with one_thread():
        rc, err = cli("train", str(config), "--no-progress")
    assert rc == 2
    _one_line(err, str(ckpt / checkpoint.OPTIMIZER), "refused")
    assert not marker.exists()
    # The control: plain unpickling *would* run it (so the test proves something).
    with open(ckpt / checkpoint.OPTIMIZER, "rb") as f:
        if fmt == "raw_pickle":
            pickle.load(f)
        else:
            torch.load(f, weights_only=False)
    assert marker.exists()


def test_planted_pickle_real_process_exit_code(finished, tmp_path):
    config, ckpt = _mid_run(finished, tmp_path)
    marker = tmp_path / "PWNED"
    # A raw pickle (protocol 5): torch would also print a protocol warning; it must not.
    (ckpt / checkpoint.OPTIMIZER).write_bytes(pickle.dumps({"state": {0: PlantedCode(marker)}}, 5))
    _rehash(ckpt)
    proc = subprocess.run(
        [sys.executable, "-m", "rewarm", "train", str(config), "--no-progress"],
        capture_output=True, text=True, check=False, env=ONE_THREAD_ENV, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr[-2000:]
    _one_line(proc.stderr, "optimizer.pt", "refused")
    assert not marker.exists()
