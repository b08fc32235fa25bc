"""Activation checkpointing (`train.activation_checkpointing`): recompute per decoder layer.

Backpropagation needs the activations of the forward pass. Keeping them all costs
memory that grows with layers x tokens x width; recomputing them in the backward
pass trades that memory for extra forward compute (Chen et al. 2016, "Training
Deep Nets with Sublinear Memory Cost"). The unit is the decoder layer: every
module whose class the model lists in `_no_split_modules` (the same units FSDP2
shards, `rewarm.train.distributed.shard_units`), so it works for the presets and
for any Hugging Face model that declares its layer class.

- `"none"`: keep every activation (the default).
- `"full"`: keep only each layer's inputs; the whole layer runs again in the
  backward pass. The most memory saved, about one extra forward pass of the
  layers (a third more step compute).
- `"selective"`: keep the outputs of the expensive operations (matrix products
  and attention) and recompute only the cheap element-wise ones (RMSNorm, RoPE,
  SiLU and the gate product, residual additions). This is the selective
  recomputation of Korthikanti et al. 2022 ("Reducing Activation Recomputation
  in Large Transformer Models") at operator level, as torchtitan does it: it
  drops the many element-wise intermediates (about half of a Llama layer's
  saved activations) for a few percent more compute.

The layer's own `forward` is wrapped (non-reentrant `torch.utils.checkpoint`), not
its `__call__`: module hooks such as FSDP2's all-gather stay outside the
recomputed region, parameter names and state dicts are unchanged (checkpoints
load either way), and DDP, FSDP2 and `torch.compile` see an ordinary module.
Recomputation only happens with gradients on and the module in training mode;
evaluation runs the layer as is. Recomputed values are bitwise the forward's on
the same device (the RNG state is restored; Llama layers have no dropout), so
the loss curve does not change.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

import torch
from torch.utils.checkpoint import (
    CheckpointPolicy,
    checkpoint,
    create_selective_checkpoint_contexts,
)

from rewarm.errors import UserError
from rewarm.train.distributed import shard_units

MODES = ("none", "full", "selective")

# Operators whose outputs "selective" keeps: matrix products and attention (the
# fused SDPA kernels of every backend). Everything else in a layer is recomputed.
SAVED_OP_NAMES = (
    "mm",
    "addmm",
    "bmm",
    "baddbmm",
    "_scaled_dot_product_flash_attention",
    "_scaled_dot_product_efficient_attention",
    "_scaled_dot_product_cudnn_attention",
    "_scaled_dot_product_flash_attention_for_cpu",
)
SAVED_OPS = {
    getattr(torch.ops.aten, name).default
    for name in SAVED_OP_NAMES
    if hasattr(torch.ops.aten, name)  # older torch lacks some attention kernels
}


def _selective_policy(ctx: Any, op: Any, *args: Any, **kwargs: Any) -> CheckpointPolicy:
    return CheckpointPolicy.MUST_SAVE if op in SAVED_OPS else CheckpointPolicy.PREFER_RECOMPUTE


def _selective_context() -> tuple[Any, Any]:
    return create_selective_checkpoint_contexts(_selective_policy)


def apply(model: torch.nn.Module, mode: str, where: str = "train.activation_checkpointing") -> int:
    """Wrap the forward of every decoder layer of `model` for `mode`; the number wrapped.

    Call it on the unwrapped model, before DDP/FSDP2 and torch.compile.
    """
    if mode == "none":
        return 0
    if mode not in MODES:
        raise UserError(f"{where}: must be one of {', '.join(MODES)}, got {mode!r}")
    units = shard_units(model, warn=False)
    if not units:
        raise UserError(
            f"{where}: {type(model).__name__} declares no decoder layer class in "
            '_no_split_modules, so there is no layer to recompute; use "none"'
        )
    context_fn = _selective_context if mode == "selective" else None
    if mode == "selective":
        # torch.compile warns once that a selective policy's region must not hold in-place
        # ops; decoder layers have none (the test compares compiled losses and gradients).
        logging.getLogger("torch._higher_order_ops.wrap").setLevel(logging.ERROR)
    for unit in units:
        _wrap_forward(unit, context_fn)
    return len(units)


def _wrap_forward(module: torch.nn.Module, context_fn: Callable[[], Any] | None) -> None:
    inner = module.forward
    kwargs: dict[str, Any] = {"use_reentrant": False}
    if context_fn is not None:
        kwargs["context_fn"] = context_fn

    @functools.wraps(inner)
    def forward(*args: Any, **kw: Any) -> Any:
        if module.training and torch.is_grad_enabled():
            return checkpoint(inner, *args, **kwargs, **kw)
        return inner(*args, **kw)

    module.forward = forward
