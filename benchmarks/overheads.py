"""Where a rewarm training run's wall time goes besides the optimizer step.

    python benchmarks/overheads.py [--quick] [--preset llama-small]

One real run of `rewarm.train.trainer.train` (two stages, replay in stage 2,
periodic evaluation and checkpoints), read back from its own run log: the trainer
charges its loop's wall time to phases and reports them (docs/training.md, "Where
the time goes"), each `train` record the seconds since the previous one (every step
is logged here, so one record is one step) and the `run` "end" record the totals:

| phase      | what the trainer charges to it                                       |
| ---------- | -------------------------------------------------------------------- |
| data       | drawing the batch from the sampler, moving it to the device          |
| step       | setting the LR, forward, backward, clipping, the AdamW update        |
| eval       | held-out evaluation of every domain (`eval.tokens_per_domain`)       |
| checkpoint | gathering the state and `checkpoint.save`                            |
| log        | writing records, the progress bar                                    |
| other      | the rest of the loop (bookkeeping)                                   |

Per-evaluation and per-checkpoint seconds are the `eval` / `checkpoint` seconds of
the intervals that hold one (at most one of each per step), plus the last stage's
end, after the last `train` record (the `run` "end" total minus the intervals).

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
from typing import Any

import common
import workload

DESIGN_EVAL_EVERY = 65536  # eval.every_tokens in DESIGN.md's example config (information)
TARGET_DATA = 0.01
TARGET_EVAL = 0.05
TARGET_CKPT_STEPS = 2.0
PHASES = ("data", "step", "eval", "checkpoint", "log", "other")


def _events(per_step: list[float], total: float) -> list[float]:
    """Seconds of each event of a phase that happens at most once per step: the
    intervals that hold one, then what the run's total has beyond them (the tail)."""
    events = [x for x in per_step if x > 0]
    tail = total - sum(per_step)
    return [*events, tail] if tail > 1e-6 else events


def measured_run(args: argparse.Namespace) -> dict[str, Any]:
    from rewarm.config import EvalSection, config_from_dict, eval_interval
    from rewarm.runlog import RunEnd, read_run
    from rewarm.train import trainer

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
    assert cfg.train.log_every_steps == 1  # one train record per step
    # The interval a user gets by leaving eval.every_tokens out: same domains and batch.
    default_every = eval_interval(config_from_dict({**raw, "eval": {}}, source="overheads.py"))
    t0 = time.perf_counter()
    trainer.train(cfg, progress=False)
    wall = time.perf_counter() - t0
    log = read_run(cfg.run_dir)
    end = log.events[-1]
    assert isinstance(end, RunEnd) and end.seconds is not None, "the run did not finish"
    intervals = [t.seconds for t in log.trains if t.seconds is not None]
    per_step = {p: [getattr(s, p) for s in intervals] for p in PHASES}
    totals = {p: getattr(end.seconds, p) for p in PHASES}
    events = {p: _events(per_step[p], totals[p]) for p in ("eval", "checkpoint")}
    assert len(events["eval"]) == end.evaluations, (events["eval"], end.evaluations)
    assert len(events["checkpoint"]) == end.checkpoints, (events["checkpoint"], end.checkpoints)
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
        "startup_s": end.startup_seconds,
        "loop_s": end.seconds.total,
        "totals_s": totals,
        "per_step_s": {p: per_step[p] for p in ("data", "step", "log")},
        "events_s": events,
        "eval_tokens_per_domain": eval_default.tokens_per_domain,
        "eval_every_tokens_default": eval_default.every_tokens,
        "eval_every_tokens_resolved": default_every,
        "domains": len(cfg.domains),
        "checkpoint_mb": ckpt_mb,
    }


def summarise(
    res: dict[str, Any], args: argparse.Namespace
) -> tuple[list[list[Any]], list[common.Figure]]:
    totals, loop_wall = res["totals_s"], res["loop_s"]
    steps = res["per_step_s"]["step"]
    # The first steps of a run pay one-off costs (allocator growth, thread pools).
    steady = steps[2:] if len(steps) > 4 else steps
    t_step = common.median(steady)
    t_data = common.median(res["per_step_s"]["data"])
    t_eval = common.median(res["events_s"]["eval"])
    t_ckpt = common.median(res["events_s"]["checkpoint"])
    rows = []
    for phase in ("data", "step", "eval", "checkpoint", "log", "other"):
        xs = res["per_step_s"].get(phase) or res["events_s"].get(phase) or []
        rows.append(
            [phase, len(xs) or "", totals[phase], common.median(xs) if xs else "",
             totals[phase] / loop_wall]
        )  # fmt: skip
    rows.append(["(loop wall)", "", loop_wall, "", 1.0])
    rows.append(["startup", 1, res["startup_s"], res["startup_s"], float("nan")])
    rows.append(["(train call, unaccounted)", "", res["wall_s"] - loop_wall - res["startup_s"],
                 "", float("nan")])  # fmt: skip

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
            totals["eval"] / loop_wall,
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
            totals["log"] / max(len(steps), 1) / t_step,
            "",
            note="records (every step logged) and the progress bar",
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
    res = measured_run(args)
    rows, figures = summarise(res, args)
    print(common.table(rows, ["phase", "events", "total s", "median s", "share of loop wall"]))
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
