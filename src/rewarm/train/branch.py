"""Branching: a new run continues another run's checkpoint with its full state.

`run.branch_from = "runs/base/checkpoints/step_00000192"` makes a run a *branch* of
the run that wrote that checkpoint (the parent). On the branch's first start,
`seed(cfg)` gives its run directory

- `metrics.jsonl`: the parent's records up to the checkpoint (its first
  `loop.metrics_lines` lines, verbatim), then one `run` "branch" record
  (`rewarm.runlog.Branched`: parent, checkpoint, the parent's and the branch's LR
  plan fingerprints and what differs);
- `config.resolved.toml`: the branch's config;
- `checkpoints/step_N`: the parent's checkpoint (hard links where the filesystem
  allows, else copies; nothing is ever written into a checkpoint file after it is
  renamed into place, so a link is as safe as a copy) with its `state.json`
  adapted: the log line count includes the branch record, the plan fingerprint is
  the branch's and the sampler's per-stage counters have one entry per branch stage.

The trainer then resumes that checkpoint as its own under the branch's config:
weights, AdamW moments, sampler cursors, RNG states, loop state and LR position
are the parent's at the checkpoint, bit for bit, and from there on the branch's
stages apply. Replay with `source = "seen"` draws from the cursors the parent had
reached, i.e. exactly the windows the parent trained on.

"The same up to the checkpoint" (`check`), for a checkpoint in stage s after k of
its steps (a stage-end checkpoint has s = the next stage and k = 0):

- every stage before s is the parent's in every key (its `lr` compared as the peak
  LR it resolves to, so `train.lr` may change if only later stages use it);
- if k > 0 (a checkpoint inside stage s, e.g. a WSD main run's, to branch an
  any-time cooldown from): stage s keeps its `name`, `mix`, `replay` and
  `optimizer_state`, runs at least k steps, and gives the same LR at each of the k
  steps already trained; its `tokens` and `schedule` may differ after that. Cutting
  stage s at the checkpoint (`tokens` = k x `batch_tokens`) and adding a decay stage
  is how an any-time cooldown is written;
- model, tokenizer, data split, domains (and their order), `run.seed`,
  `train.seq_len`, `train.batch_tokens`, the AdamW settings (`weight_decay`,
  `betas`, `eps`: the restored optimizer state carries them) and
  `eval.tokens_per_domain` (the carried evaluations used that sample) match.

Everything else may differ: later stages (schedule, mix, replay, optimizer_state,
LR, their number), `eval.every_tokens`, checkpointing, device and speed settings.
A difference is a `UserError` naming the key (`stages[0].mix.docs: 1.0 -> 0.5`).

Seeding is idempotent and crash-safe: a run directory with a complete checkpoint is
never seeded again; otherwise the log and config are written atomically and
`checkpoints/` last (built under a temporary name, then renamed), so a killed seed
leaves no checkpoint and the next start seeds again. The parent is only read.
"""

from __future__ import annotations

import json
import logging
import math
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rewarm import atomic, checkpoint, runconfig
from rewarm.config import Config, resolved_toml
from rewarm.config.derived import stage_steps
from rewarm.errors import UserError
from rewarm.runlog import METRICS_FILE, Branched, RunStart, count_lines, encode, head, read_records
from rewarm.schedules import StagePlan, describe_change
from rewarm.train.changes import RESOLVED, diff
from rewarm.train.session import LoopState

logger = logging.getLogger(__name__)

FIXED = (
    "model.init",
    "model.preset",
    "model.overrides",
    "tokenizer.",
    "data.heldout_fraction",
    "data.heldout_min_tokens",
    "domains.",
    "run.seed",
    "train.seq_len",
    "train.batch_tokens",
    "train.weight_decay",
    "train.betas",
    "train.eps",
    "eval.tokens_per_domain",
)
"""Keys (or prefixes) a branch keeps from its parent: they decide what the state means."""
FREE_SUFFIXES = (".max_epochs",)
"""Keys under a FIXED prefix that may still differ (a cap, not a property of the data)."""
STAGE_KEYS_IN_PROGRESS = ("name", "mix", "replay", "optimizer_state")
"""Keys of a stage the checkpoint is inside of that decided the steps already taken."""
LR_RTOL = 1e-9


@dataclass(frozen=True, kw_only=True)
class BranchPoint:
    """The parent's checkpoint a branch starts from, and what the parent ran until then."""

    checkpoint: Path
    parent: Path
    """The parent's run directory."""
    state: dict[str, Any]
    """The checkpoint's state.json."""
    loop: LoopState
    parent_cfg: Config
    """The config the parent trained with when it wrote the checkpoint."""


def _where(cfg: Config) -> str:
    return f"{cfg.source}: run.branch_from"


