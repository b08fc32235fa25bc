"""train.nonfinite: skip a bad batch (up to max_nonfinite_skips) or stop, with a record."""

from __future__ import annotations

import pytest
import torch

from rewarm import checkpoint
from rewarm.train import step as step_mod
from rewarm.train.trainer import NonFiniteError, train
from tests.runhelpers import load, one_thread, records, write_config


def _poison(monkeypatch, bad_calls: set[int]) -> None:
    """Make the micro-batch losses of the given calls (0-based) NaN."""
    real = step_mod.micro_batch_loss
    calls = {"n": 0}

    def fake(model, tokens):
        loss = real(model, tokens)
        i, calls["n"] = calls["n"], calls["n"] + 1
        return loss * float("nan") if i in bad_calls else loss

    monkeypatch.setattr(step_mod, "micro_batch_loss", fake)


def test_skip_leaves_weights_untouched_and_logs_the_step(tmp_path, monkeypatch):
    # Step 3 (micro-batch calls 4 and 5) is poisoned; checkpoints after every step.
    cfg = load(
        write_config(tmp_path, "skip"),
        "checkpoint.every_tokens=128",
        "checkpoint.keep=20",
        "stages.1.tokens=128",
    )
    _poison(monkeypatch, {4})
    with one_thread():
        train(cfg, progress=False)
    bad = [r for r in records(cfg.run_dir, "run") if r["event"] == "nonfinite"]
    assert [(r["step"], r["action"]) for r in bad] == [(3, "skip")]
    root = cfg.run_dir / "checkpoints"
    before = checkpoint.load_weights(root / "step_00000002")
    after = checkpoint.load_weights(root / "step_00000003")
    assert all(torch.equal(before[k], after[k]) for k in before)
    later = checkpoint.load_weights(root / "step_00000004")
    assert not all(torch.equal(after[k], later[k]) for k in after)
    assert records(cfg.run_dir, "run")[-1]["event"] == "end"


@pytest.mark.parametrize(("policy", "max_skips", "stop_step"), [("stop", 3, 2), ("skip", 1, 3)])
def test_stop_raises_with_a_clear_message(tmp_path, monkeypatch, policy, max_skips, stop_step):
    cfg = load(
        write_config(tmp_path, policy),
        f'train.nonfinite="{policy}"',
        f"train.max_nonfinite_skips={max_skips}",
    )
    _poison(monkeypatch, {2, 4})  # steps 2 and 3
    with one_thread(), pytest.raises(NonFiniteError, match=f"at step {stop_step}"):
        train(cfg, progress=False)
    bad = [r for r in records(cfg.run_dir, "run") if r["event"] == "nonfinite"]
    assert bad[-1]["step"] == stop_step and bad[-1]["action"] == "stop"
