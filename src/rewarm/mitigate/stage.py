"""One stage's mitigations at training time: average, MER and the end-of-stage merge.

The trainer builds a `StageMitigation` when a stage begins (`for_stage`) or restores
it from a checkpoint (`restore`) and calls it at four points: `start` (the stage's
first weights), `after_step` (snapshots and Reptile steps when the stage's tokens
cross their interval), `side_weights` (what to evaluate besides the trained model) and
`finish` (the stage's end: the average or the merge replaces the trained weights if
asked). `save` writes its tensors into a checkpoint directory as
`mitigation.safetensors` (full tensors, the stage and counters in the metadata; its
size and SHA-256 in the checkpoint's `checksums.json`, checked before it is read), so
a resumed run continues bit for bit.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from rewarm import checkpoint
from rewarm.config import Config
from rewarm.errors import UserError
from rewarm.mitigate import options as specs
from rewarm.mitigate.averaging import WeightAverage
from rewarm.mitigate.mer import Reptile, interpolate
from rewarm.mitigate.tensors import Weights, assign, full, sharded_like, snapshot

FILE = checkpoint.MITIGATION
"""A checkpoint's mitigation state (absent when its stage has none)."""
TRAINED = "trained"
"""`eval` records' `weights` for the trained model before `finish` replaced it."""


@dataclass
class StageMitigation:
    stage: int
    average: WeightAverage | None
    reptile: Reptile | None
    mer: specs.MerSpec | None
    merge: specs.MergeSpec | None
    base: Weights | None = None
    """The stage's first weights (kept for `merge` only)."""

    @property
    def replaces(self) -> bool:
        """`finish` hands on other weights than the trained ones."""
        return self.merge is not None or (
            self.average is not None and self.average.spec.apply_at_end
        )

    def start(self, model: torch.nn.Module) -> None:
        """The stage's first weights: snapshot 0, the first Reptile anchor, the merge base."""
        if self.average is not None:
            self.average.observe(model)
        if self.reptile is not None:
            self.reptile.start(model)
        if self.merge is not None:
            self.base = snapshot(model)

    def after_step(self, model: torch.nn.Module, stage_tokens: int, step_tokens: int) -> None:
        """After an optimizer step that brought the stage to `stage_tokens`: a Reptile step,
        then a snapshot (of the weights training goes on from), when their interval is crossed."""
        mer, avg = self.mer, self.average
        reptile = self.reptile
        if (
            mer is not None
            and reptile is not None
            and _crossed(stage_tokens, step_tokens, mer.every_tokens)
        ):
            reptile.step(model)
        if avg is not None and _crossed(stage_tokens, step_tokens, avg.spec.every_tokens):
            avg.observe(model)

    def side_weights(self) -> Iterator[tuple[str, Weights | None]]:
        """(label, weights) to evaluate besides the trained model; None = the same weights
        as the model (an average of its one first snapshot)."""
        if self.average is not None:
            avg = self.average
            yield avg.spec.label, None if avg.trivial else avg.averaged()

    def finish(self, model: torch.nn.Module) -> None:
        """The stage's end: put the average or the merge in place when asked."""
        if self.average is not None and self.average.spec.apply_at_end:
            if not self.average.trivial:
                assign(model, self.average.averaged())
        elif self.merge is not None and self.base is not None:
            interpolate(model, self.base, self.merge.weight)

    # -- checkpoints ---------------------------------------------------------------

    def _groups(self) -> dict[str, Weights]:
        groups = dict(self.average.tensors()) if self.average is not None else {}
        if self.reptile is not None and self.reptile.anchor is not None:
            groups["anchor"] = self.reptile.anchor
        if self.base is not None:
            groups["base"] = self.base
        return groups

    def full_tensors(self, model: torch.nn.Module) -> dict[str, torch.Tensor]:
        """Everything to save, unsharded on the CPU (a collective under FSDP2)."""
        return {
            f"{group}/{name}": t
            for group, weights in self._groups().items()
            for name, t in full(weights, model).items()
        }

    def meta(self) -> dict[str, int]:
        return {
            "stage": self.stage,
            "updates": self.average.updates if self.average is not None else 0,
            "reptile_steps": self.reptile.steps if self.reptile is not None else 0,
        }


def for_stage(cfg: Config, index: int) -> StageMitigation | None:
    """The mitigations of stage `index` (None when it has none)."""
    st, batch = cfg.stages[index], cfg.train.batch_tokens
    where = f"{cfg.source}: stages[{index}]"
    avg = specs.average_spec(st.average, batch, f"{where}.average")
    mer = specs.mer_spec(st.mer, batch, f"{where}.mer")
    merge = specs.merge_spec(st.merge, f"{where}.merge")
    if avg is None and mer is None and merge is None:
        return None
    return StageMitigation(
        stage=index,
        average=WeightAverage(avg) if avg is not None else None,
        reptile=Reptile(mer.beta) if mer is not None else None,
        mer=mer,
        merge=merge,
    )


def save(directory: Path, tensors: dict[str, torch.Tensor], meta: dict[str, int]) -> None:
    """Write `mitigation.safetensors` into a checkpoint directory (before its state.json)."""
    save_file(tensors, str(directory / FILE), metadata={"rewarm": json.dumps(meta)})


def restore(
    cfg: Config, index: int, model: torch.nn.Module, checkpoint_dir: Path | None
) -> StageMitigation | None:
    """Stage `index`'s mitigations as saved in `checkpoint_dir` (mid-stage resume).

    A stage whose checkpoint holds no state for it (its mitigation was added on resume)
    starts from the current weights. Every rank calls this (shards are scattered).
    """
    m = for_stage(cfg, index)
    if m is None:
        return None
    path = checkpoint_dir / FILE if checkpoint_dir is not None else None
    if path is None or not path.is_file():
        m.start(model)
        return m
    from safetensors import safe_open

    checkpoint.verify(path.parent, FILE)  # size and SHA-256 from checksums.json
    with safe_open(str(path), framework="pt") as f:
        meta = json.loads((f.metadata() or {}).get("rewarm", "{}"))
    if meta.get("stage") != index:
        m.start(model)
        return m
    groups: dict[str, dict[str, torch.Tensor]] = {}
    for key, t in load_file(str(path)).items():
        group, name = key.split("/", 1)
        groups.setdefault(group, {})[name] = t
    try:
        laid = {g: sharded_like(w, model, str(path)) for g, w in groups.items()}
    except KeyError as err:
        raise UserError(f"{err.args[0]} (the model differs from the one saved)") from None
    if m.average is not None:
        m.average.load(
            {g: w for g, w in laid.items() if g.startswith(("window", "ema"))},
            int(meta.get("updates", 0)),
        )
    if m.reptile is not None:
        m.reptile.anchor = laid.get("anchor")
        m.reptile.steps = int(meta.get("reptile_steps", 0))
        if m.reptile.anchor is None:
            m.reptile.start(model)
    if m.merge is not None:
        m.base = laid.get("base") or snapshot(model)
    return m


def _crossed(tokens: int, step_tokens: int, every: int) -> bool:
    """Did the last step cross a multiple of `every` tokens?"""
    return every > 0 and tokens // every > (tokens - step_tokens) // every
