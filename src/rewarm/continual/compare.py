"""Continual runs against a re-training baseline: loss difference and compute ratio.

SCIENCE.md section 4, "Versus re-training" (the comparison of Ibrahim et al.
2024, "Simple and Scalable Strategies to Continually Pre-train LLMs"): for each
continual run and each domain both runs evaluate, the final loss difference
continual - retrain (negative: the continual run is better), and the compute
ratio: tokens (and FLOPs) the continual run spent since the shared checkpoint
over the tokens (FLOPs) of re-training from scratch on all the data.

"Since the shared checkpoint":
- a branch (`run.branch_from`, its log has a `run` "branch" record): its log holds
  its parent's records up to the checkpoint; the tokens after the branch point are
  new, the tokens up to it are shared (plus, if the parent itself started from a
  `checkpoint:` init, that checkpoint's tokens);
- a run whose config has `model.init = "checkpoint:PATH"` branched from a
  checkpoint; everything it trained is new compute, and the checkpoint's own
  tokens (the shared stage 1) are counted once, in `shared_tokens`: the tokens
  the checkpoint says it was trained on (`rewarm.checkpoint_state.trained_tokens`)
  while the checkpoint is still there, else the tokens its parent run logged at
  the checkpoint's step when the parent is among the runs compared;
- any other run with several stages: its first stage plays the shared
  checkpoint, so the new compute is the tokens of stages 2..K;
- a one-stage run: all of it.

Stages here are the ones that train: the starting model's stage 0 of a run from a
trained model (`Timeline.has_initial`) has no tokens and is not counted as a stage.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rewarm import checkpoint_state
from rewarm.continual.metrics import Compute, loss_matrix
from rewarm.continual.timeline import Timeline
from rewarm.errors import UserError


@dataclass(frozen=True, kw_only=True)
class RunView:
    """What the comparison needs of one run."""

    name: str
    path: Path
    timeline: Timeline
    compute: Compute
    config: dict[str, Any]
    step_tokens: dict[int, int]
    """Training tokens at each logged step (to place a parent's checkpoint)."""
    branch_tokens: int | None = None
    """For a branch: training tokens at its parent's checkpoint (the shared part)."""

    @property
    def init(self) -> str:
        model = self.config.get("model", {})
        return str(model.get("init", "scratch")) if isinstance(model, dict) else "scratch"


@dataclass(frozen=True, kw_only=True)
class Comparison:
    """One continual run against the baseline."""

    run: str
    baseline: str
    loss_diff: dict[str, float]
    """Final loss continual - retrain per shared domain (nats; < 0: continual better)."""
    bpb_diff: dict[str, float]
    mean_loss_diff: float | None
    tokens_since_checkpoint: int
    shared_tokens: int | None
    """Tokens of the shared checkpoint (stage 1), counted once; None if unknown."""
    baseline_tokens: int
    token_ratio: float | None
    flops_ratio: float | None
    total_ratio: float | None
    """(shared_tokens + tokens_since_checkpoint) / baseline tokens."""


def final_losses(tl: Timeline, field: str = "loss") -> dict[str, float]:
    """Each domain's loss at the end of the last stage, R[K][i] (NaN cells left out)."""
    r = loss_matrix(tl, field)
    last = r.values[-1] if r.values.size else []
    return {d: float(v) for d, v in zip(r.domains, last, strict=False) if not math.isnan(v)}


def _trained(view: RunView) -> set[str]:
    return {d for s in view.timeline.trained_stages for d in s.domains}


def detect_baseline(views: list[RunView], explicit: str | None = None) -> int | None:
    """Index of the re-training baseline among `views`, or None.

    `explicit` (`--baseline`) names a run by name or path. Otherwise a run whose
    name contains "retrain", else the one run with a single stage whose mix
    covers every domain the other runs train. Two candidates are an error.
    """
    if explicit is not None:
        want = Path(explicit).resolve()
        for i, v in enumerate(views):
            if v.name == explicit or v.path.resolve() == want:
                return i
        raise UserError(f"--baseline {explicit}: not one of the runs given")
    if len(views) < 2:
        return None
    named = [i for i, v in enumerate(views) if "retrain" in v.name.lower()]
    if len(named) > 1:
        names = ", ".join(views[i].name for i in named)
        raise UserError(
            f"several runs look like the re-training baseline ({names}): pass --baseline"
        )
    if named:
        return named[0]
    found = []
    for i, v in enumerate(views):
        others = set().union(*(_trained(o) for j, o in enumerate(views) if j != i))
        if len(v.timeline.trained_stages) == 1 and others and others <= _trained(v):
            found.append(i)
    if len(found) > 1:
        names = ", ".join(views[i].name for i in found)
        raise UserError(
            f"several runs look like the re-training baseline ({names}): pass --baseline"
        )
    return found[0] if found else None


def _checkpoint_tokens(path_text: str, views: list[RunView]) -> int | None:
    """Training tokens of the checkpoint at `path_text`; None if unknown."""
    ckpt = Path(path_text)
    if (ckpt / checkpoint_state.STATE).is_file():
        try:
            return checkpoint_state.trained_tokens(ckpt)
        except UserError:  # malformed: the parent's log may still know
            pass
    step, resolved = checkpoint_state.step_of(ckpt), ckpt.resolve()
    for v in views:
        root = v.path.resolve()
        if step is not None and root in resolved.parents and step in v.step_tokens:
            return v.step_tokens[step]
    return None


def new_compute(view: RunView, views: list[RunView]) -> tuple[int, int | None]:
    """(tokens since the shared checkpoint, tokens of the shared checkpoint)."""
    by_stage = view.compute.tokens_by_stage
    if view.timeline.has_initial:
        by_stage = by_stage[1:]
    init_tokens: int | None = 0
    if view.init.startswith("checkpoint:"):
        init_tokens = _checkpoint_tokens(view.init.split(":", 1)[1], views)
    if view.branch_tokens is not None:
        shared = None if init_tokens is None else init_tokens + view.branch_tokens
        return view.compute.tokens - view.branch_tokens, shared
    if view.init.startswith("checkpoint:"):
        return view.compute.tokens, init_tokens
    if len(by_stage) >= 2:
        return int(sum(by_stage[1:])), int(by_stage[0])
    return view.compute.tokens, 0


def compare(view: RunView, base: RunView, views: list[RunView]) -> Comparison:
    """Loss difference and compute ratio of `view` against the baseline `base`."""
    mine, theirs = final_losses(view.timeline), final_losses(base.timeline)
    shared = [d for d in mine if d in theirs]
    diff = {d: mine[d] - theirs[d] for d in shared}
    mine_b, theirs_b = (final_losses(x.timeline, "bits_per_byte") for x in (view, base))
    bpb = {d: mine_b[d] - theirs_b[d] for d in shared if d in mine_b and d in theirs_b}
    since, shared_tokens = new_compute(view, views)
    base_tokens = base.compute.tokens
    ratio = since / base_tokens if base_tokens else None
    fv, fb = view.compute.flops_per_token, base.compute.flops_per_token
    flops_ratio = since * fv / (base_tokens * fb) if (fv and fb and base_tokens) else None
    total = None
    if shared_tokens is not None and base_tokens:
        total = (shared_tokens + since) / base_tokens
    return Comparison(
        run=view.name,
        baseline=base.name,
        loss_diff=diff,
        bpb_diff=bpb,
        mean_loss_diff=sum(diff.values()) / len(diff) if diff else None,
        tokens_since_checkpoint=since,
        shared_tokens=shared_tokens,
        baseline_tokens=base_tokens,
        token_ratio=ratio,
        flops_ratio=flops_ratio,
        total_ratio=total,
    )
