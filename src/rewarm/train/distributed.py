"""Process groups, devices and model wrapping for one process or `torchrun`.

Under `torchrun` (RANK/WORLD_SIZE/LOCAL_RANK set) the default process group is
initialised with NCCL on CUDA and gloo on CPU; the model is wrapped in DDP, or
sharded with FSDP2 `fully_shard` when `train.fsdp` is on: one unit per module of a
class the model names in `_no_split_modules` (what transformers models declare as
their decoder layer, e.g. `LlamaDecoderLayer`), then the root. State dicts for
checkpoints come from `torch.distributed.checkpoint.state_dict`, which works for all
three cases: full (unsharded, `full_state`) for the full format, or each process's
own part keyed by parameter name (`sharded_state`) for the sharded format.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

import torch
import torch.distributed as dist

from rewarm.errors import UserError

logger = logging.getLogger(__name__)


@dataclass
class DistEnv:
    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def pick_device(pref: str, local_rank: int) -> torch.device:
    if pref == "auto":
        pref = "cuda" if torch.cuda.is_available() else "cpu"
    if pref.startswith("cuda"):
        if not torch.cuda.is_available():
            raise UserError("train.device: 'cuda' requested but no CUDA device is available")
        return torch.device(pref if ":" in pref else f"cuda:{local_rank}")
    return torch.device("cpu")


def setup(device_pref: str) -> DistEnv:
    """Join the `torchrun` process group if there is one; pick this rank's device."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    device = pick_device(device_pref, local)
    if world > 1 and not dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return DistEnv(rank=rank, world_size=world, local_rank=local, device=device)


def teardown(env: DistEnv) -> None:
    if env.distributed and dist.is_initialized():
        dist.destroy_process_group()


def barrier(env: DistEnv) -> None:
    if env.distributed:
        dist.barrier()


def all_reduce_sum(env: DistEnv) -> Callable[[torch.Tensor], None]:
    if not env.distributed:
        return lambda t: None
    return lambda t: dist.all_reduce(t, op=dist.ReduceOp.SUM)


def wrap(model: torch.nn.Module, env: DistEnv, fsdp: bool) -> torch.nn.Module:
    """DDP or FSDP2 under torchrun; the model itself in one process."""
    if not env.distributed:
        return model
    if fsdp:
        from torch.distributed.fsdp import fully_shard

        for unit in shard_units(model):
            fully_shard(unit)
        fully_shard(model)
        return model
    from torch.nn.parallel import DistributedDataParallel as DDP

    ids = [env.device.index] if env.device.type == "cuda" else None
    return DDP(model, device_ids=ids)


def no_sync(wrapped: torch.nn.Module) -> Callable[[], contextlib.AbstractContextManager]:
    """Skip the gradient all-reduce on non-final micro-batches (DDP only)."""
    if hasattr(wrapped, "no_sync"):
        return wrapped.no_sync  # type: ignore[return-value]
    return contextlib.nullcontext


def shard_units(model: torch.nn.Module, *, warn: bool = True) -> list[torch.nn.Module]:
    """The modules FSDP2 shards one by one: every module whose class the model lists in
    `_no_split_modules` (the outermost, where one contains another), in model order.

    A model that lists none is sharded at the root only (one all-gather of every
    parameter per step), with a warning.
    """
    names = set(getattr(model, "_no_split_modules", None) or ())
    units: list[torch.nn.Module] = []
    inside: set[int] = set()  # ids of modules within a chosen unit
    for m in model.modules():
        if id(m) in inside or type(m).__name__ not in names:
            continue
        units.append(m)
        inside.update(id(sub) for sub in m.modules())
    if not units and warn:
        logger.warning(
            "rewarm train: %s has no module of a class named in its _no_split_modules (%s); "
            "train.fsdp shards the whole model as one unit",
            type(model).__name__,
            ", ".join(sorted(names)) or "none declared",
        )
    return units


def full_state(
    model: torch.nn.Module, optimizer: torch.optim.Optimizer | None, env: DistEnv, fsdp: bool
) -> tuple[dict[str, torch.Tensor], dict[str, Any] | None]:
    """Unsharded CPU state dicts of `model` (unwrapped) and `optimizer`.

    A collective under FSDP: every rank must call it.
    """
    if env.distributed and fsdp:
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_state_dict

        opts = StateDictOptions(full_state_dict=True, cpu_offload=True)
        if optimizer is None:
            from torch.distributed.checkpoint.state_dict import get_model_state_dict

            return cast(dict[str, torch.Tensor], get_model_state_dict(model, options=opts)), None
        full_model, full_optim = get_state_dict(model, optimizer, options=opts)
        return cast(dict[str, torch.Tensor], full_model), cast(dict[str, Any], full_optim)
    msd = {k: v.detach().to("cpu") for k, v in model.state_dict().items()}
    return msd, optimizer.state_dict() if optimizer is not None else None


def sharded_state(model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    """This process's `{"model": ..., "optim": ...}` for a sharded checkpoint: FSDP2
    DTensor shards (or the plain tensors of DDP / one process), optimizer state keyed
    by parameter name, so any number of processes can load it. No communication.

    On an optimizer without state yet, `get_state_dict` first creates it (zero
    moments, a step at LR 0 that leaves the weights unchanged): the template a
    sharded load fills in.
    """
    from torch.distributed.checkpoint.state_dict import get_state_dict

    msd, osd = get_state_dict(model, optimizer)
    return {"model": msd, "optim": osd}


def load_sharded_state(
    model: torch.nn.Module, optimizer: torch.optim.Optimizer, state: dict[str, Any]
) -> None:
    """Apply a `sharded_state` dict filled from a checkpoint to `model` and `optimizer`."""
    from torch.distributed.checkpoint.state_dict import set_state_dict

    set_state_dict(
        model, optimizer, model_state_dict=state["model"], optim_state_dict=state["optim"]
    )


def load_optimizer_state(
    model: torch.nn.Module, optimizer: torch.optim.Optimizer, state: dict[str, Any], fsdp: bool
) -> None:
    """Load a full optimizer state saved by one process, DDP or FSDP2 into any of them.

    One process and DDP save parameters by position (ints), FSDP2 by name; plain
    `load_state_dict` matches by position either way, and FSDP2 gets names.
    """
    if fsdp and dist.is_initialized():
        from torch.distributed.checkpoint.state_dict import (
            StateDictOptions,
            set_optimizer_state_dict,
        )

        set_optimizer_state_dict(
            model,
            optimizer,
            _by_name(model, optimizer, state),
            options=StateDictOptions(full_state_dict=True),
        )
    else:
        optimizer.load_state_dict(state)


def _by_name(
    model: torch.nn.Module, optimizer: torch.optim.Optimizer, state: dict[str, Any]
) -> dict[str, Any]:
    saved = [k for g in state["param_groups"] for k in g["params"]]
    if not saved or not isinstance(saved[0], int):
        return state
    names = {id(p): n for n, p in model.named_parameters()}
    order = [names[id(p)] for g in optimizer.param_groups for p in g["params"]]
    rename = dict(zip(saved, order, strict=True))
    return {
        "state": {rename[k]: v for k, v in state["state"].items()},
        "param_groups": [
            {**g, "params": [rename[k] for k in g["params"]]} for g in state["param_groups"]
        ],
    }
