"""Ranking schedules by a fitted law's predicted final loss, and optimising one.

`default_candidates` is the menu of the continual pre-training literature for a
budget of `total` steps: cosine to f (the reference), WSD with cooldowns of 10-30%
in several shapes (Hägele et al. 2024: 1-sqrt beats linear), and the infinite
schedule (Ibrahim et al. 2024; Singh et al. 2025: cooldown to c = 0.5 ending at 30%
of the run) with anneals of 10-30%.

`optimize_schedule` follows Luo et al. 2025 (section on optimal schedules): the LR
after warmup is any non-increasing sequence between `min_ratio * peak` and `peak`,
and the law's final loss is minimised over it by gradient descent. Non-increasing
is built in: `m_j = 1 - (1 - f) * sum_{i<=j} w_i` with `w = softmax(phi)` over the
knots plus one slack entry (decrease never spent), interpolated linearly per step.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from rewarm.laws import areas
from rewarm.laws.base import Design, Law
from rewarm.laws.threads import single_thread


@dataclass
class Candidate:
    label: str
    spec: dict[str, Any] | str
    lr: np.ndarray
    warmup: int
    final_loss: float = float("nan")


def default_candidates(
    total: int, warmup: int, final_ratio: float
) -> list[tuple[str, dict[str, Any]]]:
    """(label, spec) pairs; every spec warms up over `warmup` and ends at `final_ratio`."""
    base = {"warmup": warmup, "final_ratio": final_ratio}
    out: list[tuple[str, dict[str, Any]]] = [
        ("cosine", {"kind": "cosine", **base}),
        ("constant", {"kind": "constant", "warmup": warmup}),
    ]
    for frac in (0.1, 0.2, 0.3):
        for shape in ("linear", "cosine", "1-sqrt", "square"):
            decay = int(round(frac * total))
            out.append(
                (f"wsd {shape} {frac:.0%}", {"kind": "wsd", "decay": decay, "shape": shape, **base})
            )
    cooldown_end = max(int(round(0.3 * total)), warmup + 1)  # Singh et al.'s 0.3
    for frac in (0.1, 0.2, 0.3):
        start = max(int(round((1 - frac) * total)), cooldown_end)
        spec = {
            "kind": "infinite",
            "cooldown_end": cooldown_end,
            "constant_ratio": 0.5,
            "anneal_start": start,
            **base,
        }
        out.append((f"infinite c=0.5 anneal {frac:.0%}", spec))
    return out


def rank(
    law: Law[Design], params: dict[str, float], candidates: list[Candidate]
) -> list[Candidate]:
    """Fill each candidate's predicted final loss; best (lowest) first."""
    for c in candidates:
        c.final_loss = float(law.predict(c.lr, c.warmup, params, np.array([c.lr.size - 1]))[0])
    return sorted(candidates, key=lambda c: c.final_loss)


def optimize_schedule(
    law: Law[Design],
    params: dict[str, float],
    total: int,
    warmup: int,
    peak: float,
    min_ratio: float = 0.01,
    knots: int = 200,
    iters: int = 300,
) -> np.ndarray:
    """The per-step LR (steps 0..total) of a non-increasing post-warmup schedule that
    minimises the law's final loss. Warmup is linear from 0 to `peak`."""
    with single_thread():
        n = total - warmup
        pos = np.linspace(0.0, n, knots + 1)
        # per-step interpolation weights from the knot values
        t = np.arange(n + 1, dtype=np.float64)
        j = np.minimum(np.searchsorted(pos, t, side="right") - 1, knots - 1)
        frac = areas.as_tensor((t - pos[j]) / (pos[j + 1] - pos[j]))
        j_t = torch.as_tensor(j)
        ramp = areas.as_tensor(peak * np.arange(warmup) / max(warmup, 1))
        phi = torch.zeros(knots + 1, dtype=areas.DTYPE)
        phi[-1] = float(np.log(knots))  # start near a 50% linear decay
        phi.requires_grad_(True)
        p = {k: float(v) for k, v in params.items()}

        def schedule() -> torch.Tensor:
            w = torch.softmax(phi, 0)
            m = torch.cat(
                [
                    torch.ones(1, dtype=areas.DTYPE),
                    1.0 - (1.0 - min_ratio) * torch.cumsum(w[:-1], 0),
                ]
            )
            per_step = m[j_t] * (1 - frac) + m[j_t + 1] * frac
            return torch.cat([ramp, peak * per_step])

        opt = torch.optim.Adam([phi], lr=0.05)
        for _ in range(iters):
            opt.zero_grad()
            loss = law.final_loss(schedule(), warmup, p)
            loss.backward()
            opt.step()
        with torch.no_grad():
            return schedule().numpy()
