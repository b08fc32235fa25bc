"""`rewarm eval CHECKPOINT [--config CONFIG] [--domains ...] [--tasks [TASK ...]]`.

CHECKPOINT is a rewarm checkpoint (or a run directory: its latest) or a Hugging
Face model directory such as `rewarm export` writes.

- Held-out loss per domain (the default; needs `--config`): the evaluation sample
  is the one training uses (`eval.tokens_per_domain` fixed windows of each domain's
  held-out split), so numbers match the run's `eval` records.
- `--tasks TASK ...`: lm-evaluation-harness tasks (the `tasks` extra), named as in
  `eval.tasks` (`rewarm:KIND:DOMAIN`, a harness task name, or a task YAML path);
  `--tasks` alone evaluates the config's `eval.tasks`. Built-in tasks need
  `--config` (they are made from its domains' held-out split). The model's own
  tokenizer (the checkpoint's `tokenizer/`) is used, and the harness runs as during
  training (`rewarm.tasks.harness`), so the values match the run's `task` records.
  With `--tasks`, held-out loss is printed only if `--domains` is given too.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

    from rewarm.config import Config, TaskSection


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("checkpoint", metavar="CHECKPOINT", help="checkpoint, run or HF model directory")
    p.add_argument("--config", metavar="CONFIG", help="config naming the domains (and eval.tasks)")
    p.add_argument("--domains", nargs="+", metavar="NAME", help="only these domains")
    p.add_argument(
        "--tasks",
        nargs="*",
        metavar="TASK",
        help="lm-evaluation-harness tasks (rewarm:KIND:DOMAIN, a harness name or a YAML "
        "path); alone: the config's eval.tasks",
    )
    p.add_argument("--num-fewshot", type=int, default=0, metavar="N", help="for --tasks TASK")
    p.add_argument("--limit", type=int, default=0, metavar="N", help="items per task (0 = all)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--json", action="store_true", help="print JSON lines instead of a table")


def run(args: argparse.Namespace) -> int:
    import torch

    from rewarm import checkpoint, runconfig
    from rewarm.errors import UserError
    from rewarm.model import hf
    from rewarm.train.distributed import pick_device

    if args.config is None and args.tasks is None:
        raise UserError("--config is required to evaluate held-out loss (or pass --tasks)")
    cfg = runconfig.load(args.config, args.set) if args.config is not None else None
    entries = _task_entries(args, cfg)
    for name in args.domains or []:
        if cfg is None or name not in cfg.domains:
            raise UserError(
                f"--domains {name}: not declared in {args.config} "
                f"({', '.join(cfg.domains) if cfg else 'no --config'})"
            )
    path = Path(args.checkpoint)
    trust = cfg.model.trust_remote_code if cfg is not None else False
    if (path / "config.json").is_file() and not checkpoint.is_complete(path):
        model, model_dir = hf.load_hf_dir(path, trust, "CHECKPOINT"), path
    else:
        model_dir = hf.resolve_checkpoint_dir(path, "CHECKPOINT")
        model = hf.load_checkpoint_model(model_dir, trust, "CHECKPOINT")
    device = pick_device(cfg.train.device if cfg is not None else "auto", 0)
    model.to(device=device, dtype=torch.float32)  # type: ignore[call-arg]  # see model.hf
    if entries is None or args.domains:
        assert cfg is not None
        _heldout(cfg, model, device, args)
    if entries is not None:
        _tasks(cfg, entries, model, model_dir, args)
    return 0


def _task_entries(args: argparse.Namespace, cfg: Config | None) -> list[TaskSection] | None:
    """What `--tasks` asks for (None without `--tasks`)."""
    from rewarm.config import TaskSection
    from rewarm.errors import UserError
    from rewarm.tasks import spec

    if args.tasks is None:
        return None
    if args.num_fewshot < 0 or args.limit < 0:
        raise UserError("--num-fewshot and --limit must be >= 0")
    if not args.tasks:
        if cfg is None or not cfg.eval.tasks:
            raise UserError("--tasks without names evaluates eval.tasks of --config: none given")
        return list(cfg.eval.tasks)
    entries = [
        TaskSection(task=t, num_fewshot=args.num_fewshot, limit=args.limit) for t in args.tasks
    ]
    for e in entries:
        b = spec.parse_builtin(e.task, f"--tasks {e.task}")
        if b is not None and (cfg is None or b.domain not in cfg.domains):
            raise UserError(
                f"--tasks {e.task}: built-in tasks need --config declaring {b.domain!r}"
            )
        if spec.is_yaml(e.task) and not Path(e.task).is_file():
            raise UserError(f"--tasks {e.task}: no such task file")
    return entries


def _heldout(cfg: Config, model: torch.nn.Module, device: torch.device, args: Any) -> None:
    from rewarm.data import prepare, tokenizer
    from rewarm.evaluation.evaluator import build_evaluator
    from rewarm.model import hf

    domains = prepare.prepare(cfg, progress=False)
    hf.check_vocab(model, tokenizer.load_tokenizer(cfg).vocab_size, "CHECKPOINT")
    # One process: the training micro-batch of a single rank (world size 1).
    evaluator = build_evaluator(cfg, domains, device=device, names=args.domains)
    results = evaluator.evaluate(model)
    if args.json:
        for r in results:
            row = {"domain": r.domain, "loss": r.loss, "bits_per_byte": r.bits_per_byte}
            print(json.dumps({**row, "tokens": r.tokens}))
        return
    width = max(6, *(len(r.domain) for r in results))
    print(f"{'domain':<{width}}  {'loss':>8}  {'bits/byte':>9}  {'tokens':>8}")
    for r in results:
        print(f"{r.domain:<{width}}  {r.loss:>8.4f}  {r.bits_per_byte:>9.4f}  {r.tokens:>8}")


def _hf_tokenizer(model_dir: Path, cfg: Config | None) -> Any:
    """The model's own tokenizer: its directory's (a checkpoint's `tokenizer/`), else
    the config's."""
    from rewarm import checkpoint
    from rewarm.errors import UserError

    for d in (model_dir / checkpoint.TOKENIZER, model_dir):
        if (d / "tokenizer.json").is_file() or (d / "tokenizer_config.json").is_file():
            from transformers import AutoTokenizer

            return AutoTokenizer.from_pretrained(str(d), local_files_only=True)
    if cfg is None:
        raise UserError(f"CHECKPOINT: {model_dir} holds no tokenizer; pass --config")
    from rewarm.data import tokenizer

    return tokenizer.load_tokenizer(cfg).to_hf()


def _tasks(
    cfg: Config | None,
    entries: list[TaskSection],
    model: torch.nn.Module,
    model_dir: Path,
    args: Any,
) -> None:
    from rewarm import extras

    extras.require("lm_eval", "--tasks")
    from rewarm.config import EvalSection
    from rewarm.data import prepare, tokenizer
    from rewarm.tasks import harness, spec

    domains = tok = None
    if cfg is not None and any(spec.parse_builtin(e.task, "--tasks") for e in entries):
        domains = prepare.prepare(cfg, progress=False)
        tok = tokenizer.load_tokenizer(cfg)
    where = "--tasks" if args.tasks else f"{cfg.source if cfg else ''}: eval.tasks"
    resolved = harness.resolve(entries, where, cfg=cfg, domains=domains, tok=tok)
    batch = (cfg.eval if cfg is not None else EvalSection()).task_batch_size
    evaluator = harness.TaskEvaluator(
        resolved, _hf_tokenizer(model_dir, cfg), batch_size=batch, quiet=False
    )
    results = evaluator.evaluate(model)
    if args.json:
        for r in results:
            print(json.dumps(asdict(r)))
        return
    width = max(4, *(len(r.task) for r in results)) if results else 4
    print(f"{'task':<{width}}  {'metric':<10}  {'value':>8}  {'stderr':>8}  {'items':>6}")
    for r in results:
        err = "n/a" if r.stderr is None else f"{r.stderr:.4f}"
        n = "n/a" if r.samples is None else str(r.samples)
        print(f"{r.task:<{width}}  {r.metric:<10}  {r.value:>8.4f}  {err:>8}  {n:>6}")
