"""`rewarm eval CHECKPOINT --config CONFIG [--domains ...]`: held-out loss per domain.

CHECKPOINT is a rewarm checkpoint (or a run directory: its latest) or a Hugging
Face model directory such as `rewarm export` writes. The evaluation sample is
the one training uses (`eval.tokens_per_domain` fixed windows of each domain's
held-out split), so numbers match the run's `eval` records.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("checkpoint", metavar="CHECKPOINT", help="checkpoint, run or HF model directory")
    p.add_argument("--config", required=True, metavar="CONFIG", help="config naming the domains")
    p.add_argument("--domains", nargs="+", metavar="NAME", help="only these domains")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--json", action="store_true", help="print JSON lines instead of a table")


def run(args: argparse.Namespace) -> int:
    import torch

    from rewarm import checkpoint, runconfig
    from rewarm.data import prepare, tokenizer
    from rewarm.errors import UserError
    from rewarm.evaluation.evaluator import build_evaluator
    from rewarm.model import hf
    from rewarm.train.distributed import pick_device

    cfg = runconfig.load(args.config, args.set)
    for name in args.domains or []:
        if name not in cfg.domains:
            raise UserError(
                f"--domains {name}: not declared in {args.config} ({', '.join(cfg.domains)})"
            )
    path = Path(args.checkpoint)
    if (path / "config.json").is_file() and not checkpoint.is_complete(path):
        model = hf.load_hf_dir(path, cfg.model.trust_remote_code, "CHECKPOINT")
    else:
        ckpt = hf.resolve_checkpoint_dir(path, "CHECKPOINT")
        model = hf.load_checkpoint_model(ckpt, cfg.model.trust_remote_code, "CHECKPOINT")
    domains = prepare.prepare(cfg, progress=False)
    hf.check_vocab(model, tokenizer.load_tokenizer(cfg).vocab_size, "CHECKPOINT")
    device = pick_device(cfg.train.device, 0)
    model.to(device=device, dtype=torch.float32)  # type: ignore[call-arg]  # see model.hf
    # One process: the training micro-batch of a single rank (world size 1).
    evaluator = build_evaluator(cfg, domains, device=device, names=args.domains)
    results = evaluator.evaluate(model)
    if args.json:
        for r in results:
            print(
                json.dumps(
                    {
                        "domain": r.domain,
                        "loss": r.loss,
                        "bits_per_byte": r.bits_per_byte,
                        "tokens": r.tokens,
                    }
                )
            )
        return 0
    width = max(6, *(len(r.domain) for r in results))
    print(f"{'domain':<{width}}  {'loss':>8}  {'bits/byte':>9}  {'tokens':>8}")
    for r in results:
        print(f"{r.domain:<{width}}  {r.loss:>8.4f}  {r.bits_per_byte:>9.4f}  {r.tokens:>8}")
    return 0
