"""Named copies of a model's parameters, sharded or not.

Under FSDP2 a parameter is a `DTensor` holding this rank's shard; a copy of it is a
`DTensor` too, and element-wise arithmetic between copies and parameters works shard
by shard with no communication, so averaging and Reptile steps cost nothing extra
under DDP or FSDP. Only `full` (for a checkpoint) and `sharded_like` (on resume)
communicate: every rank must call them.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch.distributed.tensor import DTensor, distribute_tensor

Weights = dict[str, torch.Tensor]
"""Parameter name -> tensor (a `DTensor` shard under FSDP2)."""


def snapshot(model: torch.nn.Module) -> Weights:
    """Detached copies of every parameter (tied ones once), in the parameters' dtype."""
    return {name: p.detach().clone() for name, p in model.named_parameters()}


@torch.no_grad()
def assign(model: torch.nn.Module, weights: Weights) -> None:
    """Copy `weights` into the model's parameters in place (the optimizer keeps them)."""
    for name, p in model.named_parameters():
        p.copy_(weights[name])


@contextmanager
def swapped(model: torch.nn.Module, weights: Weights) -> Iterator[None]:
    """The model holds `weights` inside the block; its own come back bit for bit after."""
    own = snapshot(model)
    assign(model, weights)
    try:
        yield
    finally:
        assign(model, own)


def full(weights: Weights) -> Weights:
    """Unsharded CPU copies (a collective under FSDP2: every rank calls it)."""
    out: Weights = {}
    for name, t in weights.items():
        whole = t.full_tensor() if isinstance(t, DTensor) else t
        out[name] = whole.detach().to("cpu").contiguous()
    return out


def sharded_like(saved: Weights, model: torch.nn.Module, where: str) -> Weights:
    """`saved` (full CPU tensors) laid out as the model's parameters are (sharded or not)."""
    out: Weights = {}
    for name, p in model.named_parameters():
        if name not in saved:
            raise KeyError(f"{where}: no tensor for parameter {name!r}")
        t = saved[name].to(dtype=p.dtype)
        if isinstance(p, DTensor):
            out[name] = distribute_tensor(t.to(p.device), p.device_mesh, p.placements)
        else:
            out[name] = t.to(p.device)
    return out
