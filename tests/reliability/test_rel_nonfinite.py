"""Non-finite loss or gradients through the CLI: train.nonfinite = "skip" (up to
train.max_nonfinite_skips, then stop) or "stop"; one clear line, the step in
metrics.jsonl, and a run that resumes cleanly once the cause is gone."""

from __future__ import annotations

import pytest
import torch

from rewarm import checkpoint
from rewarm.train import step as step_mod
from tests.reliability.relhelpers import cli, short_config
from tests.runhelpers import load, one_thread, records


class NanGradient(torch.autograd.Function):
    """Identity forward (the loss stays finite), NaN backward (every gradient is NaN)."""

    @staticmethod
    def forward(ctx, x):
        return x.clone()

    @staticmethod
    def backward(ctx, grad):
        return grad * float("nan")


def _inject(monkeypatch, bad_steps: set[int], where: str) -> None:
    """NaN in the loss or in the gradients of the given optimizer steps (1-based)."""
    real = step_mod.train_step
    seen = {"step": 0}

    def micro_loss(model, tokens, _real=step_mod.micro_batch_loss):
        loss = _real(model, tokens)
        if seen["step"] in bad_steps:
            return loss * float("nan") if where == "loss" else NanGradient.apply(loss)
        return loss

    def counted(*args, **kwargs):
        seen["step"] += 1
        return real(*args, **kwargs)

    monkeypatch.setattr(step_mod, "micro_batch_loss", micro_loss)
    from rewarm.train import trainer

    monkeypatch.setattr(trainer, "train_step", counted)


@pytest.mark.parametrize("where", ["loss", "gradient"])
def test_skip_policy_skips_then_finishes(tmp_path, monkeypatch, where):
    config = short_config(tmp_path, f"skip_{where}")
    _inject(monkeypatch, {2}, where)
    with one_thread():
        rc, err = cli("train", str(config), "--no-progress", "--set", "checkpoint.every_tokens=128")
    assert rc == 0, err
    assert "at step 2: update skipped (1/3)" in err  # said even without a progress bar
    run_dir = load(config).run_dir
    bad = [r for r in records(run_dir, "run") if r["event"] == "nonfinite"]
    assert [(r["step"], r["action"], r["skips"]) for r in bad] == [(2, "skip", 1)]
    if where == "gradient":  # the loss was finite: only the gradient norm says why
        assert bad[0]["loss"] == bad[0]["loss"] and bad[0]["grad_norm"] == "nan"
    ckpts = run_dir / "checkpoints"
    a = checkpoint.load_weights(ckpts / "step_00000001")
    b = checkpoint.load_weights(ckpts / "step_00000002")
    assert all(torch.equal(a[k], b[k]) for k in a), "a skipped step changed the weights"


@pytest.mark.parametrize(("policy", "max_skips", "stop_at"), [("stop", 5, 2), ("skip", 1, 3)])
def test_stop_is_one_line_exit_1_and_resumable(tmp_path, monkeypatch, policy, max_skips, stop_at):
    config = short_config(tmp_path, f"{policy}{max_skips}")
    sets = [
        "--set",
        f'train.nonfinite="{policy}"',
        "--set",
        f"train.max_nonfinite_skips={max_skips}",
    ]
    _inject(monkeypatch, {2, 3}, "gradient")
    with one_thread():
        rc, err = cli("train", str(config), "--no-progress", *sets)
    assert rc == 1
    lines = err.strip().splitlines()
    assert len(lines) == 1 + (policy == "skip"), err  # a skip notice, then the stop
    assert "Traceback" not in err
    assert (
        f"at step {stop_at}: stopped" in lines[-1] and f"train.nonfinite = '{policy}'" in lines[-1]
    )
    run_dir = load(config).run_dir
    bad = [r for r in records(run_dir, "run") if r["event"] == "nonfinite"]
    assert (bad[-1]["step"], bad[-1]["action"]) == (stop_at, "stop")
    assert not any(r["step"] >= stop_at for r in records(run_dir, "train"))

    monkeypatch.undo()  # the cause is gone: the same command resumes and finishes
    with one_thread():
        rc, err = cli("train", str(config), "--no-progress", *sets)
    assert rc == 0, err
    assert [r["step"] for r in records(run_dir, "train")] == [1, 2, 3, 4]
