"""Complete, atomic checkpoints: `runs/NAME/checkpoints/step_00001234/`.

A checkpoint directory holds

- `model.safetensors`: the weights (tied tensors stored once);
- `config.json`: the Hugging Face model config, so the weights load on their own;
- `optimizer.pt`: `torch.save` of the optimizer state dict, read back only with
  `torch.load(weights_only=True)`: nothing in a checkpoint is unpickled as code;
- `mitigation.safetensors` (a stage with a weight average or MER only): its state;
- `checksums.json`: the size and SHA-256 of `model.safetensors`, `optimizer.pt`
  and `mitigation.safetensors`, verified before any of them is loaded, so a torn or bit-flipped file
  is refused instead of resumed from;
- `state.json`: position, step, stage, sampler state, RNG states, loop state and
  the LR plan's fingerprint (plain JSON; older checkpoints also hold a config hash,
  never read).

A *sharded* checkpoint (`rewarm.sharded_checkpoint`, written by every process of
a torchrun job) holds `dcp/` in place of `model.safetensors` and `optimizer.pt`;
everything else, the protocol below and `latest` are the same, and the functions
here that do not read tensors (`latest`, `prune`, `read_state`, `copy_to`) serve both.

Everything is written into a temporary sibling directory, fsynced, and renamed
into place (`rewarm.atomic.directory`); inside it `checksums.json` is written
before `state.json`, so a directory without `state.json` is never complete. Only
then is `checkpoints/latest` replaced (`rewarm.atomic.write_text`), so a kill at
any instant leaves `latest` naming a complete checkpoint.

The file names and the reading of `state.json` live in `rewarm.checkpoint_state`
(no torch) and are re-exported here.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import shutil
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from rewarm import atomic
from rewarm.checkpoint_state import (  # re-exported: callers use `checkpoint.NAME`
    CHECKED,
    CHECKSUMS,
    LATEST,
    MITIGATION,
    MODEL_CONFIG,
    OPTIMIZER,
    SHARDS,
    STATE,
    TOKENIZER,
    WEIGHTS,
    malformed,
    read_state,
    step_dir_name,
    step_of,
    trained_tokens,
)
from rewarm.errors import UserError

__all__ = [
    "CHECKED",
    "CHECKSUMS",
    "LATEST",
    "MITIGATION",
    "MODEL_CONFIG",
    "OPTIMIZER",
    "SHARDS",
    "STATE",
    "TOKENIZER",
    "WEIGHTS",
    "assign_weights",
    "copy_to",
    "link_or_copy",
    "is_complete",
    "is_sharded",
    "latest",
    "load_optimizer",
    "load_weights",
    "malformed",
    "prune",
    "read_state",
    "save",
    "step_dir_name",
    "step_of",
    "trained_tokens",
    "verify",
]


def _dedupe(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Drop tensors that alias an earlier one (tied embeddings); safetensors refuses them."""
    seen: set[tuple[int, int]] = set()
    out: dict[str, torch.Tensor] = {}
    for name, t in state.items():
        key = (t.untyped_storage().data_ptr(), int(t.storage_offset()))
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
    extra: Callable[[Path], object] | None = None,
) -> Path:
    """Write checkpoint `root/step_NNNNNNNN` atomically, update `latest`, prune old ones.

    `state["stage_end"] = True` marks a checkpoint that pruning never removes.
    `extra(tmp_dir)` writes further files (the tokenizer) before the rename.
    """
    final = root / step_dir_name(step)
    try:
        root.mkdir(parents=True, exist_ok=True)
        # The same step written again after a resume replaces the directory.
        with atomic.directory(final) as tmp:
            _write_files(tmp, model_state, model_config_json, optimizer_state, state, extra)
        atomic.write_text(root / LATEST, final.name + "\n")
    except OSError as err:
        # Disk full or unwritable: the partial directory is gone; `latest` still names
        # the previous complete checkpoint (or this one, if only its update failed).
        raise UserError(
            f"{final}: cannot write checkpoint ({err.strerror or err}); "
            f"the newest complete checkpoint ({_latest_name(root)}) is intact"
        ) from None
    prune(root, keep)
    return final


def _write_files(
    tmp: Path,
    model_state: dict[str, torch.Tensor],
    model_config_json: str,
    optimizer_state: dict[str, Any] | None,
    state: dict[str, Any],
    extra: Callable[[Path], object] | None,
) -> None:
    save_file(_dedupe(model_state), str(tmp / WEIGHTS), metadata={"format": "pt"})
    (tmp / MODEL_CONFIG).write_text(model_config_json, encoding="utf-8")
    if optimizer_state is not None:
        torch.save(optimizer_state, tmp / OPTIMIZER)
    if extra is not None:
        extra(tmp)
    # Sizes and SHA-256 of the tensor files, checked on load: a torn or bit-flipped
    # file is refused instead of resuming from silently wrong numbers.
    sums = {n: digest(tmp / n) for n in CHECKED if (tmp / n).is_file()}
    atomic.write_json(tmp / CHECKSUMS, sums, sort_keys=True)
    atomic.write_json(tmp / STATE, state, sort_keys=True)


def digest(file: Path) -> dict[str, Any]:
    """`{"bytes", "sha256"}` of `file`, as `checksums.json` records it."""
    h = hashlib.sha256()
    with open(file, "rb") as f:
        while chunk := f.read(1 << 22):
            h.update(chunk)
    return {"bytes": file.stat().st_size, "sha256": h.hexdigest()}


