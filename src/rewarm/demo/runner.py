"""Run the demo's arms in order, sharing data, tokenizer and the stage-1 model.

Sharing, and why it is exact:

- Data and tokenizer. Every arm declares the same domains, tokenizer and held-out
  settings under one `out_dir`, so `prepare` builds the shards and the BPE once
  (`<out>/data`) and every later arm reuses them.
- Stage 1. `naive`, `rewarm` and `rewarm+replay` have the same stage 1 (config,
  seed, data order). The first of them that runs (the "host") trains both of its
  stages; its stage-1 end is a complete checkpoint (model, AdamW moments, sampler
  cursors, RNG, loop state), always kept. Each other branching arm gets a copy of
  that checkpoint and of the host's `metrics.jsonl` up to it, and the trainer
  resumes it with the arm's own two-stage config: from stage 2 on, the arm's own
  schedule and replay apply. So stage 1 is trained once, each arm's log holds its
  whole history (stage 1 included, as the metrics need), the re-warm starts from
  the LR in force at the end of stage 1 (`start = "previous"` needs that stage in
  the plan), and replay draws exactly the docs windows stage 1 consumed (replay
  `source = "seen"`: the restored sampler cursors). The branched log shows this
  honestly: the host's `run` start record (its config), then a `run` "resume"
  record with the arm's config and a `schedule_changed` record.
- `model.init = "checkpoint:PATH"` is not used for branching because it starts a
  one-stage run at position 0 with fresh optimizer and sampler: the re-warm would
  start from 0 and replay would need `source = "all"` (any docs window, not the
  ones stage 1 saw).
- `infinite+replay` trains its own stage 1 (its schedule differs there).

Library code: nothing here prints; `on_arm` is told when each arm starts.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from rewarm import atomic, checkpoint, runconfig, runlog
from rewarm.config import Config
from rewarm.demo import arms as arms_mod
from rewarm.demo.arms import DemoSize
from rewarm.errors import UserError

METRICS = runlog.METRICS_FILE


@dataclass(frozen=True, kw_only=True)
class ArmPlan:
    """One arm to run: its config, and the host arm it branches from (if any)."""

    arm: str
    cfg: Config
    branch_of: str | None
    """Host arm whose stage-1 checkpoint this arm continues; None: trains from scratch."""
    tokens: int
    """Training tokens the demo spends on this arm (a branch: stage 2 only)."""


def plan_arms(
    arms: Sequence[str], out_dir: Path, seed: int, size: DemoSize, *, tasks: bool = False
) -> list[ArmPlan]:
    """Configs in the canonical arm order; the first branching arm hosts stage 1. With
    `tasks`, every arm also evaluates the built-in tasks (`rewarm.demo.tasks`)."""
    unknown = [a for a in arms if a not in arms_mod.ARMS]
    if unknown:
        raise UserError(f"--arms: unknown arm {unknown[0]!r} (known: {', '.join(arms_mod.ARMS)})")
    chosen = [a for a in arms_mod.ARMS if a in arms]
    host = next((a for a in chosen if a in arms_mod.BRANCHING), None)
    plans = []
    for arm in chosen:
        raw = arms_mod.arm_config(arm, str(out_dir), seed, size)
        if tasks:
            from rewarm.demo.tasks import with_tasks

            raw = with_tasks(raw, size)
        cfg = runconfig.from_dict(raw, source=f"demo arm {arm}")
        branch = host if arm in arms_mod.BRANCHING and arm != host else None
        tokens = sum(st.tokens for st in cfg.stages) - (size.stage1_tokens if branch else 0)
        plans.append(ArmPlan(arm=arm, cfg=cfg, branch_of=branch, tokens=tokens))
    return plans


def stage_end_checkpoint(run_dir: Path, stage: int = 1) -> Path:
    """The checkpoint written when `stage` stages had ended (stage-end ones are kept)."""
    root = run_dir / "checkpoints"
    for path in sorted(root.glob("step_*")):
        if checkpoint.is_complete(path):
            state = checkpoint.read_state(path)
            if state.get("stage") == stage and state.get("stage_end"):
                return path
    raise UserError(f"{root}: no complete checkpoint at the end of stage {stage}")


def seed_branch(host_dir: Path, arm_dir: Path) -> None:
    """Give `arm_dir` the host's stage-1-end checkpoint and its log up to that point.

    Both are written atomically, the log first and `checkpoints/` (built in a
    temporary sibling, then renamed) last, so an arm counts as seeded (has
    `checkpoints/`) only once both are in place and a killed demo never leaves a
    half-seeded arm for the trainer to misread.
    """
    ckpt = stage_end_checkpoint(host_dir)
    lines = int(checkpoint.read_state(ckpt)["loop"]["metrics_lines"])
    if arm_dir.is_dir():
        atomic.remove_stale(arm_dir)  # what a killed demo left half-built
    atomic.write_bytes(arm_dir / METRICS, runlog.head(host_dir / METRICS, lines))
    with atomic.directory(arm_dir / "checkpoints") as tmp:
        shutil.copytree(ckpt, tmp / ckpt.name)
        (tmp / checkpoint.LATEST).write_text(ckpt.name + "\n", encoding="utf-8")


def _check_existing(plan: ArmPlan) -> None:
    """An existing arm directory must come from the same demo settings (then it resumes)."""
    from rewarm.train.changes import diff, previous_config

    old = previous_config(plan.cfg.run_dir)
    if old is None:
        return
    changed = diff(old.to_dict(), plan.cfg.to_dict())
    if changed:
        key = next(iter(changed))
        raise UserError(
            f"{plan.cfg.run_dir}: an earlier demo with other settings is there "
            f"({key}: {changed[key][0]!r} -> {changed[key][1]!r}); use another --out "
            "or remove that directory"
        )


def _train(cfg: Config, progress: bool) -> None:
    from rewarm.train import trainer

    # A branch resumes the host's checkpoint under its own stage-2 schedule: the trainer
    # logs that change and trains on (refusing a changed config is the CLI's job).
    trainer.train(cfg, progress=progress)


def run_arms(
    plans: Sequence[ArmPlan],
    *,
    progress: bool = True,
    on_arm: Callable[[int, ArmPlan, int, float], None] | None = None,
) -> dict[str, float]:
    """Train every arm (resuming finished or interrupted ones); seconds per arm.

    `on_arm(index, plan, tokens_done_before, seconds_elapsed)` is called as each
    arm starts (for progress lines).
    """
    by_arm = {p.arm: p for p in plans}
    seconds: dict[str, float] = {}
    done_tokens, start = 0, time.perf_counter()
    for i, plan in enumerate(plans):
        if on_arm is not None:
            on_arm(i, plan, done_tokens, time.perf_counter() - start)
        tick = time.perf_counter()
        _check_existing(plan)
        run_dir = plan.cfg.run_dir
        if plan.branch_of is not None and not (run_dir / "checkpoints").is_dir():
            seed_branch(by_arm[plan.branch_of].cfg.run_dir, run_dir)
        _train(plan.cfg, progress)
        seconds[plan.arm] = time.perf_counter() - tick
        done_tokens += plan.tokens
    return seconds
