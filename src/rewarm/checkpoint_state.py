"""A checkpoint's file names and its `state.json`, read without torch.

The torch-free half of `rewarm.checkpoint` (which writes checkpoints, loads their tensors
and re-exports every name here): what the run comparison (`rewarm.continual.compare`)
and other readers of logged runs need to know of a checkpoint, so they never import torch.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rewarm.errors import UserError

STATE = "state.json"
WEIGHTS = "model.safetensors"
OPTIMIZER = "optimizer.pt"
MITIGATION = "mitigation.safetensors"
"""A stage's weight average / MER anchor (`rewarm.mitigate.stage`), when it has one."""
CHECKED = (WEIGHTS, OPTIMIZER, MITIGATION)
"""The tensor files `checksums.json` records when present (sharded: with the shards)."""
CHECKSUMS = "checksums.json"
MODEL_CONFIG = "config.json"
LATEST = "latest"
TOKENIZER = "tokenizer"
SHARDS = "dcp"
"""The sharded format's torch.distributed.checkpoint directory (`rewarm.sharded_checkpoint`)."""


def step_dir_name(step: int) -> str:
    return f"step_{step:08d}"


def step_of(path: Path) -> int | None:
    """The optimizer step in a checkpoint directory's name (`step_00001234` -> 1234)."""
    match = re.fullmatch(r"step_(\d+)", path.name)
    return int(match.group(1)) if match else None


def read_state(path: Path) -> dict[str, Any]:
    try:
        state = json.loads((path / STATE).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"{path}: not a rewarm checkpoint (no {STATE})") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise UserError(f"{path / STATE}: not valid JSON: {err}") from None
    if not isinstance(state, dict):
        raise UserError(f"{path / STATE}: not a rewarm checkpoint state (not a JSON object)")
    return state


def trained_tokens(path: Path) -> int:
    """Training tokens the checkpoint's model was trained on: `loop.tokens` of its
    state.json (global batch tokens x optimizer steps, skipped non-finite steps
    included). Not `position`, the LR plan's position, which stops at a stage's
    configured length when its last step runs past it."""
    state = read_state(path)
    with malformed(path, "loop state"):
        tokens = state["loop"]["tokens"]
        if type(tokens) is not int or tokens < 0:
            raise TypeError(f"loop.tokens = {tokens!r}")
    return tokens


@contextlib.contextmanager
def malformed(path: Path, what: str) -> Iterator[None]:
    """Turn a structural error while restoring `what` from `path` into a one-line UserError."""
    try:
        yield
    except (KeyError, TypeError, ValueError, IndexError, AttributeError, RuntimeError) as err:
        raise UserError(f"{path / STATE}: malformed {what} ({type(err).__name__}: {err})") from None
