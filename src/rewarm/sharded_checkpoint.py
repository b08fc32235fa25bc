"""Sharded checkpoints: every process writes its own shards (torch.distributed.checkpoint).

A sharded checkpoint is a `step_*` directory like a full one (`rewarm.checkpoint`),
with the weights and optimizer state in `dcp/` instead of `model.safetensors` and
`optimizer.pt`:

- `dcp/__R_0.distcp`: the tensors process R holds (its FSDP2 shards; replicated
  tensors are written once, by one process), written by process R itself: no
  gather on rank 0, no process holds more than its own share;
- `dcp/.metadata`: where every tensor's pieces are, written by rank 0;
- `config.json`, `tokenizer/`, `checksums.json` (size and SHA-256 of every file in
  `dcp/`, each process hashing its own) and `state.json`, as in a full checkpoint.

The state dict is `{"model": ..., "optim": ...}` in the form of
`torch.distributed.checkpoint.state_dict.get_state_dict`: tensors keyed by
parameter name (optimizer state too), a global shape per tensor. Loading reads
whatever pieces the loading processes need, so a checkpoint written by N
processes resumes under M: DCP reshards on load. One process reads it as a whole.

Atomicity is a full checkpoint's: rank 0 makes the temporary directory
(`rewarm.atomic.directory`) and tells the others its name; all write their shards
into it (fsynced); rank 0 then writes the small files, `checksums.json`, then
`state.json`, renames the directory into place, and only then replaces `latest`.
A kill at any instant leaves `latest` naming the previous complete checkpoint;
the temporary directory is removed by the next prune. The processes must share
the file system the run directory is on (the usual DCP setting).

Saving is synchronous: the step waits for the write. `dcp.async_save` would hide
it, but the checkpoint is only complete once every process's write is durable
and rank 0 has renamed the directory, so the commit would have to run later,
from a background thread, on its own process group, with the loop state it
describes captured at the step; a checkpoint costs a tenth of a step on the CPU
(docs/performance.md). Measure it on GPUs before adding that machinery.

Loading keeps the full format's guarantees: checksums are verified first (the
files split over the processes), tensors are read with `torch.load(weights_only=
True)` (DCP's own reader), DCP's pickled `.metadata` is read with an unpickler
that accepts only DCP's metadata classes, and the few non-tensor values
(optimizer hyper-parameters) only as plain data: a planted pickle is refused,
never run.
"""

from __future__ import annotations

import io
import pickle
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import torch.distributed.checkpoint as dcp
from torch.distributed.checkpoint import FileSystemReader, FileSystemWriter
from torch.distributed.checkpoint.default_planner import DefaultLoadPlanner

from rewarm import atomic, checkpoint
from rewarm.errors import UserError

SHARDS = checkpoint.SHARDS
METADATA = ".metadata"


def is_sharded(path: Path) -> bool:
    return (path / SHARDS / METADATA).is_file()


# -- collectives (no-ops in one process) -----------------------------------------------


def _distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def _rank() -> int:
    return dist.get_rank() if _distributed() else 0


def _broadcast(obj: Any) -> Any:
    """Rank 0's `obj` on every process."""
    if not _distributed():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def _all_gather(obj: Any) -> list[Any]:
    if not _distributed():
        return [obj]
    out: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


# -- save ------------------------------------------------------------------------------


