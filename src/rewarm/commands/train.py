"""`rewarm train CONFIG [--set key=value ...] [--allow-changes KEYS]`: run or resume.

Also what `torchrun --nproc_per_node=N -m rewarm train CONFIG` runs on every rank.
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import os

logger = logging.getLogger(__name__)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("config", metavar="CONFIG", help="run config (TOML)")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config key, e.g. --set train.lr=3e-4 (repeatable)",
    )
    p.add_argument(
        "--allow-changes",
        default="",
        metavar="KEYS",
        help="comma-separated keys (or sections, e.g. 'stages') that may differ from the "
        "existing run's config when resuming",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from rewarm import runconfig
    from rewarm.errors import UserError
    from rewarm.model.hf import check_init
    from rewarm.train import changes

    cfg = runconfig.load(args.config, args.set)
    check_init(cfg)
    if cfg.train.tensorboard and importlib.util.find_spec("tensorboard") is None:
        raise UserError(
            f"{cfg.source}: train.tensorboard = true needs the tensorboard package "
            "(pip install tensorboard)"
        )
    main = int(os.environ.get("RANK", "0")) == 0
    allowed = [k.strip() for k in args.allow_changes.split(",") if k.strip()]
    try:
        diff = changes.check(cfg, allowed)
    except changes.ConfigChanged as err:
        if main:  # the same on every rank: one copy
            logger.error("\n".join(err.diff))
        raise
    for key, (old, new) in diff.items():
        logger.info("rewarm train: allowed change %s: %r -> %r", key, old, new)
    # A changed LR schedule is described by the session, from the checkpoint's plan.

    from rewarm.train.trainer import NonFiniteError, train

    try:
        state = train(cfg, progress=not args.no_progress)
    except NonFiniteError as err:
        if main:  # every rank stops at the same step: one copy
            logger.error("rewarm train: %s", err)
        return 1
    except OSError as err:  # disk full or unwritable output outside a checkpoint write
        where = err.filename or cfg.run_dir
        raise UserError(
            f"{where}: {err.strerror or err}; the newest checkpoint is intact, rerun to resume"
        ) from None
    logger.info(
        "rewarm train: %s: %d steps, %s tokens; metrics in %s",
        cfg.run.name,
        state.step,
        f"{state.tokens:,}",
        cfg.run_dir / "metrics.jsonl",
    )
    return 0
