"""MER (Abbes et al. 2025) in the trainer: beta = 1 is plain training, beta = 0 puts the
weights back at theta_before every k steps."""

from __future__ import annotations

import pytest
import torch

from rewarm import checkpoint
from rewarm.train.trainer import train
from tests.runhelpers import load, one_thread, records, train_losses, write_config


def _weights(run_dir, step):
    return checkpoint.load_weights(run_dir / "checkpoints" / checkpoint.step_dir_name(step))


@pytest.mark.slow
def test_beta_one_equals_plain_training(finished, tmp_path):
    ref = finished[0]
    cfg = load(write_config(tmp_path, "mer1", extra="mer = { every_tokens = 256, beta = 1.0 }\n"))
    with one_thread():
        train(cfg, progress=False)
    assert train_losses(cfg.run_dir) == train_losses(ref.run_dir)
    assert records(cfg.run_dir, "eval") == records(ref.run_dir, "eval")
    a, b = _weights(cfg.run_dir, 12), _weights(ref.run_dir, 12)
    assert all(torch.equal(a[k], b[k]) for k in b)


@pytest.mark.slow
def test_beta_zero_returns_to_theta_before_every_k_steps(tmp_path):
    # Stage two: steps 7-12, k = 2 steps (256 tokens), checkpoints every 2 steps.
    cfg = load(write_config(tmp_path, "mer0", extra="mer = { every_tokens = 256, beta = 0.0 }\n"))
    with one_thread():
        train(cfg, progress=False)
    start = _weights(cfg.run_dir, 6)  # the end of stage one: theta_before of the first block
    for step in (8, 10, 12):
        after = _weights(cfg.run_dir, step)
        assert all(torch.equal(after[k], start[k]) for k in start), step
    # Training still moved the weights inside each block: the loss is not frozen.
    losses = dict(train_losses(cfg.run_dir))
    assert losses[8] != losses[7]
