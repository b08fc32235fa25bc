"""Weight averaging during training: uniform over the last k snapshots, WSM, EMA.

- uniform (LAWA; Kaddour 2022, "Stop Wasting My Time! Saving Days of ImageNet and
  BERT Training with Latest Weight Averaging"; Sanyal et al. 2023, "Early Weight
  Averaging meets High Learning Rates for LLM Pre-training"): the mean of the k latest
  snapshots, taken every n tokens: avg = (1/k) sum_j theta_j;
- wsm (Tian et al. 2025): the same window merged with weights c_j from a decay shape
  (`rewarm.mitigate.wsm.merge_weights`), avg = sum_j c_j theta_j;
- ema: avg <- decay * avg + (1 - decay) * theta at every update, starting from the
  stage's first weights: avg_n = decay^n theta_0 + (1 - decay) sum_{i=1..n}
  decay^(n-i) theta_i.

Snapshots are kept in memory in the parameters' dtype (k copies of the model for
uniform and wsm, one for ema) and written into checkpoints by `rewarm.mitigate.stage`,
so a resumed run averages exactly what an uninterrupted one does.
"""

from __future__ import annotations

import numpy as np
import torch

from rewarm.mitigate.options import AverageSpec
from rewarm.mitigate.tensors import Weights, local, parameters, snapshot
from rewarm.mitigate.wsm import merge_weights


class WeightAverage:
    """The running average of one stage (`observe` at the stage start and every n tokens)."""

    def __init__(self, spec: AverageSpec) -> None:
        self.spec = spec
        self.window: list[Weights] = []
        """uniform / wsm: the latest snapshots, oldest first (at most `spec.last`)."""
        self.ema: Weights | None = None
        self.updates = 0
        """Snapshots observed since the stage started (the first included)."""

    @torch.no_grad()
    def observe(self, model: torch.nn.Module) -> None:
        """Take the model's current weights into the average."""
        self.updates += 1
        if self.spec.kind == "ema":
            if self.ema is None:
                self.ema = snapshot(model)
                return
            for name, p in parameters(model):
                theta = local(p.detach())
                self.ema[name].mul_(self.spec.decay).add_(theta, alpha=1 - self.spec.decay)
            return
        self.window.append(snapshot(model))
        del self.window[: -self.spec.last]

    def coefficients(self) -> np.ndarray:
        """c_j of the window's snapshots, oldest first (uniform: 1/k each)."""
        n = len(self.window)
        if self.spec.kind == "uniform":
            return np.full(n, 1.0 / n)
        return merge_weights(self.spec.shape, n)

    @property
    def trivial(self) -> bool:
        """The average is the single snapshot it started from (equal to the model then)."""
        return self.updates <= 1

    @torch.no_grad()
    def averaged(self) -> Weights:
        """The averaged weights, in the parameters' dtype (sums in float32 or wider)."""
        if self.spec.kind == "ema":
            assert self.ema is not None, "observe() before averaged()"
            return {k: v.clone() for k, v in self.ema.items()}
        c = self.coefficients()
        out: Weights = {}
        for name, first in self.window[0].items():
            acc_dtype = torch.promote_types(first.dtype, torch.float32)
            acc = torch.zeros_like(first, dtype=acc_dtype)
            for cj, snap in zip(c, self.window, strict=True):
                acc.add_(snap[name].to(acc_dtype), alpha=float(cj))
            out[name] = acc.to(first.dtype)
        return out

    def tensors(self) -> dict[str, Weights]:
        """What a checkpoint must hold to resume the average: group name -> weights."""
        if self.spec.kind == "ema":
            return {"ema": self.ema} if self.ema is not None else {}
        return {f"window{j}": snap for j, snap in enumerate(self.window)}

    def load(self, groups: dict[str, Weights], updates: int) -> None:
        self.updates = updates
        if self.spec.kind == "ema":
            self.ema = groups.get("ema")
            return
        self.window = [groups[f"window{j}"] for j in range(len(groups))]