def save(
    root: Path,
    step: int,
    *,
    state_dict: dict[str, Any],
    model_config_json: str,
    state: dict[str, Any] | None,
    keep: int,
    extra: Callable[[Path], object] | None = None,
) -> Path:
    """Write sharded checkpoint `root/step_NNNNNNNN`; every process calls it (a collective).

    `state_dict` is this process's `{"model": ..., "optim": ...}`; `state` (state.json)
    and `extra(tmp_dir)` (the tokenizer) are used on rank 0 only. Returns the final
    path. A failure to write raises the same one-line `UserError` on every process.
    """
    final = root / checkpoint.step_dir_name(step)
    error: str | None = None
    if _rank() == 0:
        sent = False
        try:
            root.mkdir(parents=True, exist_ok=True)
            with atomic.directory(final) as tmp:
                _broadcast(str(tmp))
                sent = True
                failed, sums = _write_shards(tmp, state_dict)
                if failed is not None:
                    raise UserError(failed)
                (tmp / checkpoint.MODEL_CONFIG).write_text(model_config_json, encoding="utf-8")
                if extra is not None:
                    extra(tmp)
                if (tmp / checkpoint.MITIGATION).is_file():
                    sums[checkpoint.MITIGATION] = checkpoint.digest(tmp / checkpoint.MITIGATION)
                atomic.write_json(tmp / checkpoint.CHECKSUMS, sums, sort_keys=True)
                atomic.write_json(tmp / checkpoint.STATE, state or {}, sort_keys=True)
            atomic.write_text(root / checkpoint.LATEST, final.name + "\n")
        except (OSError, UserError) as err:
            error = (
                f"{final}: cannot write checkpoint ({_reason(err)}); the newest complete "
                f"checkpoint ({_latest_name(root)}) is intact"
            )
            if not sent:
                _broadcast("")  # the others write nothing
    else:
        tmp_name = _broadcast(None)
        if tmp_name:
            _write_shards(Path(tmp_name), state_dict)
    # Every process takes the same collectives above whatever failed; now all agree.
    error = _broadcast(error)
    if error is not None:
        raise UserError(error)
    if _rank() == 0:
        checkpoint.prune(root, keep)
    return final


def _reason(err: Exception) -> str:
    if isinstance(err, OSError):
        return str(err.strerror or err)
    return str(err)


def _latest_name(root: Path) -> str:
    found = checkpoint.latest(root)
    return found.name if found is not None else "none yet"


def _write_shards(tmp: Path, state_dict: dict[str, Any]) -> tuple[str | None, dict[str, Any]]:
    """Every process writes its shards into `tmp/dcp` and hashes them (collectives).
    (failure or None, the merged checksum table on rank 0)."""
    writer = FileSystemWriter(str(tmp / SHARDS), sync_files=True, single_file_per_rank=True)
    failed: str | None = None
    try:
        with warnings.catch_warnings():  # "assuming the intent is to save in a single process"
            warnings.simplefilter("ignore", UserWarning)
            dcp.save(state_dict, storage_writer=writer, no_dist=not _distributed())
    except dcp.api.CheckpointException as err:
        failed = _first_failure(err)
    sums: dict[str, Any] = {}
    if failed is None:
        try:
            sums = _own_sums(tmp / SHARDS)
        except OSError as err:
            failed = f"{err.strerror or err}"
    merged: dict[str, Any] = {}
    for part_failed, part in _all_gather((failed, sums)):
        failed = failed or part_failed
        merged.update(part)
    return failed, merged


def _own_sums(shards: Path) -> dict[str, Any]:
    """Size and SHA-256 of the shard files this process wrote (`__RANK_*.distcp`), and on
    rank 0 of the metadata, keyed by their path in the checkpoint."""
    rank = _rank()
    mine = sorted(shards.glob(f"__{rank}_*.distcp"))
    if rank == 0:
        mine.append(shards / METADATA)
    return {f"{SHARDS}/{f.name}": checkpoint.digest(f) for f in mine}


# -- load ------------------------------------------------------------------------------


def load(path: Path, state_dict: dict[str, Any]) -> None:
    """Fill `state_dict` (this process's templates, e.g. `{"model": ..., "optim": ...}`)
    in place from sharded checkpoint `path`: a collective under torchrun. Only the keys
    asked for are read (`{"model": ...}` alone loads the weights)."""
    verify(path)
    read_metadata(path)  # refused here, with one line, before DCP (which logs failures)
    reader = _SafeReader(str(path / SHARDS))
    try:
        with warnings.catch_warnings():  # "assuming the intent is to load in a single process"
            warnings.simplefilter("ignore", UserWarning)
            dcp.load(
                state_dict,
                storage_reader=reader,
                planner=_SafePlanner(),
                no_dist=not _distributed(),
            )
    except dcp.api.CheckpointException as err:
        raise UserError(f"{path}: {_first_failure(err)}") from None
    except pickle.UnpicklingError as err:
        raise UserError(f"{path / SHARDS / METADATA}: {_refused(err)}") from None


