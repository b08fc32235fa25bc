"""Vocabulary extension: grow a model's token embeddings and LM head for a tokenizer
with added tokens (`model.extend_vocab = true`).

Continuing pre-training into a new language or domain whose text the old tokenizer
splits into many short pieces (a script it never saw, a programming language's
keywords) can pay for new tokens: shorter sequences, and whole units for the model to
learn. The tokenizer must keep every old id (`rewarm.data.tokenizer.extends`); the
model then gets one new embedding row and one new LM-head row per added id.

Initialisation: each new row is the mean of the old rows, as transformers'
`resize_token_embeddings(mean_resizing=True)` does (it samples from a normal with the
old rows' mean and 1e-9 times their covariance). Hewitt (2021, "Initializing New Word
Embeddings for Pretrained Language Models") shows why: a new output row at the mean
gives each new token a logit equal to the average old logit for every context, so the
new tokens take little probability mass and the old distribution barely moves, where
a random row can dominate it. The resize itself leaves every old token's embedding,
LM-head row and therefore logit exactly as it was; only the softmax gains the new
tokens' terms until training moves them.
"""

from __future__ import annotations

from pathlib import Path

import torch

from rewarm.data import tokenizer as tok_mod
from rewarm.errors import UserError


def rows(model: torch.nn.Module) -> int:
    """Token embedding rows of `model`."""
    return int(model.get_input_embeddings().weight.shape[0])  # type: ignore[operator]


def own_tokenizer(directory: Path, where: str) -> tok_mod.Tokenizer | None:
    """The tokenizer stored with a model (a Hugging Face directory, or a rewarm
    checkpoint's `tokenizer/`), or None when there is none."""
    for d in (directory, directory / "tokenizer"):
        if (d / "tokenizer.json").is_file() or (d / "tokenizer_config.json").is_file():
            return tok_mod.load_hf(str(d), where)
    return None


def extend(
    model: torch.nn.Module,
    tokenizer: tok_mod.Tokenizer,
    model_tokenizer: tok_mod.Tokenizer | None,
    where: str,
) -> int:
    """Grow `model` to `tokenizer.vocab_size` rows (mean-initialised); the rows added.

    Refuses a tokenizer that gives some token of the model's own tokenizer another id.
    """
    before = rows(model)
    if before >= tokenizer.vocab_size:
        return 0
    if model_tokenizer is not None:
        conflict = tok_mod.extends(tokenizer, model_tokenizer)
        if conflict is not None:
            raise UserError(
                f"{where}: model.extend_vocab needs a tokenizer that keeps the model's ids, "
                f"but {conflict}"
            )
    model.resize_token_embeddings(tokenizer.vocab_size, mean_resizing=True)  # type: ignore[operator]
    return tokenizer.vocab_size - before
