"""Presets: sizes as documented, overrides checked, FLOPs per token as SCIENCE.md section 6."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoModelForCausalLM

from rewarm.errors import UserError
from rewarm.model.accounting import model_stats
from rewarm.model.presets import PRESETS, preset_config

EXPECTED = {  # non-embedding parameters, as documented in presets.py
    "llama-tiny": 0.9e6,
    "llama-small": 4.2e6,
    "llama-medium": 19e6,
    "llama-base": 85e6,
    "llama-350m": 309e6,
}


@pytest.mark.parametrize("name", list(PRESETS))
def test_preset_sizes(name):
    mcfg = preset_config(name, vocab_size=257, seq_len=64)
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(mcfg, attn_implementation="sdpa")
    stats = model_stats(model, seq_len=64)
    embed = 257 * mcfg.hidden_size
    assert stats.params == stats.non_embedding_params + embed
    assert stats.non_embedding_params == pytest.approx(EXPECTED[name], rel=0.08)
    attention = 12 * mcfg.num_hidden_layers * mcfg.hidden_size * 64
    assert stats.flops_per_token == 6 * stats.non_embedding_params + attention
    assert model.config._attn_implementation == "sdpa"


def test_vocab_comes_from_the_tokenizer_and_overrides_apply():
    mcfg = preset_config(
        "llama-tiny", vocab_size=4096, seq_len=4096, overrides={"num_hidden_layers": 2}
    )
    assert (mcfg.vocab_size, mcfg.num_hidden_layers, mcfg.max_position_embeddings) == (
        4096,
        2,
        4096,
    )


def test_unknown_preset_and_override_name_the_key():
    with pytest.raises(UserError, match="model.preset: unknown preset 'llama-huge'"):
        preset_config("llama-huge", vocab_size=257, seq_len=64)
    with pytest.raises(UserError, match="model.overrides.num_layerz"):
        preset_config("llama-tiny", vocab_size=257, seq_len=64, overrides={"num_layerz": 2})


def test_tied_head_counts_once_and_is_not_embedding_free():
    mcfg = preset_config(
        "llama-tiny", vocab_size=257, seq_len=64, overrides={"tie_word_embeddings": True}
    )
    model = AutoModelForCausalLM.from_config(mcfg)
    stats = model_stats(model, 64)
    assert stats.params == sum(p.numel() for p in model.parameters())
    assert stats.non_embedding_params == stats.params  # the tied head is touched per token
