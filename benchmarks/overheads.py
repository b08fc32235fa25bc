"""Where a rewarm training run's wall time goes besides the optimizer step.

    python benchmarks/overheads.py [--quick] [--preset llama-small]

One real run of `rewarm.train.trainer.train` (two stages, replay in stage 2,
periodic evaluation and checkpoints) with the trainer's own functions wrapped by
timers from outside (the trainer has no per-component timers of its own):

| component     | wrapped callable                                              |
| ------------- | ------------------------------------------------------------- |
| data loading  | `MixtureSampler.next_batch` + `trainer._to_device`            |
| step          | `trainer.train_step` (forward, backward, clip, AdamW)         |
| evaluation    | `Evaluator.evaluate` (all domains, `eval.tokens_per_domain`)  |
| checkpoint    | `trainer.save_checkpoint` (state gather + `checkpoint.save`)  |
| logging       | `MetricsLog.write` + `Progress.update`                        |
| LR            | `trainer.apply_lr`                                            |

Figures and targets (issue 8):

- data loading per step / step time <= 1%;
- a checkpoint save <= 2 step times (llama-small);
- evaluation share of wall time <= 5% at the default interval: `eval.every_tokens =
  "auto"`, resolved by `rewarm.config.eval_interval` for this run's domains and the
  default `eval.tokens_per_domain` (10 x 2 x 16384 = 327,680 tokens, 40 steps of
  `llama-small`). A run long enough to cross it several times would take minutes
  per interval, so the share is computed from the measured cost of one evaluation
  and the measured median step: share = t_eval / (t_eval + steps_per_interval *
  t_step). The share at the design's example interval (65,536 tokens), the share
  measured in the run itself (evaluating every few steps) and the shortest interval
  meeting 5% are printed alongside.
"""

from __future__ import annotations

import argparse
import math
import shutil
import sys
import time
from collections import defaultdict
from typing import Any

import common
import workload

DESIGN_EVAL_EVERY = 65536  # eval.every_tokens in DESIGN.md's example config (information)
TARGET_DATA = 0.01
TARGET_EVAL = 0.05
TARGET_CKPT_STEPS = 2.0