def _checkpoint_dir(text: str, where: str) -> Path:
    """A `step_*` directory, or the latest one under a run or `checkpoints/` directory."""
    path = Path(text)
    if checkpoint.is_complete(path):
        return path
    for root in (path / "checkpoints", path):
        found = checkpoint.latest(root) if root.is_dir() else None
        if found is not None:
            return found
    raise UserError(f"{where}: {text} is not a complete rewarm checkpoint")


def resolve(cfg: Config) -> BranchPoint:
    """Find the parent's checkpoint and the config the parent trained with up to it."""
    where = _where(cfg)
    ckpt = _checkpoint_dir(cfg.run.branch_from, where)
    if ckpt.parent.name != "checkpoints":
        raise UserError(
            f"{where}: {ckpt} is not inside a run's checkpoints/ directory; to start from "
            f'its weights alone, use model.init = "checkpoint:{ckpt}"'
        )
    parent = ckpt.parent.parent
    if parent.resolve() == cfg.run_dir.resolve():
        raise UserError(f"{where}: {ckpt} belongs to this run; a branch needs another run")
    state = checkpoint.read_state(ckpt)
    with checkpoint.malformed(ckpt, "loop state"):
        loop = LoopState.from_dict(state["loop"])
    log = parent / METRICS_FILE
    have = count_lines(log)
    if have < loop.metrics_lines:
        raise UserError(
            f"{where}: {log} has {have} complete lines, fewer than the {loop.metrics_lines} "
            f"the checkpoint {ckpt.name} was written after; the parent's log was cut or replaced"
        )
    starts = [
        r
        for r in read_records(log, kinds=("run",), lines=loop.metrics_lines)
        if isinstance(r, RunStart)
    ]
    if not starts or not starts[-1].config:
        raise UserError(f"{where}: {log} has no run start record with a config before {ckpt}")
    parent_cfg = runconfig.from_dict(starts[-1].config, source=f"{log} (parent config)")
    return BranchPoint(
        checkpoint=ckpt, parent=parent, state=state, loop=loop, parent_cfg=parent_cfg
    )


def _refuse(cfg: Config, point: BranchPoint, key: str, detail: str) -> UserError:
    return UserError(
        f"{cfg.source}: {key}: {detail}; a branch keeps what its parent trained before the "
        f"checkpoint (run.branch_from = {point.checkpoint})"
    )


def _changed(old: Any, new: Any) -> str:
    return f"{old!r} -> {new!r} (parent -> branch)"


def _fixed(key: str) -> bool:
    if any(key.endswith(s) for s in FREE_SUFFIXES):
        return False
    return any(key == p or key.startswith(p if p.endswith(".") else p + ".") for p in FIXED)


def _stage_dict(cfg: Config, i: int) -> dict[str, Any]:
    """Stage i as plain data, its `lr` the peak it resolves to (0 means train.lr)."""
    return {**cfg.to_dict()["stages"][i], "lr": cfg.stage_lr(i)}


def check(cfg: Config, point: BranchPoint) -> None:
    """Raise `UserError` naming the first key where `cfg` is not the parent's up to the
    checkpoint (see the module docstring)."""
    parent, loop = point.parent_cfg, point.loop
    mine, theirs = cfg.to_dict(), parent.to_dict()
    if list(cfg.domains) != list(parent.domains):
        raise _refuse(
            cfg,
            point,
            "domains",
            f"{list(parent.domains)} -> {list(cfg.domains)} (parent -> "
            "branch); declare the parent's domains in its order",
        )
    sections = ("run", "model", "tokenizer", "data", "domains", "train", "eval")
    for key, (old, new) in diff(
        {k: theirs[k] for k in sections}, {k: mine[k] for k in sections}
    ).items():
        if _fixed(key):
            raise _refuse(cfg, point, key, _changed(old, new))
    s, k = loop.stage, loop.stage_step
    for i in range(s):
        if i >= len(cfg.stages):
            raise _refuse(
                cfg, point, f"stages[{i}]", "missing (the parent trained it before the checkpoint)"
            )
        for key, (old, new) in diff(_stage_dict(parent, i), _stage_dict(cfg, i)).items():
            raise _refuse(cfg, point, f"stages[{i}].{key}", _changed(old, new))
    if loop.stage_started:
        _check_in_progress(cfg, point, s, k)
    elif s >= len(cfg.stages):
        raise _refuse(
            cfg,
            point,
            "stages",
            f"the branch has no stage after the checkpoint (which ends "
            f"stage {s - 1}); add the stages to train",
        )


