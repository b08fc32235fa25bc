"""Fitting a loss-curve law to observed curves, deterministically.

Objective (as in the published fits of both laws): the mean Huber loss of the log
residuals, `huber_delta(log pred - log actual)` with delta = 1e-3, over every
observed point of every curve.

Two procedures (`method`):

"staged", MPL's default: the paper's two-stage fit (Luo et al. 2025, released
code): an "instant drop" fit of (L0, A, alpha, B), then a short Adam refinement of
all seven parameters; see `laws.staged`.

"lbfgs", Tissue's default (and MPL's with `method="lbfgs"`), to convergence:
1. A fixed grid of starts over the nonlinear parameters; at each, the parameters
   the law is linear in (L0, A, B or C) come from non-negative least squares.
2. The `starts` best grid points are refined with L-BFGS-B (scipy) on gradients from
   torch autograd (float64), positive scale parameters in log space, all within
   the law's bounds.
3. The best refined point wins. No randomness anywhere, so a fit is reproducible.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic

import numpy as np
import torch
from scipy.optimize import minimize, nnls

from rewarm import atomic
from rewarm.errors import UserError
from rewarm.laws import areas, base
from rewarm.laws.base import D, Design, Law
from rewarm.laws.curves import Curve
from rewarm.laws.goodness import fit_metrics
from rewarm.laws.mpl import MPLaw
from rewarm.laws.staged import FLOOR, START, adam_refine, instant_drop_fit
from rewarm.laws.threads import single_thread
from rewarm.laws.tissue import TissueLaw

HUBER_DELTA = 1e-3


def make_law(
    name: str, lam: float | None = 0.999, block: int = 32, warmup_ld: bool = False
) -> Law[Design]:
    """`"mpl"` or `"tissue"` (`lam=None` fits Tissue's momentum factor; `warmup_ld`:
    MPL in the released code's form, see `laws.mpl`)."""
    if name == "mpl":
        return MPLaw(block=block, warmup_ld=warmup_ld)
    if name == "tissue":
        return TissueLaw(lam=lam)
    raise UserError(f"unknown law {name!r} (choose mpl or tissue)")


@dataclass
class FitResult:
    law: str
    params: dict[str, float]
    objective: float
    metrics: dict[str, dict[str, float]]
    """Per curve name, plus "all" (every fitted point)."""
    curves: list[str]
    seconds: float
    options: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "law": self.law,
            "params": self.params,
            "objective": self.objective,
            "metrics": self.metrics,
            "curves": self.curves,
            "seconds": self.seconds,
            "options": self.options,
        }

    def law_object(self) -> Law[Design]:
        lam = self.options.get("lam", 0.999)
        warmup_ld = bool(self.options.get("warmup_ld", False))
        return make_law(self.law, lam=None if lam == "fit" else lam, warmup_ld=warmup_ld)

    def predict(self, lr: np.ndarray, warmup: int, steps: np.ndarray) -> np.ndarray:
        return self.law_object().predict(lr, warmup, self.params, steps)


def save_fit(result: FitResult, path: str | Path) -> None:
    """Write the fit as JSON, atomically (`rewarm.atomic`)."""
    atomic.write_json(path, result.to_dict(), indent=2)


def load_fit(path: str | Path) -> FitResult:
    path = Path(path)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        law = make_law(raw["law"])
        params = {k: float(raw["params"][k]) for k in (p.name for p in law.params)}
        if raw["law"] == "tissue" and raw.get("options", {}).get("lam") == "fit":
            params["lam"] = float(raw["params"]["lam"])
        return FitResult(
            law=raw["law"],
            params=params,
            objective=float(raw.get("objective", math.nan)),
            metrics=raw.get("metrics", {}),
            curves=list(raw.get("curves", [])),
            seconds=float(raw.get("seconds", 0.0)),
            options=dict(raw.get("options", {})),
        )
    except OSError as err:
        raise UserError(f"{path}: cannot read: {err.strerror}") from None
    except (ValueError, KeyError, TypeError) as err:
        raise UserError(f"{path}: not a fit written by `rewarm fit` ({err})") from None


def huber(r: torch.Tensor, delta: float) -> torch.Tensor:
    a = r.abs()
    return torch.where(a <= delta, 0.5 * r**2, delta * (a - 0.5 * delta))


