"""`rewarm merge MODEL... --out DIR [--method M] [--weights W...] [--base B] [--config C]`.

Merges rewarm checkpoints (or run directories: their latest) and Hugging Face model
directories into one HF model directory (`rewarm.mitigate.merge`): linear weights,
task arithmetic against `--base`, or WSM weights from a decay `--shape`. With
`--config`, every domain of that config is evaluated on the merged model and on each
input (the sample `rewarm eval` and training use), printed as a table and stored in
the output's merge.json.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("models", nargs="+", metavar="MODEL", help="checkpoints, runs or HF dirs")
    p.add_argument("--out", required=True, metavar="DIR", help="the merged HF model directory")
    p.add_argument(
        "--method", default="linear", choices=("linear", "task-arithmetic", "wsm"),
        help="linear (weights sum to 1), task-arithmetic (against --base) or wsm",
    )  # fmt: skip
    p.add_argument(
        "--weights", type=float, nargs="+", metavar="W",
        help="one per MODEL: linear weights (default: equal) or task-vector scales "
        "lambda (default: 1)",
    )  # fmt: skip
    p.add_argument("--base", metavar="MODEL", help="the base of task arithmetic")
    p.add_argument(
        "--shape", default="1-sqrt", help="wsm: the decay shape the weights emulate "
        "(MODELs oldest first)",
    )  # fmt: skip
    p.add_argument("--config", metavar="CONFIG", help="evaluate every domain of this config")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--force", action="store_true", help="replace a non-empty --out")


def run(args: argparse.Namespace) -> int:
    from rewarm.errors import UserError
    from rewarm.mitigate import merge
    from rewarm.schedules.shapes import DECAY_SHAPES

    if args.method == "wsm" and args.shape not in DECAY_SHAPES:
        raise UserError(f"--shape must be one of {', '.join(DECAY_SHAPES)}, got {args.shape!r}")
    if args.base is not None and args.method != "task-arithmetic":
        raise UserError("--base: only used with --method task-arithmetic")
    cfg = None
    if args.config is not None:
        from rewarm import runconfig

        cfg = runconfig.load(args.config, args.set)  # a bad config fails before any work
    weights = merge.resolve_weights(args.method, len(args.models), args.weights, args.shape)
    trust = cfg.model.trust_remote_code if cfg is not None else False
    sources = [merge.load_source(m, trust) for m in args.models]
    base = merge.load_source(args.base, trust) if args.base else None
    record: dict[str, Any] = {
        "method": args.method,
        "models": [str(s.path) for s in sources],
        "weights": weights,
        "base": str(base.path) if base is not None else None,
        "shape": args.shape if args.method == "wsm" else None,
    }
    inputs = [(str(s.path), s.model) for s in ([base] if base else []) + sources]
    before = _evaluate(cfg, inputs) if cfg is not None else {}  # before the merge reuses them
    model = merge.merge(sources, method=args.method, weights=weights, base=base)
    if cfg is not None:
        record["evaluation"] = {**before, **_evaluate(cfg, [("merged", model)])}
        _print_table(record["evaluation"])
    out = merge.write(model, sources[0].tokenizer_files, Path(args.out), record, args.force)
    logger.info("rewarm merge: wrote %s (%s, weights %s)", out, args.method, weights)
    return 0


def _evaluate(cfg: Any, models: list[tuple[str, Any]]) -> dict[str, dict[str, dict[str, float]]]:
    """{name: {domain: {loss, bits_per_byte}}} on the config's fixed held-out sample."""
    import torch

    from rewarm.data import prepare, tokenizer
    from rewarm.evaluation.evaluator import build_evaluator
    from rewarm.model import hf
    from rewarm.train.distributed import pick_device

    domains = prepare.prepare(cfg, progress=False)
    vocab = tokenizer.load_tokenizer(cfg).vocab_size
    device = pick_device(cfg.train.device, 0)
    evaluator = build_evaluator(cfg, domains, device=device)
    out = {}
    for name, model in models:
        hf.check_vocab(model, vocab, name)
        model.to(device=device, dtype=torch.float32)
        out[name] = {
            r.domain: {"loss": r.loss, "bits_per_byte": r.bits_per_byte}
            for r in evaluator.evaluate(model)
        }
        model.to("cpu")
    return out


def _print_table(evaluation: dict[str, dict[str, dict[str, float]]]) -> None:
    domains = list(next(iter(evaluation.values())))
    width = max(6, *(len(n) for n in evaluation))
    print(f"{'model':<{width}}  " + "  ".join(f"{d + ' bpb':>12}" for d in domains))
    for name, row in evaluation.items():
        cells = "  ".join(f"{row[d]['bits_per_byte']:>12.4f}" for d in domains)
        print(f"{name:<{width}}  {cells}")
