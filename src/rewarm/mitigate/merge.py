"""`rewarm merge`: checkpoints or Hugging Face models -> one merged HF model directory.

Methods (SCIENCE.md section 6b):
- `linear`: theta = sum_i w_i theta_i, the weights summing to 1 (a weight of 1 on one
  model and 0 on the others returns that model exactly);
- `task-arithmetic` (Ilharco et al. 2023, "Editing Models with Task Arithmetic";
  Branch-and-Merge, Alexandrov et al. 2024): theta = theta_base +
  sum_i lambda_i (theta_i - theta_base), the task vectors of each model against a base
  (one model: `torch.lerp`, exact at lambda = 0 and 1);
- `wsm` (Tian et al. 2025): `linear` with weights c_j from a decay shape over the
  models in order, oldest first (`rewarm.mitigate.wsm.merge_weights`): "the decayed
  model" from checkpoints of a constant-LR phase.

Models must have the same parameter names and shapes. The output holds the first
model's config and tokenizer files, `model.safetensors`, and `merge.json` (method,
sources, weights, and the evaluation when one was run); it loads with
`AutoModelForCausalLM.from_pretrained`, `rewarm eval` and `model.init = "hf:DIR"`.
"""

from __future__ import annotations

import math
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import PreTrainedModel

from rewarm import atomic, checkpoint
from rewarm.errors import UserError
from rewarm.mitigate.wsm import merge_weights
from rewarm.model.hf import load_checkpoint_model, load_hf_dir, resolve_checkpoint_dir

METHODS = ("linear", "task-arithmetic", "wsm")
RECORD = "merge.json"
TOKENIZER_FILES = ("tokenizer", "special_tokens", "vocab", "merges")
"""Name prefixes of the tokenizer files an HF model directory carries."""

State = dict[str, torch.Tensor]


@dataclass(frozen=True)
class Source:
    """One model to merge: where it came from, its model, its tokenizer files."""

    path: Path
    model: PreTrainedModel
    tokenizer_files: list[Path]


def load_source(path: str | Path, trust_remote_code: bool = False) -> Source:
    """A rewarm checkpoint (or a run: its latest) or a Hugging Face model directory."""
    p = Path(path)
    if (p / "config.json").is_file() and not checkpoint.is_complete(p):
        model = load_hf_dir(p, trust_remote_code, str(p))
        files = [f for f in sorted(p.iterdir()) if f.name.startswith(TOKENIZER_FILES)]
        return Source(p, model, files)
    ckpt = resolve_checkpoint_dir(p, str(p))
    tok = ckpt / checkpoint.TOKENIZER
    files = sorted(tok.iterdir()) if tok.is_dir() else []
    return Source(ckpt, load_checkpoint_model(ckpt, trust_remote_code, str(p)), files)


def _check_same(states: Sequence[State], names: Sequence[str]) -> None:
    first = states[0]
    for state, name in zip(states[1:], names[1:], strict=True):
        if state.keys() != first.keys():
            extra = sorted(set(state) ^ set(first))[0]
            raise UserError(f"{name}: parameter {extra!r} is not in every model to merge")
        for key, t in state.items():
            if t.shape != first[key].shape:
                raise UserError(
                    f"{name}: {key} has shape {tuple(t.shape)}, "
                    f"{names[0]} has {tuple(first[key].shape)}"
                )


@torch.no_grad()
def linear(states: Sequence[State], weights: Sequence[float]) -> State:
    """sum_i w_i theta_i per tensor (accumulated in at least float32; integer tensors: the
    first model's)."""
    out: State = {}
    for key, first in states[0].items():
        if not first.is_floating_point():
            out[key] = first.clone()
            continue
        acc = torch.zeros_like(first, dtype=torch.promote_types(first.dtype, torch.float32))
        for w, state in zip(weights, states, strict=True):
            acc.add_(state[key].to(acc.dtype), alpha=float(w))
        out[key] = acc.to(first.dtype)
    return out


@torch.no_grad()
def task_arithmetic(base: State, states: Sequence[State], scales: Sequence[float]) -> State:
    """theta_base + sum_i lambda_i (theta_i - theta_base) per tensor."""
    out: State = {}
    for key, b in base.items():
        if not b.is_floating_point():
            out[key] = b.clone()
        elif len(states) == 1:
            out[key] = torch.lerp(b, states[0][key].to(b.dtype), float(scales[0]))
        else:
            acc = b.to(torch.promote_types(b.dtype, torch.float32)).clone()
            for lam, state in zip(scales, states, strict=True):
                acc.add_(state[key].to(acc.dtype) - b.to(acc.dtype), alpha=float(lam))
            out[key] = acc.to(b.dtype)
    return out


def resolve_weights(
    method: str, count: int, weights: Sequence[float] | None, shape: str
) -> list[float]:
    """The weights (or task-vector scales) of `count` models; UserError on a bad list."""
    if method == "wsm":
        if weights:
            raise UserError("--weights: not used with --method wsm (the --shape decides them)")
        return [float(c) for c in merge_weights(shape, count)]
    if not weights:
        return [1.0 / count] * count if method == "linear" else [1.0] * count
    if len(weights) != count:
        raise UserError(f"--weights: {len(weights)} numbers for {count} models")
    if not all(math.isfinite(w) for w in weights):
        raise UserError("--weights: every weight must be a finite number")
    if method == "linear" and abs(sum(weights) - 1.0) > 1e-6:
        raise UserError(f"--weights: linear weights must sum to 1, got {sum(weights):g}")
    return [float(w) for w in weights]


def merge(
    sources: Sequence[Source],
    *,
    method: str,
    weights: Sequence[float],
    base: Source | None = None,
) -> PreTrainedModel:
    """The merged model (the first source's model, its weights replaced)."""
    if method not in METHODS:
        raise UserError(f"--method must be one of {', '.join(METHODS)}, got {method!r}")
    states = [s.model.state_dict() for s in sources]
    names = [str(s.path) for s in sources]
    if method == "task-arithmetic":
        if base is None:
            raise UserError("--base is required with --method task-arithmetic")
        _check_same([base.model.state_dict(), *states], [str(base.path), *names])
        merged = task_arithmetic(base.model.state_dict(), states, weights)
    else:
        _check_same(states, names)
        merged = linear(states, weights)
    model = sources[0].model
    model.load_state_dict(merged)
    return model


def write(
    model: PreTrainedModel, tokenizer_files: Sequence[Path], out: Path, record: dict, force: bool
) -> Path:
    """The merged HF model directory (written under a temporary name, then swapped in)."""
    if out.exists() and any(out.iterdir()) and not force:
        raise UserError(f"--out {out}: exists and is not empty (pass --force to replace it)")
    out.parent.mkdir(parents=True, exist_ok=True)
    model.config.use_cache = True
    with atomic.directory(out) as tmp:
        model.save_pretrained(str(tmp), safe_serialization=True)
        for f in tokenizer_files:
            shutil.copy2(f, tmp / f.name)
        atomic.write_json(tmp / RECORD, record, sort_keys=True)
    return out
