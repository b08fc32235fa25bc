"""AdamW with decoupled weight decay on matrices only.

Weight decay (Loshchilov & Hutter 2019) applies to parameters with >= 2
dimensions that are not embeddings: linear weights and an untied LM head.
Norm gains, biases and token embeddings are not decayed (the GPT-3 / OLMo
convention). The fused CPU/CUDA kernel is used when the installed torch has
it, else the multi-tensor (`foreach`) one.
"""

from __future__ import annotations

from typing import Any

import torch

from rewarm.config import TrainSection


def param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Two groups: decayed matrices and everything else (each parameter once)."""
    embedding_ids = {
        id(p)
        for m in model.modules()
        if isinstance(m, torch.nn.Embedding)
        for p in m.parameters(recurse=False)
    }
    decay: list[torch.nn.Parameter] = []
    no_decay: list[torch.nn.Parameter] = []
    for _, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (decay if p.ndim >= 2 and id(p) not in embedding_ids else no_decay).append(p)
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]


def build_optimizer(
    model: torch.nn.Module, train: TrainSection, device: torch.device
) -> torch.optim.AdamW:
    """AdamW from the `[train]` section; the LR is set every step by the stage plan."""
    groups = param_groups(model, train.weight_decay)
    kwargs: dict[str, Any] = dict(lr=train.lr, betas=tuple(train.betas), eps=train.eps)
    try:
        return torch.optim.AdamW(groups, fused=device.type in ("cpu", "cuda"), **kwargs)
    except (RuntimeError, TypeError):  # fused kernel missing for this device/dtype
        return torch.optim.AdamW(groups, foreach=True, **kwargs)


def reset_state(optimizer: torch.optim.Optimizer) -> None:
    """Forget the moments and step counts (`optimizer_state = "reset"`)."""
    optimizer.state.clear()
