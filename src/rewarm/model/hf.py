"""Build the model a run starts from: a preset, a local Hugging Face causal LM, or a
rewarm checkpoint's weights.

- `init = "scratch"`: `presets.preset_config` -> `LlamaForCausalLM`, seeded init.
- `init = "hf:PATH"`: `AutoModelForCausalLM.from_pretrained(PATH)` from a local
  directory only (no hub access), `trust_remote_code` from `model.trust_remote_code`.
- `init = "checkpoint:PATH"`: the model config and weights stored in a rewarm
  checkpoint (a `step_*` directory, a `checkpoints/` directory or a run directory,
  which mean their `latest`). Optimizer, sampler and position are *not* taken:
  the new run starts its own stage 0 at position 0 (branching arms from a shared
  stage-1 checkpoint).

Every model uses `attn_implementation="sdpa"` and fp32 master weights. A tokenizer
with more ids than the model has embeddings is refused, unless `model.extend_vocab`
grows the model to fit (`rewarm.model.vocab`).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import torch

from rewarm import checkpoint
from rewarm.config import Config
from rewarm.data.tokenizer import Tokenizer
from rewarm.errors import UserError
from rewarm.model import vocab
from rewarm.model.presets import preset_config

if TYPE_CHECKING:  # transformers is imported when a model is built, not on import
    # Its `PreTrainedModel.to` is wrapped with `functools.wraps`, which mypy does not bind
    # as a method: the callers' `model.to(...)` carry a type: ignore for that alone.
    from transformers import PreTrainedModel


def resolve_checkpoint_dir(path: str | Path, where: str) -> Path:
    """A `step_*` directory, or the `latest` one under a run or `checkpoints/` directory."""
    p = Path(path)
    if checkpoint.is_complete(p):
        return p
    for root in (p, p / "checkpoints"):
        found = checkpoint.latest(root) if root.is_dir() else None
        if found is not None:
            return found
    raise UserError(f"{where}: {path} is not a rewarm checkpoint (no state.json/model.safetensors)")


def check_init(cfg: Config) -> None:
    """Cheap checks of `[model]` before any work: preset and overrides, paths exist."""
    init = cfg.model.init
    where = f"{cfg.source}: model.init"
    if init == "scratch":
        preset_config(
            cfg.model.preset,
            vocab_size=300,
            seq_len=cfg.train.seq_len,
            overrides=cfg.model.overrides,
            where=f"{cfg.source}: model",
        )
    elif init.startswith("hf:"):
        if not (Path(init[3:]) / "config.json").is_file():
            raise UserError(
                f"{where}: {init[3:]} is not a Hugging Face model directory (no config.json)"
            )
    else:
        resolve_checkpoint_dir(init[len("checkpoint:") :], where)


def build_model(
    cfg: Config, vocab_size: int, eos_id: int | None = None, tokenizer: Tokenizer | None = None
) -> PreTrainedModel:
    """The model of `cfg.model`, on the CPU in fp32, in train mode; grown to the
    tokenizer's ids under `model.extend_vocab` (`tokenizer` is then required)."""
    from transformers import AutoModelForCausalLM

    init = cfg.model.init
    where = f"{cfg.source}: model.init"
    if init == "scratch":
        mcfg = preset_config(
            cfg.model.preset,
            vocab_size=vocab_size,
            seq_len=cfg.train.seq_len,
            overrides=cfg.model.overrides,
            eos_id=eos_id,
            where=f"{cfg.source}: model",
        )
        model = AutoModelForCausalLM.from_config(mcfg, attn_implementation="sdpa")
        source = None
    elif init.startswith("hf:"):
        source = Path(init[3:])
        model = load_hf_dir(source, cfg.model.trust_remote_code, where)
    else:
        source = resolve_checkpoint_dir(init[len("checkpoint:") :], where)
        model = load_checkpoint_model(source, cfg.model.trust_remote_code, where)
    if cfg.model.extend_vocab and source is not None and vocab.rows(model) < vocab_size:
        if tokenizer is None:
            raise ValueError("build_model: model.extend_vocab needs the tokenizer")
        own = vocab.own_tokenizer(source, where)
        vocab.extend(model, tokenizer, own, f"{cfg.source}: tokenizer.kind")
    check_vocab(model, vocab_size, where)
    model.to(torch.float32)
    model.config.use_cache = False
    model.train()
    return model


def load_hf_dir(path: str | Path, trust_remote_code: bool, where: str) -> PreTrainedModel:
    """A local Hugging Face causal LM directory (config.json + weights)."""
    from transformers import AutoModelForCausalLM

    p = Path(path)
    if not (p / "config.json").is_file():
        raise UserError(f"{where}: {path} is not a Hugging Face model directory (no config.json)")
    try:
        return AutoModelForCausalLM.from_pretrained(
            str(p),
            trust_remote_code=trust_remote_code,
            attn_implementation="sdpa",
            dtype=torch.float32,
            local_files_only=True,
        )
    except (ValueError, OSError, KeyError) as err:
        raise UserError(f"{where}: cannot load {path} as a causal LM: {err}") from None


def load_checkpoint_model(
    path: Path, trust_remote_code: bool = False, where: str = "checkpoint"
) -> PreTrainedModel:
    """The model stored in a rewarm checkpoint directory: config.json and the weights of
    `model.safetensors` or, for a sharded checkpoint, of `dcp/` (read whole, on the CPU)."""
    from transformers import AutoConfig, AutoModelForCausalLM

    try:
        mcfg = AutoConfig.from_pretrained(str(path), trust_remote_code=trust_remote_code)
    except (ValueError, OSError) as err:
        raise UserError(f"{where}: {path}: cannot read the model config: {err}") from None
    model = AutoModelForCausalLM.from_config(
        mcfg, attn_implementation="sdpa", trust_remote_code=trust_remote_code
    )
    if checkpoint.is_sharded(path):
        from rewarm import sharded_checkpoint

        sharded_checkpoint.load_model_weights(path, model, f"{where}: {path}")
    else:
        checkpoint.assign_weights(model, checkpoint.load_weights(path), f"{where}: {path}")
    return model


def check_vocab(model: torch.nn.Module, vocab_size: int, where: str) -> None:
    """Refuse a model with fewer token embeddings than the tokenizer has ids."""
    rows = model.get_input_embeddings().weight.shape[0]  # type: ignore[operator]
    if rows < vocab_size:
        raise UserError(
            f"{where}: the model has {rows} token embeddings but the tokenizer has "
            f'{vocab_size} ids; use the model\'s own tokenizer (tokenizer.kind = "hf:PATH"), '
            "or, for a tokenizer that extends it with added tokens, set model.extend_vocab = true"
        )
