"""train.activation_checkpointing: the same numbers with less kept for the backward pass."""

from __future__ import annotations

import shutil

import pytest
import torch

from rewarm.errors import UserError
from rewarm.model.presets import preset_config
from rewarm.train import activation_checkpointing as ac
from rewarm.train.step import NextTokenLoss
from rewarm.train.trainer import train
from tests.runhelpers import load, one_thread, train_losses, write_config


def _model(mode: str, layers: int = 4) -> torch.nn.Module:
    from transformers import LlamaForCausalLM

    torch.manual_seed(0)
    over = {"num_hidden_layers": layers}
    cfg = preset_config("llama-tiny", vocab_size=300, seq_len=32, overrides=over, where="test")
    model = LlamaForCausalLM(cfg)
    model.train()
    ac.apply(model, mode)
    return model


def _loss_and_grads(model: torch.nn.Module, fn: torch.nn.Module | None = None):
    tokens = torch.randint(0, 300, (4, 33), generator=torch.Generator().manual_seed(1))
    loss = (fn if fn is not None else NextTokenLoss(model))(tokens)
    loss.backward()
    return loss.detach(), [p.grad.clone() for p in model.parameters()]


def _held_bytes(model: torch.nn.Module) -> int:
    """Bytes allocated by one forward pass and still held when it returns: what is kept
    for the backward pass (the CPU allocator's events, as the profiler records them)."""
    from torch.profiler import ProfilerActivity, profile

    tokens = torch.randint(0, 300, (4, 33), generator=torch.Generator().manual_seed(1))
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        loss = NextTokenLoss(model)(tokens)  # kept: its graph holds what backward needs
    assert loss.requires_grad
    return sum(e.self_cpu_memory_usage for e in prof.events())


@pytest.mark.parametrize("mode", ["full", "selective"])
def test_recomputed_layers_give_bitwise_the_same_loss_and_gradients(mode):
    loss, grads = _loss_and_grads(_model("none"))
    loss2, grads2 = _loss_and_grads(_model(mode))
    assert torch.equal(loss, loss2)
    assert all(torch.equal(a, b) for a, b in zip(grads, grads2, strict=True))


def test_full_keeps_least_and_selective_keeps_less_than_none():
    none, full, selective = (_held_bytes(_model(m)) for m in ("none", "full", "selective"))
    assert full < selective < none
    assert selective < 0.8 * none  # the element-wise intermediates are a large share


def test_every_decoder_layer_is_wrapped_and_evaluation_runs_plainly(monkeypatch):
    model = _model("full")
    assert all("forward" in vars(layer) for layer in model.model.layers)
    assert "forward" not in vars(model.model.norm)
    calls = []
    real = ac.checkpoint
    monkeypatch.setattr(ac, "checkpoint", lambda *a, **k: calls.append(1) or real(*a, **k))
    tokens = torch.randint(0, 300, (2, 9))
    with torch.no_grad():
        NextTokenLoss(model)(tokens)
    model.eval()
    NextTokenLoss(model)(tokens)
    assert calls == []  # no gradients or eval mode: nothing to recompute
    model.train()
    NextTokenLoss(model)(tokens)
    assert len(calls) == len(model.model.layers)


def test_a_model_without_declared_layers_is_refused_naming_the_key():
    net = torch.nn.Sequential(torch.nn.Linear(2, 2))
    with pytest.raises(UserError, match="run.toml: train.activation_checkpointing"):
        ac.apply(net, "full", "run.toml: train.activation_checkpointing")
    assert ac.apply(net, "none") == 0


def test_trainer_with_selective_recomputation_writes_the_same_losses(finished, tmp_path):
    """The whole two-stage run (replay, optimizer state, evaluations) with recomputation."""
    ref = finished[0]
    cfg = load(write_config(tmp_path, "sel"), 'train.activation_checkpointing="selective"')
    with one_thread():
        train(cfg, progress=False)
    assert train_losses(cfg.run_dir) == train_losses(ref.run_dir)


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("c++") is None, reason="Inductor needs a C++ compiler")
def test_compiled_selective_recomputation_matches_eager():
    """torch.compile traces the checkpointed layers (and the selective policy)."""
    loss, grads = _loss_and_grads(_model("none", layers=2))
    model = _model("selective", layers=2)  # two layers: the same graph, half the compile time
    with one_thread():
        loss2, grads2 = _loss_and_grads(model, torch.compile(NextTokenLoss(model)))
    assert loss2.item() == pytest.approx(loss.item(), rel=1e-5)
    for a, b in zip(grads, grads2, strict=True):
        torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-5)
