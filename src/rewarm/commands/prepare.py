"""`rewarm prepare CONFIG`: turn each domain's corpus into memory-mapped token shards."""

from __future__ import annotations

import argparse
import logging

logger = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", help="run config (TOML)")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config key, e.g. --set tokenizer.kind=bpe (repeatable)",
    )
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "--force", action="store_true", help="rebuild every domain even if its shards are current"
    )
    group.add_argument(
        "--check",
        action="store_true",
        help="do not build: exit 2 naming the first domain whose shards are missing or stale",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def run(args: argparse.Namespace) -> int:
    from rewarm import runconfig
    from rewarm.data.prepare import prepare

    cfg = runconfig.load(args.config, args.overrides)
    domains = prepare(cfg, progress=not args.quiet, rebuild=not args.check, force=args.force)
    width = max(len(n) for n in domains)
    print(f"{'domain':<{width}}  {'train tokens':>14}  {'heldout tokens':>14}  {'docs':>8}  dtype")
    for name, data in domains.items():
        split, counts = data.manifest["split"], data.manifest["counts"]
        print(
            f"{name:<{width}}  {split['train_tokens']:>14,}  {split['heldout_tokens']:>14,}  "
            f"{counts['documents']:>8,}  {data.manifest['dtype']}"
        )
        notes = [
            f"{counts[k]} {label}"
            for k, label in (
                ("skipped_files", "skipped files"),
                ("empty_documents", "empty documents"),
                ("undecodable_bytes", "undecodable bytes"),
                ("missing_field", "records without the field"),
            )
            if counts[k]
        ]
        if notes:
            print(f"{'':<{width}}  note: {', '.join(notes)} (see manifest.json)")
    logger.info("shards in %s", cfg.data_dir)
    return 0
