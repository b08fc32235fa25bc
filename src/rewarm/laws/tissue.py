"""Tissue et al. 2024, "Scaling Law with Learning Rate Annealing" (arXiv 2408.11029).

    L(s) = L0 + A * S1(s)^-alpha - C * S2(s)
    S1(s) = sum_{i<=s} eta_i                       (forward area, warmup included)
    S2(s) = sum_{i<=s} m_i,  m_i = lam * m_{i-1} + (eta_{i-1} - eta_i)   (annealing area)

Choice made here: the momentum starts at the end of warmup (`m = 0` there), so the
warmup's rising LR adds forward area only; later LR increases (re-warming) enter S2
with a negative sign, as the formula says. `lam` is fitted (bounds 0.9..0.99999) or
fixed (the paper's 0.999 is the default of `TissueLaw(lam=0.999)`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from rewarm.laws import areas
from rewarm.laws.base import LawParam, update_lrs
from rewarm.laws.curves import Curve


@dataclass
class TissueDesign:
    s1: Tensor  # (m,) forward area at the observed steps
    eta: Tensor  # (n + 1,) post-warmup LR
    idx: Tensor  # (m,) observed steps minus warmup
    s2_fixed: Tensor | None  # S2 at the observed steps when lam is fixed

    def evaluate(self, p: dict[str, Tensor]) -> Tensor:
        if self.s2_fixed is not None:
            s2 = self.s2_fixed
        else:
            s2 = areas.annealing_area(self.eta, p["lam"])[self.idx]
        return p["L0"] + p["A"] * self.s1 ** (-p["alpha"]) - p["C"] * s2


class TissueLaw:
    name = "tissue"

    def __init__(self, lam: float | None = 0.999) -> None:
        """`lam=None` fits the momentum factor; a number fixes it."""
        self.lam = lam
        ps = [
            LawParam("L0", 0.0, 20.0, linear=True),
            LawParam("A", 1e-6, 1e4, log=True, linear=True),
            LawParam("alpha", 0.01, 3.0),
            LawParam("C", 1e-6, 1e7, log=True, linear=True),
        ]
        if lam is None:
            ps.append(LawParam("lam", 0.9, 0.99999))
        self.params = tuple(ps)

    def start_grid(self) -> list[dict[str, float]]:
        lams = [0.99, 0.995, 0.999] if self.lam is None else [self.lam]
        return [{"alpha": a, "lam": lam} for a in (0.2, 0.35, 0.5, 0.7, 1.0) for lam in lams]

    def design(self, curve: Curve) -> TissueDesign:
        lr, w = update_lrs(curve.lr[: int(curve.steps[-1])], curve.warmup)
        s1 = np.cumsum(lr)[curve.steps]
        eta = areas.as_tensor(lr[w:])
        idx = torch.as_tensor(curve.steps - w, dtype=torch.long)
        fixed = None
        if self.lam is not None:
            fixed = areas.annealing_area(eta, self.lam)[idx]
        return TissueDesign(areas.as_tensor(s1), eta, idx, fixed)

    def predict(
        self, lr: np.ndarray, warmup: int, p: dict[str, float], steps: np.ndarray
    ) -> np.ndarray:
        if np.min(steps) <= warmup:
            raise ValueError(f"steps must come after the warmup (step {warmup})")
        lam = self.lam if self.lam is not None else p["lam"]
        lr, warmup = update_lrs(lr[: int(np.max(steps))], warmup)
        s1 = np.cumsum(lr)[steps]
        with torch.no_grad():
            s2 = areas.annealing_area(areas.as_tensor(lr[warmup:]), float(lam)).numpy()
        s2 = s2[np.asarray(steps) - warmup]
        return p["L0"] + p["A"] * s1 ** (-p["alpha"]) - p["C"] * s2

    def final_loss(self, lr: Tensor, warmup: int, p: dict[str, float]) -> Tensor:
        """L at the last step of `lr`, differentiable in `lr`: S2(n) in closed form,
        `sum_k d_k (1 - lam^(n-k+1)) / (1 - lam)`."""
        lam = float(self.lam if self.lam is not None else p["lam"])
        lr = torch.cat([lr.new_zeros(1), lr[:-1]])  # as `update_lrs`
        warmup += 1
        eta = lr[warmup:]
        d = areas.lr_drops(eta)[1:]
        n = d.shape[0]
        k = torch.arange(1, n + 1, dtype=areas.DTYPE)
        s2 = torch.sum(d * (1.0 - lam ** (n - k + 1)) / (1.0 - lam))
        return p["L0"] + p["A"] * lr.sum() ** (-p["alpha"]) - p["C"] * s2
