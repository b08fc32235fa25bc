"""What a loss-curve law provides to the fitting code, and its fitted parameters."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

import numpy as np
from torch import Tensor

from rewarm.laws.curves import Curve


@dataclass(frozen=True)
class LawParam:
    name: str
    lo: float
    hi: float
    log: bool = False
    """Optimised as log(value) (positive scale parameters spanning decades)."""
    linear: bool = False
    """The law is linear in it, so starts solve for it by least squares."""


def pack(free: Sequence[LawParam], params: Mapping[str, float]) -> np.ndarray:
    """The optimiser's vector for `params`: each free parameter clipped to its bounds,
    in log space where `log`."""
    vals = []
    for p in free:
        v = min(max(params[p.name], p.lo), p.hi)
        vals.append(math.log(v) if p.log else v)
    return np.array(vals)


def bounds(free: Sequence[LawParam]) -> list[tuple[float, float]]:
    """L-BFGS-B bounds of `pack`'s vector."""
    return [(math.log(p.lo), math.log(p.hi)) if p.log else (p.lo, p.hi) for p in free]


class Design(Protocol):
    """A curve prepared for one law: parameter-free tensors, evaluated many times."""

    def evaluate(self, p: dict[str, Tensor]) -> Tensor:
        """Predicted loss at the curve's observed steps (differentiable in `p`)."""
        ...


D = TypeVar("D", bound=Design, covariant=True)
"""The design type of a law (`MPLDesign`, `TissueDesign`)."""


class Law(Protocol[D]):
    """A loss-curve law; `Law[Design]` is any law."""

    @property
    def name(self) -> str: ...

    @property
    def params(self) -> tuple[LawParam, ...]: ...

    def start_grid(self) -> list[dict[str, float]]:
        """Values of the nonlinear parameters to try as starts."""
        ...

    def design(self, curve: Curve) -> D:
        """Parameter-free tensors for evaluating `curve` quickly and many times."""
        ...

    def predict(
        self, lr: np.ndarray, warmup: int, p: dict[str, float], steps: np.ndarray
    ) -> np.ndarray:
        """Exact predicted loss at `steps` (> warmup) for per-step LRs `lr`."""
        ...

    def final_loss(self, lr: Tensor, warmup: int, p: dict[str, float]) -> Tensor:
        """Loss at the last step of the per-step LRs `lr`, differentiable in `lr`."""
        ...


def update_lrs(lr: np.ndarray, warmup: int) -> tuple[np.ndarray, int]:
    """The LR sequence as the laws index it: `eta[tau]` is the LR of the tau-th update.

    The loss logged at step `s` is computed before step `s`'s own update, after the
    updates of steps 0..s-1, so it is the laws' L(s) with `eta[tau] = lr[tau - 1]`
    (`eta[0] = 0`). The warmup's last update moves one index on with it. This is what
    makes a drop of the LR at step s show in the loss from step s + 1 on, as in the
    logged curves (wsdcon_*: same loss at step 8000, lower at 8128).
    """
    return np.concatenate([[0.0], np.asarray(lr, dtype=np.float64)]), warmup + 1