def _check_in_progress(cfg: Config, point: BranchPoint, s: int, k: int) -> None:
    """Stage s was k steps in when the checkpoint was written: those steps must agree."""
    parent = point.parent_cfg
    if s >= len(cfg.stages):
        raise _refuse(cfg, point, f"stages[{s}]", "missing (the checkpoint is inside it)")
    old, new = _stage_dict(parent, s), _stage_dict(cfg, s)
    for key in STAGE_KEYS_IN_PROGRESS:
        for sub, (a, b) in diff({key: old[key]}, {key: new[key]}).items():
            raise _refuse(cfg, point, f"stages[{s}].{sub}", _changed(a, b))
    steps = stage_steps(cfg, s)
    batch = cfg.train.batch_tokens
    if steps < k:
        raise _refuse(
            cfg,
            point,
            f"stages[{s}].tokens",
            f"{cfg.stages[s].tokens} is shorter than the {k * batch} tokens the parent had "
            "trained in this stage at the checkpoint",
        )
    if steps == k and s + 1 >= len(cfg.stages):
        raise _refuse(
            cfg,
            point,
            "stages",
            "the branch has no step after the checkpoint; add the stages to train",
        )
    mine, theirs = StagePlan.from_config(cfg), StagePlan.from_config(parent)
    start = sum(st.tokens for st in cfg.stages[:s])
    for j in range(k):
        pos = start + j * batch
        a, b = theirs.lr(pos), mine.lr(pos)
        if not math.isclose(a, b, rel_tol=LR_RTOL, abs_tol=0.0):
            raise _refuse(
                cfg,
                point,
                f"stages[{s}].schedule",
                f"gives LR {b:.6g} at token {pos}, where the parent trained with {a:.6g}",
            )


def _branch_state(cfg: Config, point: BranchPoint, fingerprint: str) -> dict[str, Any]:
    """The parent's state.json as the branch's own checkpoint state."""
    state = json.loads(json.dumps(point.state))  # a deep copy of plain JSON
    state["loop"]["metrics_lines"] = point.loop.metrics_lines + 1  # + the branch record
    state["plan_fingerprint"] = fingerprint
    with checkpoint.malformed(point.checkpoint, "sampler state"):
        per_stage = state["sampler"]["tokens"]
        names = list(cfg.domains)
        # Counters of stages the branch does not have are zero (never reached).
        state["sampler"]["tokens"] = [
            per_stage[i] if i < len(per_stage) else dict.fromkeys(names, 0)
            for i in range(len(cfg.stages))
        ]
    return state


def seed(cfg: Config) -> Branched | None:
    """Seed the branch's run directory (see the module docstring); None when it has a
    checkpoint already (seeded before, or trained on since) or is not a branch."""
    if not cfg.run.branch_from:
        return None
    root = cfg.run_dir / "checkpoints"
    if checkpoint.latest(root) is not None:
        return None
    point = resolve(cfg)
    check(cfg, point)
    plan = StagePlan.from_config(cfg)
    old = point.state.get("plan_fingerprint")
    new = plan.fingerprint()
    record = Branched(
        step=point.loop.step,
        tokens=point.loop.tokens,
        parent=str(point.parent),
        checkpoint=str(point.checkpoint),
        parent_fingerprint=old if isinstance(old, str) else None,
        fingerprint=new,
        change=describe_change(old, plan) if isinstance(old, str) else "unknown",
    )
    state = _branch_state(cfg, point, new)
    cfg.run_dir.mkdir(parents=True, exist_ok=True)
    atomic.remove_stale(cfg.run_dir)  # what a killed seed left half-built
    lines = head(point.parent / METRICS_FILE, point.loop.metrics_lines)
    atomic.write_bytes(cfg.run_dir / METRICS_FILE, lines + (encode(record) + "\n").encode())
    atomic.write_text(cfg.run_dir / RESOLVED, resolved_toml(cfg))
    name = point.checkpoint.name
    try:
        with atomic.directory(root) as tmp:
            shutil.copytree(
                point.checkpoint,
                tmp / name,
                copy_function=checkpoint.link_or_copy,
                ignore=shutil.ignore_patterns(checkpoint.STATE),
            )
            atomic.write_json(tmp / name / checkpoint.STATE, state, sort_keys=True)
            (tmp / checkpoint.LATEST).write_text(name + "\n", encoding="utf-8")
    except FileNotFoundError as err:  # the parent pruned it while we copied
        raise UserError(
            f"{_where(cfg)}: {point.checkpoint} disappeared while it was copied ({err.filename})"
        ) from None
    logger.info(
        "rewarm train: %s branches from %s (step %d, %s tokens)%s",
        cfg.run.name,
        point.checkpoint,
        point.loop.step,
        f"{point.loop.tokens:,}",
        "; its LR plan differs after that (the branch record in metrics.jsonl says how)"
        if record.change
        else "",
    )
    return record
