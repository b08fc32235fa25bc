"""Sharded checkpoints in one process: round trip, checksums, safe loading, failures, copies."""

from __future__ import annotations

import errno
import json
import os
import pickle

import pytest
import torch

from rewarm import checkpoint, sharded_checkpoint
from rewarm.errors import UserError
from rewarm.model.hf import load_checkpoint_model
from rewarm.model.presets import preset_config
from rewarm.train import distributed


def _trained():
    from transformers import LlamaForCausalLM

    torch.manual_seed(0)
    cfg = preset_config("llama-tiny", vocab_size=300, seq_len=16, overrides={}, where="test")
    model = LlamaForCausalLM(cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    tokens = torch.randint(0, 300, (2, 17))
    model(input_ids=tokens[:, :-1], labels=tokens[:, 1:]).loss.backward()
    opt.step()
    return model, opt


def _save(root, model, opt, step=3, keep=2):
    return sharded_checkpoint.save(
        root,
        step,
        state_dict=distributed.sharded_state(model, opt),
        model_config_json=model.config.to_json_string(),
        state={"step": step, "stage_end": False},
        keep=keep,
    )


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    root = tmp_path_factory.mktemp("sharded") / "checkpoints"
    model, opt = _trained()
    return root, _save(root, model, opt), model, opt


def test_round_trip_of_weights_and_optimizer_state(saved):
    root, path, model, opt = saved
    assert path.name == "step_00000003" and checkpoint.latest(root) == path
    assert checkpoint.is_complete(path) and checkpoint.is_sharded(path)
    assert not (path / checkpoint.WEIGHTS).exists()
    sums = checkpoint.read_checksums(path)
    assert sorted(sums) == ["dcp/.metadata", "dcp/__0_0.distcp"]
    fresh, fresh_opt = _trained()  # same init, then a different step: overwritten below
    for p in fresh.parameters():
        p.data.add_(1.0)
    state = distributed.sharded_state(fresh, fresh_opt)
    sharded_checkpoint.load(path, state)
    distributed.load_sharded_state(fresh, fresh_opt, state)
    for a, b in zip(model.parameters(), fresh.parameters(), strict=True):
        assert torch.equal(a, b)
    want, got = opt.state_dict(), fresh_opt.state_dict()
    for k, v in want["state"].items():
        assert torch.equal(v["exp_avg_sq"], got["state"][k]["exp_avg_sq"])
        assert torch.equal(v["step"], got["state"][k]["step"])


def test_export_path_reads_the_model_alone(saved, tmp_path):
    _, path, model, _ = saved
    loaded = load_checkpoint_model(path)
    tokens = torch.randint(0, 300, (2, 9))
    with torch.no_grad():
        assert torch.equal(loaded(input_ids=tokens).logits, model(input_ids=tokens).logits)


def test_a_flipped_byte_in_a_shard_is_refused(saved, tmp_path):
    _, path, _, _ = saved
    copy = checkpoint.copy_to(path, tmp_path / "ck", link=False)
    shard = copy / "dcp" / "__0_0.distcp"
    data = bytearray(shard.read_bytes())
    data[len(data) // 2] ^= 1
    shard.write_bytes(bytes(data))
    with pytest.raises(UserError, match=r"__0_0\.distcp: corrupt"):
        load_checkpoint_model(copy)


class _Planted:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_planted_metadata_pickle_never_runs(saved, tmp_path):
    """A `.metadata` whose unpickling would run code, with a matching checksum (as a
    careful attacker would leave it), is refused; plain pickle would have run it."""
    _, path, _, _ = saved
    copy = checkpoint.copy_to(path, tmp_path / "ck", link=False)
    marker = tmp_path / "pwned"
    meta = copy / "dcp" / ".metadata"
    meta.write_bytes(pickle.dumps(_Planted(str(marker))))
    sums = checkpoint.read_checksums(copy)
    sums["dcp/.metadata"] = checkpoint.digest(meta)
    (copy / checkpoint.CHECKSUMS).write_text(json.dumps(sums), encoding="utf-8")
    with pytest.raises(UserError, match="refused by the weights only unpickler"):
        load_checkpoint_model(copy)
    assert not marker.exists()
    pickle.loads(meta.read_bytes())  # the control: the plant is real
    assert marker.exists()


def test_a_failed_write_is_one_error_and_leaves_the_previous_checkpoint(
    saved, tmp_path, monkeypatch
):
    _, path, model, opt = saved
    root = tmp_path / "ck"
    checkpoint.copy_to(path, root)
    real = sharded_checkpoint.FileSystemWriter.write_data

    def full_disk(self, plan, planner):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(sharded_checkpoint.FileSystemWriter, "write_data", full_disk)
    with pytest.raises(UserError) as err:
        _save(root, model, opt, step=5)
    message = str(err.value)
    assert "step_00000005: cannot write checkpoint" in message and "\n" not in message
    assert "step_00000003" in message  # the intact one is named
    assert (root / "latest").read_text().strip() == "step_00000003"
    assert sorted(p.name for p in root.iterdir()) == ["latest", "step_00000003"]
    monkeypatch.setattr(sharded_checkpoint.FileSystemWriter, "write_data", real)
    assert _save(root, model, opt, step=5).name == "step_00000005"


def test_copy_to_links_a_complete_checkpoint_into_another_run(saved, tmp_path):
    _, path, model, _ = saved
    copy = checkpoint.copy_to(path, tmp_path / "other" / "checkpoints", step=0)
    assert copy.name == "step_00000000" and checkpoint.latest(copy.parent) == copy
    shard = "dcp/__0_0.distcp"
    assert os.path.samefile(copy / shard, path / shard)  # hard-linked, not copied
    assert checkpoint.read_state(copy) == checkpoint.read_state(path)
    loaded = load_checkpoint_model(copy)
    assert all(
        torch.equal(a, b) for a, b in zip(loaded.parameters(), model.parameters(), strict=True)
    )
    with pytest.raises(UserError, match="not a complete"):
        checkpoint.copy_to(tmp_path, tmp_path / "x")