class Timers:
    """Wraps callables in place and records the wall seconds of every call."""

    def __init__(self) -> None:
        self.calls: dict[str, list[float]] = defaultdict(list)
        self._undo: list[tuple[Any, str, Any]] = []

    def wrap(self, owner: Any, attr: str, key: str) -> None:
        original = getattr(owner, attr)
        calls = self.calls[key]

        def timed(*args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                calls.append(time.perf_counter() - t0)

        self._undo.append((owner, attr, original))
        setattr(owner, attr, timed)

    def restore(self) -> None:
        for owner, attr, original in reversed(self._undo):
            setattr(owner, attr, original)
        self._undo.clear()

    def total(self, key: str) -> float:
        return sum(self.calls.get(key, []))


def instrumented_run(args: argparse.Namespace) -> dict[str, Any]:
    from rewarm.config import EvalSection, config_from_dict, eval_interval
    from rewarm.data import mixture
    from rewarm.evaluation import evaluator
    from rewarm.train import records, trainer

    eval_default = EvalSection()
    out_dir = workload.WORK_DIR / "runs"
    name = f"overheads-{args.preset}"
    shutil.rmtree(out_dir / name, ignore_errors=True)
    raw = workload.rewarm_config(
        name=name,
        preset=args.preset,
        seq_len=args.seq_len,
        batch_tokens=args.batch_tokens,
        stage1_steps=args.stage_steps,
        stage2_steps=args.stage_steps,
        tokenizer=args.tokenizer,
        out_dir=out_dir,
        eval_every_tokens=args.eval_every_steps * args.batch_tokens,
        eval_tokens=eval_default.tokens_per_domain,
        checkpoint_every_tokens=args.ckpt_every_steps * args.batch_tokens,
    )
    cfg = config_from_dict(raw, source="overheads.py")
    # The interval a user gets by leaving eval.every_tokens out: same domains and batch.
    default_every = eval_interval(config_from_dict({**raw, "eval": {}}, source="overheads.py"))
    timers = Timers()
    timers.wrap(trainer, "open_session", "startup")
    timers.wrap(mixture.MixtureSampler, "next_batch", "data: next_batch")
    timers.wrap(trainer, "_to_device", "data: to tensor")
    timers.wrap(trainer, "train_step", "step")
    timers.wrap(trainer, "apply_lr", "LR")
    timers.wrap(evaluator.Evaluator, "evaluate", "evaluation")
    timers.wrap(trainer, "save_checkpoint", "checkpoint")
    timers.wrap(records.MetricsLog, "write", "logging: metrics.jsonl")
    timers.wrap(records.Progress, "update", "logging: progress")
    t0 = time.perf_counter()
    try:
        trainer.train(cfg, progress=False)
    finally:
        timers.restore()
    wall = time.perf_counter() - t0
    ckpt_dir = cfg.run_dir / "checkpoints"
    ckpt_mb = max(
        (
            sum(f.stat().st_size for f in d.rglob("*") if f.is_file()) / 2**20
            for d in ckpt_dir.glob("step_*")
        ),
        default=float("nan"),
    )
    shutil.rmtree(cfg.run_dir, ignore_errors=True)
    return {
        "wall_s": wall,
        "calls": dict(timers.calls),
        "eval_tokens_per_domain": eval_default.tokens_per_domain,
        "eval_every_tokens_default": eval_default.every_tokens,
        "eval_every_tokens_resolved": default_every,
        "domains": len(cfg.domains),
        "checkpoint_mb": ckpt_mb,
    }


def summarise(
    res: dict[str, Any], args: argparse.Namespace
) -> tuple[list[list[Any]], list[common.Figure]]:
    calls = res["calls"]
    wall = res["wall_s"]
    loop_wall = wall - sum(calls.get("startup", []))
    steps = calls["step"]
    # The first steps of a run pay one-off costs (allocator growth, thread pools).
    steady = steps[2:] if len(steps) > 4 else steps
    t_step = common.median(steady)
    data_per_step = [
        a + b for a, b in zip(calls["data: next_batch"], calls["data: to tensor"], strict=False)
    ]
    t_data = common.median(data_per_step)
    t_eval = common.median(calls["evaluation"])
    t_ckpt = common.median(calls["checkpoint"])
    rows = []
    for key in sorted(calls):
        xs = calls[key]
        share = sum(xs) / loop_wall if key != "startup" else float("nan")
        rows.append([key, len(xs), sum(xs), common.median(xs), share])
    accounted = sum(sum(v) for k, v in calls.items() if k != "startup")
    rows.append(
        [
            "(unaccounted loop time)",
            "",
            loop_wall - accounted,
            "",
            (loop_wall - accounted) / loop_wall,
        ]
    )
    rows.append(["(loop wall)", "", loop_wall, "", 1.0])

    def share_at(every_tokens: int) -> float:
        return t_eval / (t_eval + every_tokens / args.batch_tokens * t_step)

    default_every = res["eval_every_tokens_resolved"]
    # Shortest interval (in tokens) keeping the share at or under the target.
    breakeven = t_eval * (1 - TARGET_EVAL) / TARGET_EVAL / t_step * args.batch_tokens
    figures = [
        common.Figure(
            "data loading / step time",
            t_data / t_step,
            "",
            "<=",
            TARGET_DATA,
            f"{t_data * 1e3:.2f} ms per batch vs {t_step:.2f} s per step",
        ),
        common.Figure(
            f"checkpoint save / step time ({args.preset})",
            t_ckpt / t_step,
            "steps",
            "<=",
            TARGET_CKPT_STEPS,
            f"{t_ckpt:.2f} s per save, {res['checkpoint_mb']:.0f} MiB",
        ),
        common.Figure(
            "evaluation share at the default interval",
            share_at(default_every),
            "",
            "<=",
            TARGET_EVAL,
            f'"auto" = every {default_every:,} tokens; {t_eval:.2f} s per eval of '
            f"{res['domains']} x {res['eval_tokens_per_domain']} tokens",
        ),
        common.Figure(
            f"evaluation share at every_tokens={DESIGN_EVAL_EVERY}",
            share_at(DESIGN_EVAL_EVERY),
            "",
            note="DESIGN.md's example interval",
        ),
        common.Figure(
            "evaluation share in this run",
            sum(calls["evaluation"]) / loop_wall,
            "",
            note=f"every {args.eval_every_steps} steps + stage starts/ends",
        ),
        common.Figure(
            "shortest eval interval for <= 5%",
            float(math.ceil(breakeven)),
            "tokens",
            note="with the default tokens_per_domain",
        ),
        common.Figure(
            "logging / step time",
            (sum(calls["logging: metrics.jsonl"]) + sum(calls["logging: progress"]))
            / max(len(steps), 1)
            / t_step,
            "",
        ),
    ]
    return rows, figures


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--preset", default="llama-small")
    p.add_argument("--seq-len", type=int, default=256)
    p.add_argument("--batch-tokens", type=int, default=8192)
    p.add_argument("--stage-steps", type=int, default=12)
    p.add_argument("--eval-every-steps", type=int, default=8)
    p.add_argument("--ckpt-every-steps", type=int, default=6)
    p.add_argument("--tokenizer", default="bpe")
    args = p.parse_args(argv)
    if args.quick:
        args.stage_steps, args.eval_every_steps, args.ckpt_every_steps = 5, 4, 3
    print(
        f"overheads: {args.preset}, 2 stages x {args.stage_steps} steps of {args.batch_tokens} "
        f"tokens, eval every {args.eval_every_steps} steps, checkpoint every {args.ckpt_every_steps}"
    )
    res = instrumented_run(args)
    rows, figures = summarise(res, args)
    print(common.table(rows, ["component", "calls", "total s", "median s", "share of loop wall"]))
    print(common.figures_table(figures))
    path = common.write_json(
        "overheads",
        {
            "machine": common.machine_info(),
            "argv": sys.argv,
            "settings": vars(args),
            **res,
            "figures": figures,
        },
    )
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
