"""Weight decay only on >= 2-D non-embedding weights."""

from __future__ import annotations

import torch
from transformers import AutoModelForCausalLM

from rewarm.config import TrainSection
from rewarm.model.presets import preset_config
from rewarm.train.optim import build_optimizer, param_groups, reset_state


def _model(tied: bool = False):
    mcfg = preset_config(
        "llama-tiny",
        vocab_size=257,
        seq_len=32,
        overrides={"num_hidden_layers": 1, "tie_word_embeddings": tied},
    )
    return AutoModelForCausalLM.from_config(mcfg)


def test_decay_groups():
    model = _model()
    decay, no_decay = param_groups(model, 0.1)
    names = {id(p): n for n, p in model.named_parameters()}
    decayed = {names[id(p)] for p in decay["params"]}
    kept = {names[id(p)] for p in no_decay["params"]}
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0
    assert "lm_head.weight" in decayed and "model.layers.0.self_attn.q_proj.weight" in decayed
    assert "model.embed_tokens.weight" in kept and "model.norm.weight" in kept
    assert all(model.get_parameter(n).ndim == 1 for n in kept if "embed" not in n)
    assert len(decayed) + len(kept) == len(list(model.parameters()))


def test_tied_head_is_an_embedding_and_not_decayed():
    model = _model(tied=True)
    decay, no_decay = param_groups(model, 0.1)
    embed = model.get_input_embeddings().weight
    assert any(p is embed for p in no_decay["params"])
    assert not any(p is embed for p in decay["params"])


def test_reset_clears_moments():
    model = _model()
    opt = build_optimizer(model, TrainSection(), torch.device("cpu"))
    model(input_ids=torch.zeros(1, 4, dtype=torch.long)).logits.sum().backward()
    opt.step()
    assert len(opt.state) > 0
    reset_state(opt)
    assert len(opt.state) == 0
