"""The step's gradient norms: L2 (clipping, non-finite policy) and L1 (the refined
schedule's input for AdamW, Defazio et al. 2023), both before clipping."""

from __future__ import annotations

import contextlib

import pytest
import torch

from rewarm.train.step import train_step
from tests.runhelpers import records


def test_step_reports_l1_and_l2_norms_before_clipping():
    torch.manual_seed(0)
    model = torch.nn.Linear(6, 5)
    params = list(model.parameters())
    opt = torch.optim.AdamW(params, lr=1e-3)
    tokens = torch.randn(4, 6)

    def loss_fn(x: torch.Tensor) -> torch.Tensor:
        return (model(x) ** 2).sum() * 100.0  # large gradients, so clipping acts

    loss_fn(tokens).backward()
    grads = [p.grad.clone() for p in params]
    opt.zero_grad()
    l1 = sum(float(g.abs().sum()) for g in grads) / 10
    l2 = float(torch.sqrt(sum((g**2).sum() for g in grads))) / 10
    result = train_step(
        loss_fn,
        params,
        opt,
        [tokens],
        global_tokens=10,
        world_size=1,
        grad_clip=1.0,
        autocast=contextlib.nullcontext,
        no_sync=contextlib.nullcontext,
        all_reduce_sum=lambda t: None,
    )
    assert result.grad_norm == pytest.approx(l2, rel=1e-5)
    assert result.grad_norm_l1 == pytest.approx(l1, rel=1e-5)
    assert result.grad_norm > 1.0  # clipping was due, and the norms are from before it


def test_train_records_carry_the_l1_norm(finished):
    cfg, _ = finished
    recs = records(cfg.run_dir, "train")
    assert all(r["grad_norm_l1"] >= r["grad_norm"] > 0 for r in recs)
