"""Document masking inside packed windows (`train.document_mask`).

A training window packs documents back to back, each ended by the end-of-document
id. With document masking a token attends only to earlier tokens of its own document,
and positions restart at 0 at each document: Megatron-LM's `reset_attention_mask` and
`reset_position_ids`; Llama 3 was pre-trained with such a mask between the documents
of a sequence (Dubey et al. 2024, "The Llama 3 Herd of Models", section 3.4).

Hugging Face models build that mask themselves from position ids that restart:
`transformers.masking_utils` turns every drop of the position id into a sequence
boundary and masks attention across it, for SDPA (a boolean mask), FlexAttention (a
block mask) and FlashAttention (variable-length kernels) alike. So the model is
called with `position_ids = document_positions(input_ids, eos)` and nothing else.
Because an architecture or a transformers version that ignored those positions for
masking would train on the wrong thing silently, `check_model` runs the model once on
two short documents and refuses it if the second one's logits depend on the first.
"""

from __future__ import annotations

import torch

from rewarm.errors import UserError


def document_positions(input_ids: torch.Tensor, eos_id: int) -> torch.Tensor:
    """(rows, seq) int64: each token's position inside its document.

    A document ends with its eos token, so position 0 is the window's first token and
    every token right after an eos: positions[i] = i - (start of i's document).
    """
    rows, seq = input_ids.shape
    index = torch.arange(seq, device=input_ids.device).expand(rows, seq)
    starts = torch.zeros_like(input_ids, dtype=torch.bool)
    starts[:, 1:] = input_ids[:, :-1] == eos_id
    first = torch.where(starts, index, torch.zeros_like(index)).cummax(dim=1).values
    return index - first


def check_model(model: torch.nn.Module, eos_id: int, vocab_size: int, where: str) -> None:
    """Refuse a model whose attention does not follow restarting position ids.

    Runs the model (in eval mode, without gradients, on its own device) on one row of
    two documents, then again with the first document's tokens changed; the second
    document's logits must not change. Draws no random numbers from the global RNG.
    """
    device = next(model.parameters()).device
    gen = torch.Generator().manual_seed(0)
    first, second = 5, 6
    a = torch.randint(0, max(1, vocab_size - 1), (1, first + second), generator=gen)
    a[a == eos_id] = (eos_id + 1) % vocab_size
    a[0, first - 1] = eos_id
    b = a.clone()
    b[0, : first - 1] = (a[0, : first - 1] + 1) % vocab_size
    b[b == eos_id] = (eos_id + 2) % vocab_size
    b[0, first - 1] = eos_id
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            out = [
                model(input_ids=x.to(device), position_ids=document_positions(x, eos_id).to(device))
                .logits[0, first:]
                .float()
                for x in (a, b)
            ]
    finally:
        model.train(was_training)
    if not torch.allclose(out[0], out[1], atol=1e-4, rtol=1e-4):
        raise UserError(
            f"{where}: this model ({type(model).__name__}) lets tokens attend across the "
            "document boundary despite restarting position ids; it cannot train with "
            "document masking (needs a transformers version whose masks follow packed "
            "position ids)"
        )
