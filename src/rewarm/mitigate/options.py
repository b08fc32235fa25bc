"""A stage's `average`, `mer` and `merge` tables: keys, defaults and checks (no torch).

`rewarm.runconfig` hands every stage's tables to `validate_stage`; the trainer reads
them through `average_spec`, `mer_spec` and `merge_spec` (defaults filled in). Lengths
are in training tokens, like every other length of a run config.

- `average = { kind, every_tokens, last, decay, shape, apply_at_end }`: a running
  average of the weights, evaluated alongside the trained model at every evaluation.
  `kind = "uniform"`: the mean of the `last` snapshots taken every `every_tokens`
  (LAWA: Kaddour 2022; Sanyal et al. 2023, k = 5); `"ema"`: an exponential moving
  average updated every `every_tokens` (default: every step) with `decay`; `"wsm"`:
  the `last` snapshots merged with weights derived from a decay `shape` (Tian et al.
  2025, `rewarm.mitigate.wsm`). `apply_at_end = true` hands the average on as the
  stage's final model (it replaces the trained weights before the stage-end
  evaluation and checkpoint); otherwise the average never feeds back into training.
- `mer = { every_tokens, beta }`: a Reptile step every k optimizer steps,
  theta <- theta_before + beta (theta_after - theta_before) (Abbes et al. 2025,
  meta-experience replay; k = 500 steps and beta = 0.1 as reported; beta = 1 is plain
  training). `every_tokens` defaults to 500 x train.batch_tokens.
- `merge = { weight }`: at the stage's end, theta <- theta_start + weight
  (theta_end - theta_start): task arithmetic against the stage's starting model
  (Ilharco et al. 2023; Branch-and-Merge, Alexandrov et al. 2024).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from rewarm.config import Config
from rewarm.errors import UserError
from rewarm.schedules.shapes import DECAY_SHAPES

AVERAGE_KINDS = ("uniform", "ema", "wsm")
AVERAGE_KEYS = ("kind", "every_tokens", "last", "decay", "shape", "apply_at_end")
MER_KEYS = ("every_tokens", "beta")
MERGE_KEYS = ("weight",)
LAST = 5
"""Snapshots in a uniform average (Sanyal et al. 2023: k = 5)."""
EMA_DECAY = 0.999
WSM_SHAPE = "1-sqrt"
"""WSM's default shape: mean (linear) and 1-sqrt merges did best in Tian et al. 2025."""
MER_STEPS = 500
MER_BETA = 0.1
"""Abbes et al. 2025: a Reptile step every k = 500 optimizer steps with beta = 0.1."""


@dataclass(frozen=True, kw_only=True)
class AverageSpec:
    kind: str
    every_tokens: int
    last: int
    decay: float
    shape: str
    apply_at_end: bool

    @property
    def label(self) -> str:
        """How the `eval` records of this average name their weights."""
        return self.kind if self.kind != "wsm" else f"wsm-{self.shape}"


@dataclass(frozen=True, kw_only=True)
class MerSpec:
    every_tokens: int
    beta: float


@dataclass(frozen=True, kw_only=True)
class MergeSpec:
    weight: float


def _number(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)


def _integer(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _unknown(table: dict[str, Any], known: tuple[str, ...], where: str) -> None:
    for key in table:
        if key not in known:
            raise UserError(f"{where}: unknown key {key!r} (known: {', '.join(known)})")


def average_spec(table: dict[str, Any], batch_tokens: int, where: str) -> AverageSpec | None:
    """The stage's average with defaults filled in (None for an empty table)."""
    if not table:
        return None
    _unknown(table, AVERAGE_KEYS, where)
    kind = table.get("kind")
    if kind not in AVERAGE_KINDS:
        raise UserError(f"{where}.kind must be one of {', '.join(AVERAGE_KINDS)}, got {kind!r}")
    every = table.get("every_tokens", batch_tokens if kind == "ema" else None)
    if every is None:
        raise UserError(f"{where}.every_tokens is required for kind = {kind!r}")
    if not _integer(every) or every < batch_tokens:
        raise UserError(
            f"{where}.every_tokens must be an integer >= train.batch_tokens ({batch_tokens}), "
            f"got {every!r}"
        )
    last = table.get("last", LAST)
    if not _integer(last) or last < 1:
        raise UserError(f"{where}.last must be an integer >= 1, got {last!r}")
    decay = table.get("decay", EMA_DECAY)
    if not _number(decay) or not 0 <= decay < 1:
        raise UserError(f"{where}.decay must be a number in [0, 1), got {decay!r}")
    shape = table.get("shape", WSM_SHAPE if kind == "wsm" else "linear")
    if shape not in DECAY_SHAPES:
        raise UserError(f"{where}.shape must be one of {', '.join(DECAY_SHAPES)}, got {shape!r}")
    apply = table.get("apply_at_end", False)
    if not isinstance(apply, bool):
        raise UserError(f"{where}.apply_at_end must be true or false, got {apply!r}")
    return AverageSpec(
        kind=kind,
        every_tokens=every,
        last=last,
        decay=float(decay),
        shape=shape,
        apply_at_end=apply,
    )


def mer_spec(table: dict[str, Any], batch_tokens: int, where: str) -> MerSpec | None:
    """The stage's MER step with defaults filled in (None for an empty table)."""
    if not table:
        return None
    _unknown(table, MER_KEYS, where)
    every = table.get("every_tokens", MER_STEPS * batch_tokens)
    if not _integer(every) or every < batch_tokens:
        raise UserError(
            f"{where}.every_tokens must be an integer >= train.batch_tokens ({batch_tokens}), "
            f"got {every!r}"
        )
    beta = table.get("beta", MER_BETA)
    if not _number(beta) or not 0 <= beta <= 1:
        raise UserError(f"{where}.beta must be a number in [0, 1], got {beta!r}")
    return MerSpec(every_tokens=every, beta=float(beta))


def merge_spec(table: dict[str, Any], where: str) -> MergeSpec | None:
    """The stage's end-of-stage merge with its start (None for an empty table)."""
    if not table:
        return None
    _unknown(table, MERGE_KEYS, where)
    if "weight" not in table:
        raise UserError(f"{where}.weight is required (1 = the trained model, 0 = the start)")
    weight = table["weight"]
    if not _number(weight):
        raise UserError(f"{where}.weight must be a number, got {weight!r}")
    return MergeSpec(weight=float(weight))


def validate_stage(cfg: Config, index: int) -> None:
    """Check stage `index`'s `average`, `mer` and `merge` tables (UserError naming the key)."""
    st, batch = cfg.stages[index], cfg.train.batch_tokens
    where = f"{cfg.source}: stages[{index}]"
    avg = average_spec(st.average, batch, f"{where}.average")
    merge = merge_spec(st.merge, f"{where}.merge")
    mer_spec(st.mer, batch, f"{where}.mer")
    if avg is not None and avg.apply_at_end and merge is not None:
        raise UserError(
            f"{where}: average.apply_at_end and merge both replace the stage's final model; "
            "choose one"
        )