def read_metadata(path: Path) -> Any:
    """DCP's metadata of sharded checkpoint `path`, unpickled with `_MetadataUnpickler`."""
    file = path / SHARDS / METADATA
    try:
        with open(file, "rb") as f:
            return _MetadataUnpickler(f).load()
    except pickle.UnpicklingError as err:
        raise UserError(f"{file}: {_refused(err)}") from None
    except (OSError, EOFError, ValueError, TypeError, AttributeError) as err:
        raise UserError(f"{file}: not readable DCP metadata ({type(err).__name__})") from None


def load_model_weights(path: Path, model: torch.nn.Module, where: str) -> None:
    """Load the weights of sharded checkpoint `path` into `model` (one process, on
    whatever device the model is): export and `init = "checkpoint:PATH"`."""
    weights = {k: v.detach() for k, v in model.state_dict().items()}
    try:
        load(path, {"model": weights})
    except UserError as err:
        raise UserError(f"{where}: {err}") from None
    checkpoint.assign_weights(model, weights, where)


def verify(path: Path) -> None:
    """Check every file listed in `checksums.json`, split over the processes; a
    `UserError` on every process if any is corrupt."""
    try:
        listed = sorted(checkpoint.read_checksums(path))
    except UserError as err:
        bad: str | None = str(err)
    else:
        bad = None
        for name in listed[_rank() :: max(1, _world())]:
            try:
                checkpoint.verify(path, name)
            except (UserError, FileNotFoundError) as err:
                bad = str(err) if isinstance(err, UserError) else f"{path / name}: missing"
                break
    found = [b for b in _all_gather(bad) if b is not None]
    if found:
        raise UserError(found[0])


def _world() -> int:
    return dist.get_world_size() if _distributed() else 1


def _first_failure(err: BaseException) -> str:
    failures = getattr(err, "failures", {}) or {}
    for wrapped in failures.values():
        inner = getattr(wrapped, "exc", wrapped)
        if isinstance(inner, pickle.UnpicklingError):
            return f"{SHARDS}/{METADATA}: {_refused(inner)}"
        if isinstance(inner, OSError):
            return f"{inner.strerror or inner}"
        first = (str(inner).strip().splitlines() or [type(inner).__name__])[0]
        return f"not a readable sharded checkpoint ({type(inner).__name__}: {first[:200]})"
    return f"not a readable sharded checkpoint ({str(err)[:200]})"


def _refused(err: Exception) -> str:
    return f"refused by the weights only unpickler ({err})"


class _MetadataUnpickler(pickle.Unpickler):
    """DCP's `.metadata` pickle, restricted to the classes DCP writes into it."""

    MODULES = ("torch.distributed.checkpoint.metadata", "torch.distributed.checkpoint.filesystem")
    NAMES = {
        ("torch", "Size"),
        ("torch.serialization", "_get_layout"),
        ("pathlib", "PosixPath"),
        ("pathlib", "WindowsPath"),
        ("pathlib", "PurePosixPath"),
        ("collections", "OrderedDict"),
    }

    def find_class(self, module: str, name: str) -> Any:
        if module in self.MODULES and not name.startswith("__"):
            found = super().find_class(module, name)
            if isinstance(found, type):
                return found
        elif (module, name) in self.NAMES:
            return super().find_class(module, name)
        elif module == "torch" and isinstance(getattr(torch, name, None), torch.dtype):
            return getattr(torch, name)
        raise pickle.UnpicklingError(f"{module}.{name} is not allowed in DCP metadata")


class _SafeReader(FileSystemReader):
    """DCP's file reader, with the metadata read by `_MetadataUnpickler`."""

    def read_metadata(self, *args: Any, **kwargs: Any) -> Any:
        from torch.distributed.checkpoint.metadata import StorageMeta

        with open(Path(str(self.path)) / METADATA, "rb") as f:
            metadata = _MetadataUnpickler(f).load()
        if getattr(metadata, "storage_meta", None) is None:
            metadata.storage_meta = StorageMeta()
        metadata.storage_meta.load_id = getattr(self, "load_id", None)
        return metadata


class _SafePlanner(DefaultLoadPlanner):
    """Non-tensor values (optimizer hyper-parameters) are unpickled as plain data only:
    `torch.load(weights_only=True)`, then handed to DCP re-serialised."""

    def load_bytes(self, read_item: Any, value: io.BytesIO) -> None:
        obj = torch.load(value, weights_only=True)
        clean = io.BytesIO()
        torch.save(obj, clean)
        clean.seek(0)
        super().load_bytes(read_item, clean)
