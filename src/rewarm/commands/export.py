"""`rewarm export CHECKPOINT --out DIR`: a Hugging Face model directory."""

from __future__ import annotations

import argparse
import logging

logger = logging.getLogger(__name__)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "checkpoint",
        metavar="CHECKPOINT",
        help="a checkpoint directory (runs/NAME/checkpoints/step_N), or a run directory "
        "(its latest checkpoint)",
    )
    p.add_argument("--out", required=True, metavar="DIR", help="output directory")
    p.add_argument("--force", action="store_true", help="replace a non-empty --out")


def run(args: argparse.Namespace) -> int:
    from rewarm.model.export import export

    out = export(args.checkpoint, args.out, force=args.force)
    logger.info("rewarm export: wrote %s (load with AutoModelForCausalLM.from_pretrained)", out)
    return 0
