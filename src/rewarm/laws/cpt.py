"""The continual pre-training (CPT) law of Wang, Tissue, Wang, Li and Zeng (ICML 2025,
"Learning Dynamics in Continual Pre-Training for Large Language Models", arXiv
2505.07796): the held-out loss of one domain across a transfer point, as a function
of the learning-rate schedule before and after it and of the replay ratio.

    L(t) = L0 + A * (S1pt + S1cpt)^-alpha - C1 * S2pt - C2 * S2cpt * F1(r)
           + B * (1 - (1 + E * S1cpt)^-beta) * F2(r)

S1 is the forward area (sum of the LRs of the updates so far, warmup included) and S2
the annealing area of Tissue et al. 2024 (S2 = sum_i m_i, momentum
m_i = lam * m_{i-1} + (eta_{i-1} - eta_i), lam = 0.999, from the end of the first
warmup). Each is split at the transfer point T (the first update of the CPT stage):
the "pt" part sums the updates up to T, the "cpt" part those after it. The momentum
runs over the concatenated schedule, so a re-warm's LR increases enter S2cpt with a
negative sign (the loss rises) and an annealed pre-training keeps contributing to it.
The last term is the distribution shift: a power law of the CPT forward area, B > 0
for a domain the shift moves away from (it is forgotten), B < 0 for the domain it
moves towards. Every domain has its own ten parameters.

Replay (the paper's extension; r = the share of pre-training data in the CPT batches,
r + r_cpt = 1): F1(r) = exp(a1 * r) scales the CPT annealing term and

    F2(r) = (1 - exp(-a2 * r_cpt)) / (1 - exp(-a2))        (-> r_cpt as a2 -> 0)

the shift. SCIENCE.md gives the paper's shift factors as 1 - exp(-a2 r_cpt) for the
old domain and exp(a2 r_cpt) - 1 for the new one; both vanish without CPT data and
are the same curve family once divided by their value at r_cpt = 1, with a2 of
either sign. rewarm uses that normalised form (our choice, since the paper's appendix
could not be checked here): F1(0) = F2(r_cpt = 1) = 1, so without replay the law is
exactly the base law and B keeps its meaning (the shift with no replay). a1 and a2
are only fitted when the runs have different replay ratios; otherwise they are 0.

A second shift factor, `form="power"`, is a power of the domain's own share s of the
CPT batches, k = exp(a2) (the D-CPT law of Que et al. 2024, arXiv 2406.01375, models
a domain's loss as a power of its share of the mixture): for a domain the CPT stage
does not train (replay is its share, s = r) the share of the shift replay removes is
s^k, F2 = 1 - r^k; for a domain it trains (s = 1 - r) the share of the shift kept is
s^k, F2 = (1 - r)^k (`shift_factor`'s form "power-new"). At a2 = 0 every factor is
1 - r. Which one `rewarm fit` uses by default, and the runs that decided it, are in
docs/laws.md.

Evaluation points: an `eval` record at step k follows updates 1..k, so the areas at
k sum eta[1..k] (`eta[j]` = LR of update j, `eta[0] = 0`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from rewarm.laws import areas as area_ops
from rewarm.laws.base import LawParam
from rewarm.laws.curves import detect_warmup

LAM = 0.999
"""Tissue et al.'s momentum factor, the CPT paper's too."""

PARAMS: tuple[LawParam, ...] = (
    LawParam("L0", 0.0, 20.0, linear=True),
    LawParam("A", 1e-8, 1e4, log=True, linear=True),
    LawParam("alpha", 0.01, 3.0),
    LawParam("C1", 1e-10, 1e8, log=True, linear=True),
    LawParam("C2", 1e-10, 1e8, log=True, linear=True),
    LawParam("B", -50.0, 50.0, linear=True),
    LawParam("E", 1e-6, 1e8, log=True),
    LawParam("beta", 0.01, 5.0),
    LawParam("a1", -20.0, 20.0),
    LawParam("a2", -30.0, 30.0),
)
REPLAY_PARAMS = ("a1", "a2")
REPLAY_FORMS = ("exp", "power")
"""Shift factors F2: the paper's exponential in r_cpt and a power of the domain's own
share (see above)."""
DOMAIN_FORMS = ("exp", "power", "power-new")
"""F2 of one domain: "power" for a domain the CPT stage does not train, "power-new" for
one it trains."""
NAMES = tuple(p.name for p in PARAMS)


@dataclass(frozen=True)
class Areas:
    """The four areas and the replay ratio at a set of evaluation points (float64)."""

    s1_pt: np.ndarray
    s1_cpt: np.ndarray
    s2_pt: np.ndarray
    s2_cpt: np.ndarray
    replay: np.ndarray

    def __len__(self) -> int:
        return int(self.s1_pt.size)

    @staticmethod
    def concat(parts: list[Areas]) -> Areas:
        return Areas(
            *(np.concatenate([getattr(a, f) for a in parts]) for f in Areas.__dataclass_fields__)
        )

    def take(self, idx: np.ndarray) -> Areas:
        return Areas(*(getattr(self, f)[idx] for f in Areas.__dataclass_fields__))


def warmup_end(eta: np.ndarray) -> int:
    """The update where the first LR ramp ends (the laws' warmup; see `curves.detect_warmup`)."""
    return detect_warmup(np.asarray(eta, dtype=np.float64))


def cpt_areas(
    eta: np.ndarray, transfer: int, replay: float, lam: float = LAM, warmup: int | None = None
) -> Areas:
    """Areas after every number of updates k = 0..len(eta) - 1 (vectorised, no loop).

    `eta[j]`: LR of update j (`eta[0] = 0`); updates j > `transfer` are CPT updates.
    `warmup`: the update where the momentum starts (default: the end of the first ramp).
    """
    eta = np.asarray(eta, dtype=np.float64)
    w = warmup_end(eta) if warmup is None else int(warmup)
    s1 = np.cumsum(eta)
    s2 = np.zeros_like(eta)
    with torch.no_grad():
        s2[w:] = area_ops.annealing_area(area_ops.as_tensor(eta[w:]), lam).numpy()
    k = np.arange(eta.size)
    at_t = np.minimum(k, transfer)
    return Areas(
        s1_pt=s1[at_t],
        s1_cpt=s1 - s1[at_t],
        s2_pt=s2[at_t],
        s2_cpt=s2 - s2[at_t],
        replay=np.full(eta.size, float(replay)),
    )


def shift_factor(r_cpt: np.ndarray, a2: float, form: str = "exp") -> tuple[np.ndarray, np.ndarray]:
    """F2 and dF2/da2 (`DOMAIN_FORMS`). `exp`: (1 - exp(-a2 r_cpt)) / (1 - exp(-a2)),
    continuous at a2 = 0, where F2 = r_cpt (second-order series below |a2| = 1e-6).
    `power`: 1 - r^k with r = 1 - r_cpt, k = exp(a2); `power-new`: r_cpt^k. Both are 1
    without replay for every a2."""
    x = np.asarray(r_cpt, dtype=np.float64)
    if form in ("power", "power-new"):
        s = np.clip(x if form == "power-new" else 1.0 - x, 0.0, 1.0)  # the domain's share
        k = math.exp(a2)
        with np.errstate(divide="ignore", invalid="ignore"):
            sk = s**k
            d = np.where(s > 0, sk * np.log(np.where(s > 0, s, 1.0)) * k, 0.0)
        return (sk, d) if form == "power-new" else (1.0 - sk, -d)
    if form != "exp":
        raise ValueError(f"unknown replay form {form!r} (one of {', '.join(DOMAIN_FORMS)})")
    if abs(a2) < 1e-6:
        return x + a2 * x * (1 - x) / 2, x * (1 - x) / 2
    u, v = np.expm1(-a2 * x), math.expm1(-a2)
    du, dv = -x * np.exp(-a2 * x), -math.exp(-a2)
    return u / v, (du * v - u * dv) / (v * v)


def evaluate(
    p: dict[str, float], a: Areas, jacobian: bool = False, form: str = "exp"
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The law at the points of `a` and, with `jacobian`, its derivative in every
    parameter (closed form; the fit calls this thousands of times, so no autograd);
    `form`: the shift's replay factor (`REPLAY_FORMS`)."""
    s1 = a.s1_pt + a.s1_cpt
    with np.errstate(divide="ignore"):  # S1 = 0 before the first update: L = inf there
        power = s1 ** -p["alpha"]
    e1 = np.exp(p["a1"] * a.replay)
    base = 1.0 + p["E"] * a.s1_cpt
    decay = base ** -p["beta"]
    f2, df2 = shift_factor(1.0 - a.replay, p["a2"], form)
    shift = 1.0 - decay
    pred = (
        p["L0"] + p["A"] * power - p["C1"] * a.s2_pt - p["C2"] * a.s2_cpt * e1 + p["B"] * shift * f2
    )
    if not jacobian:
        return pred, {}
    with np.errstate(divide="ignore", invalid="ignore"):
        log_s1 = np.where(s1 > 0, np.log(s1), 0.0)
    jac = {
        "L0": np.ones_like(pred),
        "A": power,
        "alpha": -p["A"] * power * log_s1,
        "C1": -a.s2_pt,
        "C2": -a.s2_cpt * e1,
        "B": shift * f2,
        "E": p["B"] * f2 * p["beta"] * decay / base * a.s1_cpt,
        "beta": p["B"] * f2 * decay * np.log(base),
        "a1": -p["C2"] * a.s2_cpt * a.replay * e1,
        "a2": p["B"] * shift * df2,
    }
    return pred, jac


def predict(params: dict[str, float], a: Areas, form: str = "exp") -> np.ndarray:
    """The law at every point of `a` (`form`: the shift's replay factor)."""
    return evaluate(params, a, form=form)[0]
