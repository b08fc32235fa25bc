"""`optimizer_state = "keep"` carries AdamW moments into the next stage; "reset" clears them."""

from __future__ import annotations

import pytest
import torch

from rewarm import checkpoint
from rewarm.train.trainer import train
from tests.runhelpers import load, one_thread, write_config


def _adam_steps(ckpt) -> set[float]:
    state = checkpoint.load_optimizer(ckpt)["state"]
    return {float(s["step"]) for s in state.values()}


@pytest.mark.parametrize("mode", ["keep", "reset"])
def test_optimizer_state_across_stages(tmp_path, mode):
    # Two short stages (3 steps each), a checkpoint after every step.
    extra_sets = ["stages.0.tokens=384", "stages.1.tokens=384", "checkpoint.every_tokens=128"]
    cfg = load(write_config(tmp_path, mode, opt_state=mode), *extra_sets, "checkpoint.keep=10")
    with one_thread():
        train(cfg, progress=False)
    root = cfg.run_dir / "checkpoints"
    assert _adam_steps(root / "step_00000003") == {3.0}
    moments = checkpoint.load_optimizer(root / "step_00000004")["state"].values()
    # One AdamW step from zero moments gives m = (1 - b1) g and v = (1 - b2) g^2, so
    # v = (1 - b2) / (1 - b1)^2 * m^2 exactly; kept moments add b2 * v_old and break it.
    b1, b2 = cfg.train.betas
    fresh = all(
        torch.allclose(
            s["exp_avg_sq"], (1 - b2) / (1 - b1) ** 2 * s["exp_avg"] ** 2, rtol=1e-4, atol=1e-20
        )
        for s in moments
    )
    if mode == "keep":
        assert _adam_steps(root / "step_00000004") == {4.0}  # bias correction continues
        assert not fresh
    else:
        assert _adam_steps(root / "step_00000004") == {1.0}
        assert fresh