class _Problem(Generic[D]):
    """The objective over all curves, as a function of the packed vector z."""

    def __init__(self, law: Law[D], curves: list[Curve], delta: float, fixed: dict[str, float]):
        self.law = law
        self.designs = [law.design(c) for c in curves]
        self.log_y = areas.as_tensor(np.log(np.concatenate([c.loss for c in curves])))
        self.delta = delta
        self.fixed = fixed
        self.free = [p for p in law.params if p.name not in fixed]

    def unpack(self, z: torch.Tensor) -> dict[str, torch.Tensor]:
        out = {p.name: (torch.exp(z[i]) if p.log else z[i]) for i, p in enumerate(self.free)}
        out.update({k: areas.as_tensor(v) for k, v in self.fixed.items()})
        return out

    def pack(self, params: dict[str, float]) -> np.ndarray:
        return base.pack(self.free, params)

    def bounds(self) -> list[tuple[float, float]]:
        return base.bounds(self.free)

    def predict(self, p: dict[str, torch.Tensor]) -> torch.Tensor:
        return torch.cat([d.evaluate(p) for d in self.designs])

    def objective(self, p: dict[str, torch.Tensor]) -> torch.Tensor:
        # log(pred), continued below FLOOR * loss by its tangent (`staged.safe_log`):
        # a trial point predicting a loss <= 0 keeps a slope back towards sane values
        pred = self.predict(p)
        floor = FLOOR * torch.exp(self.log_y)
        log_pred = (
            torch.log(torch.maximum(pred, floor)) + (torch.minimum(pred, floor) - floor) / floor
        )
        r = log_pred - self.log_y
        # scaled by delta^2 so L-BFGS-B sees values of order 1
        return huber(r, self.delta).mean() / self.delta**2

    def value_and_grad(self, z: np.ndarray) -> tuple[float, np.ndarray]:
        zt = torch.tensor(z, dtype=areas.DTYPE, requires_grad=True)
        f = self.objective(self.unpack(zt))
        if not torch.isfinite(f):
            return 1e30, np.zeros_like(z)
        f.backward()
        f = f.detach()
        g = zt.grad.numpy().copy()  # type: ignore[union-attr]
        return float(f), np.nan_to_num(g)


def _linear_start(prob: _Problem[Design], nonlinear: dict[str, float]) -> dict[str, float] | None:
    """Solve the linear parameters by non-negative least squares on the loss."""
    linear = [p for p in prob.law.params if p.linear and p.name not in prob.fixed]
    base = {p.name: 0.0 for p in linear}
    with torch.no_grad():

        def ev(**over: float) -> np.ndarray:
            q = {**base, **nonlinear, **prob.fixed, **over}
            return prob.predict({k: areas.as_tensor(v) for k, v in q.items()}).numpy()

        zero = ev()
        cols = [ev(**{p.name: 1.0}) - zero for p in linear]
    y = np.exp(prob.log_y.numpy())
    mat = np.stack(cols, 1)
    if not np.all(np.isfinite(mat)):
        return None
    scale = np.maximum(np.abs(mat).max(0), 1e-300)
    coef, _ = nnls(mat / scale, y - zero)
    coef = coef / scale
    out = dict(nonlinear)
    for p, v in zip(linear, coef, strict=True):
        out[p.name] = float(min(max(v, p.lo * 10 if p.log else p.lo), p.hi))
    return out


def fit(
    curves: list[Curve],
    law: Law[Design],
    starts: int = 2,
    max_iter: int = 200,
    delta: float = HUBER_DELTA,
    fixed: dict[str, float] | None = None,
    method: str | None = None,
    adam_steps: int = 200,
    weight_decay: float | None = None,
) -> FitResult:
    """Fit `law` to `curves`; see the module docstring for the procedure.

    `method`: "lbfgs" (grid of starts + L-BFGS-B, the default for Tissue),
    "staged" (MPL only, the default there: the paper's two-stage fit, `laws.staged`;
    `starts` and `max_iter` do not apply; `adam_steps` bounds its refinement and
    `weight_decay` is its AdamW decay, default 0) or "paper" (staged, as literally as
    the released code: needs `MPLaw(warmup_ld=True)`, weight decay 0.01).
    `laws.select` chooses the staged fit's settings by validation on the curves (what
    `rewarm fit` does by default).
    """
    method = method or ("staged" if isinstance(law, MPLaw) else "lbfgs")
    if method not in ("lbfgs", "staged", "paper"):
        raise UserError(f"unknown fit method {method!r} (lbfgs, staged or paper)")
    if method != "lbfgs" and not isinstance(law, MPLaw):
        raise UserError(f"fit method {method!r} applies to the mpl law only")
    if method == "paper" and not (isinstance(law, MPLaw) and law.warmup_ld):
        raise UserError("fit method 'paper' needs the mpl law with warmup_ld=True")
    if not curves:
        raise UserError("no curves to fit")
    # The tensors are small: one thread is faster than two fighting over a busy CPU.
    with single_thread():
        if method != "lbfgs":
            assert isinstance(law, MPLaw)
            if weight_decay is None:
                weight_decay = 0.01 if method == "paper" else 0.0
            return _fit_staged(curves, law, delta, fixed, method, adam_steps, weight_decay)
        return _fit(curves, law, starts, max_iter, delta, fixed)


