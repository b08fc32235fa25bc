"""Complete, atomic checkpoints: `runs/NAME/checkpoints/step_00001234/`.

A checkpoint directory holds

- `model.safetensors`: the weights (tied tensors stored once);
- `config.json`: the Hugging Face model config, so the weights load on their own;
- `optimizer.pt`: `torch.save` of the optimizer state dict, read back only with
  `torch.load(weights_only=True)`: nothing in a checkpoint is unpickled as code;
- `state.json`: position, step, stage, sampler state, RNG states, loop state,
  schedule fingerprint and config hash (plain JSON).

Everything is written into a temporary sibling directory, flushed, and renamed
into place; `state.json` is written last, so a directory without it is never
complete. Only then is `checkpoints/latest` replaced (write + `os.replace`), so a
kill at any instant leaves `latest` naming a complete checkpoint.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from rewarm.errors import UserError

STATE = "state.json"
WEIGHTS = "model.safetensors"
OPTIMIZER = "optimizer.pt"
MODEL_CONFIG = "config.json"
LATEST = "latest"
TOKENIZER = "tokenizer"


def step_dir_name(step: int) -> str:
    return f"step_{step:08d}"


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _dedupe(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Drop tensors that alias an earlier one (tied embeddings); safetensors refuses them."""
    seen: set[tuple[int, int]] = set()
    out: dict[str, torch.Tensor] = {}
    for name, t in state.items():
        key = (t.untyped_storage().data_ptr(), t.storage_offset())
        if key in seen and t.numel() > 0:
            continue
        seen.add(key)
        out[name] = t.detach().contiguous()
    return out


def save(
    root: Path,
    step: int,
    *,
    model_state: dict[str, torch.Tensor],
    model_config_json: str,
    optimizer_state: dict[str, Any] | None,
    state: dict[str, Any],
    keep: int,
    extra: Callable[[Path], None] | None = None,
) -> Path:
    """Write checkpoint `root/step_NNNNNNNN` atomically, update `latest`, prune old ones.

    `state["stage_end"] = True` marks a checkpoint that pruning never removes.
    `extra(tmp_dir)` writes further files (the tokenizer) before the rename.
    """
    root.mkdir(parents=True, exist_ok=True)
    final = root / step_dir_name(step)
    tmp = root / f".tmp-{final.name}-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    save_file(_dedupe(model_state), str(tmp / WEIGHTS), metadata={"format": "pt"})
    (tmp / MODEL_CONFIG).write_text(model_config_json, encoding="utf-8")
    if optimizer_state is not None:
        torch.save(optimizer_state, tmp / OPTIMIZER)
    if extra is not None:
        extra(tmp)
    _write_atomic(tmp / STATE, json.dumps(state, sort_keys=True))
    if final.exists():  # the same step written again after a resume: replace it
        old = root / f".old-{final.name}-{os.getpid()}"
        os.replace(final, old)
        os.replace(tmp, final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, final)
    _write_atomic(root / LATEST, final.name + "\n")
    prune(root, keep)
    return final


def is_complete(path: Path) -> bool:
    return (path / STATE).is_file() and (path / WEIGHTS).is_file()


def latest(root: Path) -> Path | None:
    """The newest complete checkpoint under `root` (from `latest`, else by scanning)."""
    pointer = root / LATEST
    if pointer.is_file():
        cand = root / pointer.read_text(encoding="utf-8").strip()
        if cand.name.startswith("step_") and is_complete(cand):
            return cand
    done = sorted(p for p in root.glob("step_*") if is_complete(p))
    return done[-1] if done else None


def prune(root: Path, keep: int) -> None:
    """Keep the newest `keep` periodic checkpoints, every stage-end one, and `latest`."""
    for leftover in root.glob(".tmp-*"):
        if not leftover.name.endswith(f"-{os.getpid()}"):
            shutil.rmtree(leftover, ignore_errors=True)
    newest = latest(root)
    periodic = [
        p
        for p in sorted(root.glob("step_*"))
        if is_complete(p) and not read_state(p).get("stage_end", False)
    ]
    for p in periodic[:-keep] if keep > 0 else periodic:
        if p != newest:
            shutil.rmtree(p, ignore_errors=True)


def read_state(path: Path) -> dict[str, Any]:
    try:
        return json.loads((path / STATE).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"{path}: not a rewarm checkpoint (no {STATE})") from None
    except json.JSONDecodeError as err:
        raise UserError(f"{path / STATE}: not valid JSON: {err}") from None


def load_weights(path: Path, device: str | torch.device = "cpu") -> dict[str, torch.Tensor]:
    if not (path / WEIGHTS).is_file():
        raise UserError(f"{path}: no {WEIGHTS} (not a rewarm checkpoint)")
    return load_file(str(path / WEIGHTS), device=str(device))


def load_optimizer(path: Path) -> dict[str, Any] | None:
    file = path / OPTIMIZER
    if not file.is_file():
        return None
    return torch.load(file, map_location="cpu", weights_only=True)


def assign_weights(model: torch.nn.Module, weights: dict[str, torch.Tensor], where: str) -> None:
    """Load `weights` into `model`; keys absent only because they are tied may be missing."""
    result = model.load_state_dict(weights, strict=False)
    params = dict(model.named_parameters(remove_duplicate=False))
    loaded_ptrs = {params[k].data_ptr() for k in weights if k in params}
    missing = [
        k
        for k in result.missing_keys
        if params.get(k) is None or params[k].data_ptr() not in loaded_ptrs
    ]
    missing = [k for k in missing if k in params]  # buffers (rotary caches) are rebuilt
    if missing or result.unexpected_keys:
        raise UserError(
            f"{where}: weights do not match the model "
            f"(missing {missing[:3]}, unexpected {result.unexpected_keys[:3]})"
        )
