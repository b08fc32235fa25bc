"""Run the demo's arms in order, sharing data, tokenizer and the stage-1 model.

Sharing, and why it is exact:

- Data and tokenizer. Every arm declares the same domains, tokenizer, held-out
  settings and `data.dir`, so `prepare` builds the shards and the BPE once
  (`<out>/data`, shared by every seed) and every later arm reuses them.
- Stage 1. `naive`, `rewarm` and `rewarm+replay` have the same stage 1 (config,
  seed, data order). The first of them that runs (the "host") trains both of its
  stages; its stage-1 end is a complete checkpoint, always kept. Every other
  branching arm is a *branch* of it: its config sets `run.branch_from` to that
  checkpoint, and `rewarm train`'s own branching (`rewarm.train.branch`) gives it
  the host's full state (model, AdamW moments, sampler cursors, RNG, loop state)
  and log up to there, then trains the arm's own stage 2. So stage 1 is trained
  once, each arm's log holds its whole history (the host's records, a `run`
  "branch" record, then the arm's own), the re-warm starts from the LR in force at
  the end of stage 1 (`start = "previous"`), and replay draws exactly the old
  windows stage 1 consumed (`source = "seen"`: the restored sampler cursors).
- `infinite+replay` trains its own stage 1 (its schedule differs there).

Library code: nothing here prints; `on_arm` is told when each arm starts.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from rewarm import runconfig
from rewarm.config import Config
from rewarm.demo import arms as arms_mod
from rewarm.demo import mitigation_arms
from rewarm.demo.arms import Layout
from rewarm.demo.settings import DemoSettings
from rewarm.errors import UserError


@dataclass(frozen=True, kw_only=True)
class ArmPlan:
    """One arm to run: its config, and the host arm it branches from (if any)."""

    arm: str
    seed: int
    cfg: Config
    branch_of: str | None
    """Host arm whose stage-1 checkpoint this arm continues; None: trains from scratch."""
    tokens: int
    """Training tokens the demo spends on this arm (a branch: stage 2 only)."""


KNOWN: tuple[str, ...] = arms_mod.ARMS + mitigation_arms.ARMS
"""The default arms, then the optional ones (`rewarm.demo.mitigation_arms`)."""
BRANCHING: tuple[str, ...] = arms_mod.BRANCHING + mitigation_arms.ARMS


def check_arms(arms: Sequence[str]) -> list[str]:
    """The chosen arms in the canonical order; `UserError` naming an unknown one."""
    unknown = [a for a in arms if a not in KNOWN]
    if unknown:
        raise UserError(f"--arms: unknown arm {unknown[0]!r} (known: {', '.join(KNOWN)})")
    return [a for a in KNOWN if a in arms]


def plan_arms(
    arms: Sequence[str], settings: DemoSettings, where: Layout, seed: int, *, tasks: bool = False
) -> list[ArmPlan]:
    """Configs in the canonical arm order; the first branching arm hosts stage 1. With
    `tasks`, every arm also evaluates the built-in tasks (`rewarm.demo.tasks`)."""
    chosen = check_arms(arms)
    host = next((a for a in chosen if a in BRANCHING), None)
    size = settings.size
    plans = []
    for arm in chosen:
        branch = host if arm in BRANCHING and arm != host else None
        build = mitigation_arms.arm_config if arm in mitigation_arms.ARMS else arms_mod.arm_config
        raw = build(arm, where, seed, size, old=settings.old, new=settings.new, branch_of=branch)
        if tasks:
            from rewarm.demo.tasks import with_tasks

            raw = with_tasks(raw, settings)
        cfg = runconfig.from_dict(raw, source=f"demo arm {arm}")
        tokens = sum(st.tokens for st in cfg.stages) - (size.stage1_tokens if branch else 0)
        plans.append(ArmPlan(arm=arm, seed=seed, cfg=cfg, branch_of=branch, tokens=tokens))
    return plans


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

    trainer.train(cfg, progress=progress)  # a branch is seeded by the trainer itself


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
    seconds: dict[str, float] = {}
    done_tokens, start = 0, time.perf_counter()
    for i, plan in enumerate(plans):
        if on_arm is not None:
            on_arm(i, plan, done_tokens, time.perf_counter() - start)
        tick = time.perf_counter()
        _check_existing(plan)
        _train(plan.cfg, progress)
        seconds[plan.arm] = time.perf_counter() - tick
        done_tokens += plan.tokens
    return seconds