def best_of_starts(
    value_and_grad: Any,
    bounds: Any,
    starts_z: list[np.ndarray | None],
    starts: int,
    *,
    options: dict[str, Any],
    what: str,
) -> tuple[float, np.ndarray]:
    """Multi-start L-BFGS-B: rank the start points (None: no start) by their objective,
    run from the `starts` best finite ones; (objective, packed parameters) of the best.
    `what` names the objective in the error when no start is finite."""
    candidates = []
    for z0 in starts_z:
        if z0 is None:
            continue
        f0, _ = value_and_grad(z0)
        if math.isfinite(f0):
            candidates.append((f0, z0))
    if not candidates:
        raise UserError(f"no start point gives a finite {what}; are the losses sane?")
    candidates.sort(key=lambda c: c[0])
    best: tuple[float, np.ndarray] | None = None
    for _, z0 in candidates[:starts]:
        res = minimize(
            value_and_grad, z0, jac=True, method="L-BFGS-B", bounds=bounds, options=options
        )
        if best is None or res.fun < best[0]:
            best = (float(res.fun), res.x)
    assert best is not None
    return best


def _fit(
    curves: list[Curve],
    law: Law[Design],
    starts: int,
    max_iter: int,
    delta: float,
    fixed: dict[str, float] | None,
) -> FitResult:
    t0 = time.perf_counter()
    fixed = dict(fixed or {})
    if isinstance(law, TissueLaw) and law.lam is not None:
        fixed.pop("lam", None)
    prob = _Problem(law, curves, delta, fixed)
    free_names = {p.name for p in prob.free}
    starts_z = []
    for g in law.start_grid():
        nonlinear = {k: v for k, v in g.items() if k in free_names}
        p0 = _linear_start(prob, nonlinear)
        starts_z.append(None if p0 is None else prob.pack(p0))
    best = best_of_starts(
        prob.value_and_grad,
        prob.bounds(),
        starts_z,
        starts,
        options={"maxiter": max_iter, "ftol": 1e-10, "gtol": 1e-7},
        what="objective",
    )
    with torch.no_grad():
        params = {k: float(v) for k, v in prob.unpack(areas.as_tensor(best[1])).items()}
    seconds = time.perf_counter() - t0
    metrics = evaluate_curves(law, params, curves)
    lam_opt: str | float | None = (
        "fit" if isinstance(law, TissueLaw) and law.lam is None else getattr(law, "lam", None)
    )
    options: dict[str, Any] = {"huber_delta": delta, "starts": starts, "method": "lbfgs"}
    if getattr(law, "warmup_ld", False):
        options["warmup_ld"] = True
    if isinstance(law, TissueLaw):
        options["lam"] = lam_opt
    return FitResult(law.name, params, best[0], metrics, [c.name for c in curves], seconds, options)


def _fit_staged(
    curves: list[Curve],
    law: MPLaw,
    delta: float,
    fixed: dict[str, float] | None,
    method: str,
    adam_steps: int = 200,
    weight_decay: float = 0.0,
) -> FitResult:
    t0 = time.perf_counter()
    fixed = dict(fixed or {})
    prob = _Problem(law, curves, delta, fixed)
    parts = [law.instant_drop(d) for d in prob.designs]
    p0 = instant_drop_fit(
        np.concatenate([s for s, _ in parts]),
        np.concatenate([d for _, d in parts]),
        np.exp(prob.log_y.numpy()),
        delta,
    )
    bounds = {p.name: (p.lo, p.hi) for p in law.params}
    start = {k: min(max(v, bounds[k][0]), bounds[k][1]) for k, v in {**p0, **START}.items()}
    free = {k: v for k, v in start.items() if k not in fixed}
    const = {k: areas.as_tensor(v) for k, v in fixed.items()}
    params, objective = adam_refine(
        lambda p: prob.objective({**p, **const}),
        free,
        {k: bounds[k] for k in free},
        steps=adam_steps,
        weight_decay=weight_decay,
    )
    params = {p.name: {**params, **fixed}[p.name] for p in law.params}
    seconds = time.perf_counter() - t0
    metrics = evaluate_curves(law, params, curves)
    options: dict[str, Any] = {"huber_delta": delta, "method": method}
    if adam_steps != 200:
        options["adam_steps"] = adam_steps
    if weight_decay != (0.01 if method == "paper" else 0.0):
        options["weight_decay"] = weight_decay
    if law.warmup_ld:
        options["warmup_ld"] = True
    return FitResult(
        law.name, params, objective, metrics, [c.name for c in curves], seconds, options
    )


def evaluate_curves(
    law: Law[Design], params: dict[str, float], curves: list[Curve]
) -> dict[str, dict[str, float]]:
    """Exact predictions scored per curve and over all points ("all")."""
    ys, ps, out = [], [], {}
    for c in curves:
        pred = law.predict(c.lr, c.warmup, params, c.steps)
        out[c.name] = fit_metrics(c.loss, pred)
        ys.append(c.loss)
        ps.append(pred)
    out["all"] = fit_metrics(np.concatenate(ys), np.concatenate(ps))
    return out
