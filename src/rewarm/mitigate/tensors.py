"""Named copies of a model's parameters, sharded or not.

Under FSDP2 a parameter is a `DTensor` holding this rank's shard; copies keep only the
local shard (`local`), and element-wise arithmetic between copies and parameters works
shard by shard with no communication, so averaging and Reptile steps cost nothing extra
under DDP or FSDP. Only `full` (for a checkpoint) and `sharded_like` (on resume)
communicate: every rank must call them.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch.distributed.fsdp import FSDPModule
from torch.distributed.tensor import DTensor, distribute_tensor

Weights = dict[str, torch.Tensor]
"""Parameter name -> tensor (this rank's local shard under FSDP2)."""


def local(p: torch.Tensor) -> torch.Tensor:
    """The tensor this rank holds of `p` (its shard for a `DTensor`, else `p`)."""
    return p.to_local() if isinstance(p, DTensor) else p


def parameters(model: torch.nn.Module) -> Iterator[tuple[str, torch.Tensor]]:
    """`model.named_parameters()`, sharded: FSDP2 leaves a module's parameters unsharded
    after a forward outside training (the root's, with reshard_after_forward off), and
    copies must always see the same layout."""
    for m in model.modules():
        if isinstance(m, FSDPModule):
            m.reshard()
    yield from model.named_parameters()


def snapshot(model: torch.nn.Module) -> Weights:
    """Detached copies of every parameter (tied ones once), in the parameters' dtype."""
    return {name: local(p.detach()).clone() for name, p in parameters(model)}


@torch.no_grad()
def assign(model: torch.nn.Module, weights: Weights) -> None:
    """Copy `weights` into the model's parameters in place (the optimizer keeps them)."""
    for name, p in parameters(model):
        local(p).copy_(weights[name])


@contextmanager
def swapped(model: torch.nn.Module, weights: Weights) -> Iterator[None]:
    """The model holds `weights` inside the block; its own come back bit for bit after."""
    own = snapshot(model)
    assign(model, weights)
    try:
        yield
    finally:
        assign(model, own)


def full(weights: Weights, model: torch.nn.Module) -> Weights:
    """Unsharded CPU copies (a collective under FSDP2: every rank calls it)."""
    out: Weights = {}
    for name, p in parameters(model):
        t = weights[name]
        if isinstance(p, DTensor):
            t = DTensor.from_local(
                t, p.device_mesh, p.placements, shape=p.shape, stride=p.stride()
            ).full_tensor()
        out[name] = t.detach().to("cpu").contiguous()
    return out


def sharded_like(saved: Weights, model: torch.nn.Module, where: str) -> Weights:
    """`saved` (full CPU tensors) laid out as the model's parameters are (local shards)."""
    out: Weights = {}
    for name, p in parameters(model):
        if name not in saved:
            raise KeyError(f"{where}: no tensor for parameter {name!r}")
        t = saved[name].to(dtype=p.dtype)
        if isinstance(p, DTensor):
            out[name] = distribute_tensor(t.to(p.device), p.device_mesh, p.placements).to_local()
        else:
            out[name] = t.to(p.device)
    return out
