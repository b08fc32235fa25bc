"""Atomic checkpoints: latest, keep-last-K with stage ends kept, tied weights, safe loading."""

from __future__ import annotations

import json

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from rewarm import checkpoint
from rewarm.errors import UserError


def _save(root, step, stage_end=False, keep=2, opt=None):
    weights = {"w": torch.full((2, 2), float(step)), "b": torch.zeros(2)}
    return checkpoint.save(
        root,
        step,
        model_state=weights,
        model_config_json="{}",
        optimizer_state=opt,
        state={"step": step, "stage_end": stage_end},
        keep=keep,
    )


def test_latest_and_round_trip(tmp_path):
    opt = {
        "state": {0: {"step": torch.tensor(3.0), "exp_avg": torch.ones(2)}},
        "param_groups": [{"lr": 0.1, "params": [0]}],
    }
    path = _save(tmp_path, 7, opt=opt)
    assert path.name == "step_00000007"
    assert (tmp_path / "latest").read_text().strip() == "step_00000007"
    assert checkpoint.latest(tmp_path) == path
    assert checkpoint.read_state(path) == {"step": 7, "stage_end": False}
    assert torch.equal(checkpoint.load_weights(path)["w"], torch.full((2, 2), 7.0))
    loaded = checkpoint.load_optimizer(path)
    assert torch.equal(loaded["state"][0]["exp_avg"], torch.ones(2))
    assert not list(tmp_path.glob(".tmp-*"))


def test_optimizer_file_is_never_unpickled_as_code(tmp_path):
    path = _save(tmp_path, 1)

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    torch.save({"x": Evil()}, path / checkpoint.OPTIMIZER)
    with pytest.raises(Exception, match="[Ww]eights only"):
        checkpoint.load_optimizer(path)


@settings(max_examples=25, deadline=None)
@given(st.lists(st.booleans(), min_size=1, max_size=12), st.integers(1, 3))
def test_prune_keeps_last_k_periodic_and_every_stage_end(tmp_path_factory, ends, keep):
    root = tmp_path_factory.mktemp("ck")
    for step, end in enumerate(ends, start=1):
        _save(root, step, stage_end=end, keep=keep)
    left = sorted(int(p.name[5:]) for p in root.glob("step_*"))
    periodic = [s for s, e in enumerate(ends, start=1) if not e]
    expected = {s for s, e in enumerate(ends, start=1) if e} | set(periodic[-keep:]) | {len(ends)}
    assert set(left) == expected
    assert checkpoint.latest(root).name == checkpoint.step_dir_name(len(ends))


def test_incomplete_directory_is_ignored_and_latest_falls_back(tmp_path):
    _save(tmp_path, 1)
    _save(tmp_path, 2)
    # A crash mid-write leaves a temp dir, or a step dir without state.json.
    (tmp_path / ".tmp-step_00000003-999").mkdir()
    broken = tmp_path / "step_00000004"
    broken.mkdir()
    (broken / checkpoint.WEIGHTS).write_bytes(b"partial")
    assert checkpoint.latest(tmp_path).name == "step_00000002"
    (tmp_path / "latest").write_text("step_00000009\n")  # names a removed checkpoint
    assert checkpoint.latest(tmp_path).name == "step_00000002"
    _save(tmp_path, 5)
    assert not (tmp_path / ".tmp-step_00000003-999").exists()


def test_same_step_written_twice_replaces_it(tmp_path):
    _save(tmp_path, 3)
    path = _save(tmp_path, 3)
    assert checkpoint.read_state(path)["step"] == 3
    assert len(list(tmp_path.glob("step_*"))) == 1


def test_tied_weights_are_stored_once_and_restored(tmp_path):
    emb = torch.nn.Embedding(5, 3)
    head = torch.nn.Linear(3, 5, bias=False)
    head.weight = emb.weight
    model = torch.nn.ModuleDict({"emb": emb, "head": head})
    path = checkpoint.save(
        tmp_path,
        1,
        model_state=model.state_dict(),
        model_config_json="{}",
        optimizer_state=None,
        state={},
        keep=1,
    )
    stored = checkpoint.load_weights(path)
    assert len(stored) == 1
    fresh = torch.nn.ModuleDict(
        {"emb": torch.nn.Embedding(5, 3), "head": torch.nn.Linear(3, 5, bias=False)}
    )
    fresh["head"].weight = fresh["emb"].weight
    checkpoint.assign_weights(fresh, stored, "test")
    assert torch.equal(fresh["head"].weight, emb.weight)


def test_mismatched_weights_are_a_user_error(tmp_path):
    path = _save(tmp_path, 1)
    with pytest.raises(UserError, match="do not match"):
        checkpoint.assign_weights(torch.nn.Linear(2, 2), checkpoint.load_weights(path), "x")


def test_state_json_is_plain_json(tmp_path):
    path = _save(tmp_path, 1)
    assert json.loads((path / checkpoint.STATE).read_text())["step"] == 1
    with pytest.raises(UserError, match="not a rewarm checkpoint"):
        checkpoint.read_state(tmp_path)