def verify(path: Path, name: str) -> None:
    """Refuse `path/name` if it differs from the size and SHA-256 in `checksums.json`
    (files it does not list, and checkpoints written before it existed, are not checked)."""
    sums = read_checksums(path)
    if name not in sums:
        return
    want, file = sums[name], path / name
    if not file.is_file():
        raise UserError(f"{file}: missing (listed in {CHECKSUMS}); use another checkpoint")
    if (
        not isinstance(want, dict)
        or file.stat().st_size != want.get("bytes")
        or digest(file) != want
    ):
        raise UserError(
            f"{file}: corrupt (size or SHA-256 differs from {CHECKSUMS}); use another checkpoint"
        )


def read_checksums(path: Path) -> dict[str, Any]:
    """`checksums.json` of checkpoint `path` ({} when it has none: older checkpoints)."""
    try:
        sums = json.loads((path / CHECKSUMS).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as err:
        raise UserError(f"{path / CHECKSUMS}: unreadable ({err})") from None
    if not isinstance(sums, dict):
        raise UserError(f"{path / CHECKSUMS}: not a JSON object")
    return sums


def _latest_name(root: Path) -> str:
    found = latest(root)
    return found.name if found is not None else "none yet"


def is_complete(path: Path) -> bool:
    """`state.json` (written last) and the weights: `model.safetensors`, or a sharded
    checkpoint's `dcp/.metadata`."""
    return (path / STATE).is_file() and ((path / WEIGHTS).is_file() or is_sharded(path))


def is_sharded(path: Path) -> bool:
    """Written in the sharded format (`rewarm.sharded_checkpoint`)."""
    return (path / SHARDS / ".metadata").is_file()


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
    atomic.remove_stale(root)  # partial checkpoints of killed processes
    newest = latest(root)
    periodic = [
        p
        for p in sorted(root.glob("step_*"))
        if is_complete(p) and not read_state(p).get("stage_end", False)
    ]
    for p in periodic[:-keep] if keep > 0 else periodic:
        if p != newest:
            # Renamed out of sight first: a kill during the (non-atomic) delete leaves a
            # stale `.old-*` directory for the next prune, never a half-deleted step_*.
            gone = p.with_name(f".old-{p.name}-{os.getpid()}")
            os.replace(p, gone)
            shutil.rmtree(gone, ignore_errors=True)


def link_or_copy(src: str, dst: str) -> None:
    """Hard-link `src` as `dst`, or copy it where links fail (another file system, no
    link support): `shutil.copytree`'s `copy_function` for checkpoint files."""
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def copy_to(src: Path, root: Path, *, step: int | None = None, link: bool = True) -> Path:
    """Place a copy of complete checkpoint `src` (either format) under `root` as
    `step_NNNNNNNN` (its own step unless `step` is given) and point `root/latest` at it;
    the copy's path. This is how a checkpoint's full state moves into another run.

    Atomic like `save`: built in a temporary sibling, renamed into place, `latest`
    last. Files are hard-linked when `link` and the file system allows (a checkpoint's
    files are never modified in place, only replaced by renames, so a link cannot
    change under either run), else copied.
    """
    if not is_complete(src):
        raise UserError(f"{src}: not a complete rewarm checkpoint")
    number = step_of(src) if step is None else step
    if number is None:
        raise UserError(f"{src}: not a step_* checkpoint directory (pass step=)")
    final = root / step_dir_name(number)
    root.mkdir(parents=True, exist_ok=True)

    with atomic.directory(final) as tmp:
        place = link_or_copy if link else shutil.copy2
        shutil.copytree(src, tmp, dirs_exist_ok=True, copy_function=place)
    atomic.write_text(root / LATEST, final.name + "\n")
    return final


def load_weights(path: Path, device: str | torch.device = "cpu") -> dict[str, torch.Tensor]:
    if not (path / WEIGHTS).is_file():
        raise UserError(f"{path}: no {WEIGHTS} (not a rewarm checkpoint)")
    verify(path, WEIGHTS)
    try:
        return load_file(str(path / WEIGHTS), device=str(device))
    except (SafetensorError, OSError, ValueError) as err:
        raise UserError(f"{path / WEIGHTS}: not a readable safetensors file ({err})") from None


def load_optimizer(path: Path) -> dict[str, Any] | None:
    """The optimizer state dict, unpickled with `weights_only=True` (tensors and plain
    containers only: a pickle that names any other callable is refused, never run)."""
    file = path / OPTIMIZER
    if not file.is_file():
        return None
    verify(path, OPTIMIZER)
    try:
        with warnings.catch_warnings():  # torch warns about odd pickles; we refuse them
            warnings.simplefilter("ignore", UserWarning)
            state = torch.load(file, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise UserError(
            f"{file}: refused by the weights only unpickler "
            "(corrupt, or it holds objects whose loading could run code)"
        ) from None
    except (RuntimeError, EOFError, OSError, ValueError) as err:
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise UserError(f"{file}: not a readable optimizer state ({first[:160]})") from None
    if not isinstance(state, dict):
        raise UserError(f"{file}: not an optimizer state dict")
    return state


def assign_weights(model: torch.nn.Module, weights: dict[str, torch.Tensor], where: str) -> None:
    """Load `weights` into `model`; keys absent only because they are tied may be missing."""
    try:
        result = model.load_state_dict(weights, strict=False)
    except RuntimeError as err:  # shape mismatch
        first = str(err).strip().splitlines()
        raise UserError(
            f"{where}: weights do not match the model ({' '.join(first)[:300]})"
        ) from None
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
