"""`rewarm train CONFIG [--set key=value ...] [--allow-changes KEYS]`: run or resume.

Also what `torchrun --nproc_per_node=N -m rewarm train CONFIG` runs on every rank.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys


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
        if main:
            print("\n".join(err.diff), file=sys.stderr)
        raise
    if diff and main:
        for key, (old, new) in diff.items():
            print(f"rewarm train: allowed change {key}: {old!r} -> {new!r}", file=sys.stderr)
        # A changed LR schedule is described by the session, from the checkpoint's plan.

    from rewarm.train.trainer import NonFiniteError, train

    try:
        state = train(cfg, progress=not args.no_progress)
    except NonFiniteError as err:
        if main:
            print(f"rewarm train: {err}", file=sys.stderr)
        return 1
    except OSError as err:  # disk full or unwritable output outside a checkpoint write
        where = err.filename or cfg.run_dir
        raise UserError(
            f"{where}: {err.strerror or err}; the newest checkpoint is intact, rerun to resume"
        ) from None
    if main:
        print(
            f"rewarm train: {cfg.run.name}: {state.step} steps, {state.tokens:,} tokens; "
            f"metrics in {cfg.run_dir / 'metrics.jsonl'}",
            file=sys.stderr,
        )
    return 0
