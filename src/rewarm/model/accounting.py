"""Parameter counts and training FLOPs per token (SCIENCE.md section 6).

FLOPs per trained token ~ 6 * N + 12 * n_layers * d_model * seq_len, where N is
the parameters touched per token without the input embedding (the LM head
included), and the second term is attention over the context (the PaLM
accounting, Chowdhery et al. 2022, appendix B). Evaluation costs about a third.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class ModelStats:
    params: int
    """All distinct parameters (tied weights counted once)."""
    non_embedding_params: int
    """Parameters touched per token: all minus the input embedding, LM head included."""
    flops_per_token: float
    """Training FLOPs per token: 6 N + 12 n_layers d_model seq_len."""


def model_stats(model: torch.nn.Module, seq_len: int) -> ModelStats:
    params = sum(p.numel() for p in model.parameters())
    embed = model.get_input_embeddings().weight  # type: ignore[operator]
    head = model.get_output_embeddings()  # type: ignore[operator]
    tied = head is not None and head.weight is embed
    non_embedding = params - embed.numel() + (embed.numel() if tied else 0)
    cfg = model.config
    layers = int(getattr(cfg, "num_hidden_layers", 0) or 0)
    d_model = int(getattr(cfg, "hidden_size", 0) or 0)
    flops = 6.0 * non_embedding + 12.0 * layers * d_model * seq_len
    return ModelStats(params=params, non_embedding_params=non_embedding, flops_per_token=flops)
