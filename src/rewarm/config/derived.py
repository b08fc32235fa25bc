"""Values derived from a config, defined once: every module that needs one calls here.

Progress is counted in tokens; optimizer steps, batch rows and the evaluation
interval follow from the config by these formulas and no other.
"""

from __future__ import annotations

import math

from rewarm.config.schema import Config, TrainSection
from rewarm.errors import UserError

AUTO_EVAL_FACTOR = 10
"""With `eval.every_tokens = "auto"`, train this many times the evaluated tokens
between evaluations. A forward-only evaluation costs about a third of a training
step per token (2N vs 6N FLOPs), so evaluation takes about 1 / (1 + 3 x 10) = 3%
of the compute (3-4% of wall time measured on a CPU: benchmarks/overheads.py)."""


def stage_steps(cfg: Config, index: int) -> int:
    """Optimizer steps in stage `index`: ceil(stage tokens / train.batch_tokens). The
    trainer runs this many and the data sampler plans this many."""
    return math.ceil(cfg.stages[index].tokens / cfg.train.batch_tokens)


def batch_rows(train: TrainSection) -> int:
    """Sequences in one global batch: B = batch_tokens / seq_len (a whole number by
    validation)."""
    return train.batch_tokens // train.seq_len


def rows_per_rank(cfg: Config, world_size: int) -> int:
    """Sequences of the global batch each of `world_size` ranks draws and trains on;
    a `UserError` when they do not split evenly (the global batch never changes with
    the number of processes)."""
    rows = batch_rows(cfg.train)
    if rows % world_size:
        raise UserError(
            f"{cfg.source}: train.batch_tokens / train.seq_len = {rows} sequences "
            f"cannot be split evenly over {world_size} ranks"
        )
    return rows // world_size


def micro_batch_rows(train: TrainSection, world_size: int) -> int:
    """Sequences per forward/backward on one rank: micro_batch_tokens / seq_len, or
    the rank's whole share of the batch when micro_batch_tokens is 0. The evaluator
    runs batches of twice this (no activations are kept for a backward pass)."""
    tokens = train.micro_batch_tokens or train.batch_tokens // world_size
    return tokens // train.seq_len


def eval_interval(cfg: Config) -> int:
    """Training tokens between evaluations (0 = stage boundaries only).

    "auto" resolves to AUTO_EVAL_FACTOR x (declared domains) x tokens_per_domain,
    rounded up to whole optimizer steps: continual evaluation on by default at a
    bounded cost.
    """
    every = cfg.eval.every_tokens
    if every != "auto":
        return int(every)
    tokens = AUTO_EVAL_FACTOR * len(cfg.domains) * cfg.eval.tokens_per_domain
    batch = cfg.train.batch_tokens
    return -(-tokens // batch) * batch


def checkpoint_format(cfg: Config, world_size: int) -> str:
    """The checkpoint format ("full" or "sharded") of this run with `world_size` processes.

    "auto" shards where gathering would defeat the point: FSDP2 under torchrun, whose
    processes each hold a slice of the weights and moments. With DDP (every process
    holds everything) and in one process one full copy is as cheap and stays one
    safetensors file. Loading reads either format, whatever this says.
    """
    fmt = cfg.checkpoint.format
    if fmt != "auto":
        return fmt
    return "sharded" if world_size > 1 and cfg.train.fsdp else "full"
