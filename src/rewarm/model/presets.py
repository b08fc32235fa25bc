"""Llama-style model presets built with `transformers.LlamaConfig`.

The vocabulary size always comes from the tokenizer, so one preset serves the
byte tokenizer (~260 ids) and a trained BPE (thousands). Parameter counts below
are without embeddings (input embedding; the untied LM head is included):

| preset        | d_model | layers | heads | d_ff | non-embedding params |
| ------------- | ------- | ------ | ----- | ---- | -------------------- |
| llama-tiny    | 128     | 4      | 4     | 384  | ~0.9M  (tests)       |
| llama-small   | 256     | 4      | 4     | 1024 | ~4.2M  (demo, CPU)   |
| llama-medium  | 384     | 8      | 6     | 1536 | ~19M                 |
| llama-base    | 768     | 12     | 12    | 2048 | ~85M   (GPT-3 Small)  |
| llama-350m    | 1024    | 24     | 16    | 2816 | ~309M  (GPU)         |

`llama-small` uses few, wide layers with 64-dimensional heads: on a CPU the
per-layer overhead dominates at this size, so 4 x 256 trains faster per
parameter than 8 x 192.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rewarm.errors import UserError

if TYPE_CHECKING:
    from transformers import LlamaConfig

# name -> LlamaConfig keyword arguments (vocab and context length are filled in later)
PRESETS: dict[str, dict[str, Any]] = {
    "llama-tiny": dict(
        hidden_size=128, num_hidden_layers=4, num_attention_heads=4, intermediate_size=384
    ),
    "llama-small": dict(
        hidden_size=256, num_hidden_layers=4, num_attention_heads=4, intermediate_size=1024
    ),
    "llama-medium": dict(
        hidden_size=384, num_hidden_layers=8, num_attention_heads=6, intermediate_size=1536
    ),
    "llama-base": dict(
        hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=2048
    ),
    # GPT-3 Medium's shape (Brown et al. 2020) with Llama's SwiGLU width (8/3 d, rounded).
    "llama-350m": dict(
        hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, intermediate_size=2816
    ),
}


def preset_config(
    name: str,
    *,
    vocab_size: int,
    seq_len: int,
    overrides: dict[str, Any] | None = None,
    bos_id: int | None = None,
    eos_id: int | None = None,
    where: str = "model",
) -> LlamaConfig:
    """The `LlamaConfig` of preset `name`, with `overrides` applied (keys checked)."""
    from transformers import LlamaConfig

    if name not in PRESETS:
        raise UserError(f"{where}.preset: unknown preset {name!r} (known: {', '.join(PRESETS)})")
    kwargs: dict[str, Any] = dict(PRESETS[name])
    kwargs["num_key_value_heads"] = kwargs["num_attention_heads"]
    kwargs.update(
        vocab_size=vocab_size,
        max_position_embeddings=max(2048, seq_len),
        tie_word_embeddings=False,
        bos_token_id=bos_id,
        eos_token_id=eos_id,
        pad_token_id=None,
        use_cache=False,  # training never needs the KV cache
    )
    known = set(LlamaConfig().to_dict())
    for key, value in (overrides or {}).items():
        if key not in known:
            raise UserError(f"{where}.overrides.{key}: not a LlamaConfig key")
        kwargs[key] = value
    return LlamaConfig(**kwargs)
