"""One optimizer step: gradient accumulation over micro-batches, clipping, update.

The loss of a step is the mean next-token cross-entropy over every token of the
*global* batch: each micro-batch contributes sum(nats) / global_tokens, and
under data parallelism the backward pass is scaled by the world size because
DDP averages gradients across ranks. Summing the per-rank logged sums across
ranks gives the same number as one process with the whole batch.

Exactly one host synchronisation per step: the (loss, grad norm, L1 grad norm)
triple is fetched to decide on the non-finite policy and for logging. The L1 norm
(sum of |g| over every coordinate) is what the refined schedule of Defazio et al.
2023 reads for Adam-type optimizers; it costs one more pass over the gradients,
fused by `foreach`, and no extra synchronisation.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from rewarm.model.packing import document_positions


@dataclass(frozen=True)
class StepResult:
    loss: float
    """Mean nats per token over the global batch (summed across ranks)."""
    grad_norm: float
    """Global gradient L2 norm before clipping."""
    grad_norm_l1: float
    """Global gradient L1 norm before clipping."""
    applied: bool
    """False when the update was skipped for a non-finite loss or gradient."""


def micro_batch_loss(
    model: torch.nn.Module, tokens: torch.Tensor, document_eos: int | None = None
) -> torch.Tensor:
    """Summed next-token cross-entropy (nats) of `tokens` (rows, seq_len + 1); with
    `document_eos`, attention stays inside each document (`rewarm.model.packing`)."""
    inputs = tokens[:, :-1]
    if document_eos is None:
        logits = model(input_ids=inputs).logits  # (rows, seq, vocab)
    else:
        logits = model(
            input_ids=inputs, position_ids=document_positions(inputs, document_eos)
        ).logits
    return F.cross_entropy(logits.flatten(0, 1).float(), tokens[:, 1:].flatten(), reduction="sum")


class NextTokenLoss(torch.nn.Module):
    """A model and its training loss as one module: `forward(tokens)` -> summed nats.

    Under `train.compile = true` in a single process, this whole module is what
    torch.compile traces: one graph from token ids to the summed loss, in which
    Inductor fuses the decoder's elementwise work (RMSNorm, RoPE, SwiGLU,
    residuals) and the cross-entropy's log-softmax. On a CPU the gain comes from
    the decoder layers (compiling them alone measures the same); see
    docs/performance.md.
    """

    def __init__(self, model: torch.nn.Module, document_eos: int | None = None) -> None:
        super().__init__()
        self.model = model
        self.document_eos = document_eos
        """The end-of-document id under `train.document_mask`, else None."""

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        if self.document_eos is None:
            return micro_batch_loss(self.model, tokens)
        return micro_batch_loss(self.model, tokens, self.document_eos)


def loss_module(
    wrapped: torch.nn.Module,
    *,
    compile: bool,
    distributed: bool,
    document_eos: int | None = None,
) -> torch.nn.Module:
    """What a training step calls, from the (DDP/FSDP-)wrapped model.

    torch.compile covers the loss in one process; under torchrun it covers the
    wrapped model only (the form DDP's and FSDP2's compiled support is built for)
    and the cross-entropy runs eagerly. `document_eos`: document masking.
    """
    if not compile:
        return NextTokenLoss(wrapped, document_eos)
    if distributed:
        return NextTokenLoss(torch.compile(wrapped), document_eos)  # type: ignore[arg-type]
    return torch.compile(NextTokenLoss(wrapped, document_eos))  # type: ignore[return-value]


def train_step(
    loss_fn: Callable[[torch.Tensor], torch.Tensor],
    params: list[torch.nn.Parameter],
    optimizer: torch.optim.Optimizer,
    micro_batches: list[torch.Tensor],
    *,
    global_tokens: int,
    world_size: int,
    grad_clip: float,
    autocast: Callable[[], contextlib.AbstractContextManager],
    no_sync: Callable[[], contextlib.AbstractContextManager],
    all_reduce_sum: Callable[[torch.Tensor], None],
) -> StepResult:
    total = torch.zeros((), device=micro_batches[0].device)
    last = len(micro_batches) - 1
    for i, tokens in enumerate(micro_batches):
        # Only the last micro-batch all-reduces gradients (DDP); earlier ones accumulate.
        with no_sync() if i < last else contextlib.nullcontext(), autocast():
            nats = loss_fn(tokens) / global_tokens
        (nats * world_size).backward()
        total += nats.detach()
    grads = [p.grad for p in params if p.grad is not None]
    # before clipping, which scales the gradients in place
    norm_l1 = torch.nn.utils.get_total_norm(grads, norm_type=1.0, foreach=True)
    if grad_clip > 0:
        norm = torch.nn.utils.clip_grad_norm_(params, grad_clip, foreach=True)
    else:
        norm = torch.nn.utils.get_total_norm(grads)
    norm, norm_l1 = (_full(n) for n in (norm, norm_l1))
    all_reduce_sum(total)
    stacked = torch.stack([total, norm.to(total.dtype), norm_l1.to(total.dtype)])
    loss, grad_norm, grad_norm_l1 = stacked.tolist()
    applied = math.isfinite(loss) and math.isfinite(grad_norm)
    if applied:
        optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return StepResult(loss=loss, grad_norm=grad_norm, grad_norm_l1=grad_norm_l1, applied=applied)


def _full(norm: torch.Tensor) -> torch.Tensor:
    """A norm as a plain tensor: FSDP2's sharded gradients give a DTensor."""
    return norm.full_tensor() if hasattr(norm, "full_tensor") else norm
