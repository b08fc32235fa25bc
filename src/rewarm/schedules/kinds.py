"""Every schedule kind: its parameters, one-line meaning, source and body maker.

One plain dict, `KINDS`, maps a spec's `kind` to its `Kind`; nothing registers itself.
Every kind also takes `warmup` (a length W) and `warmup_start` (the ratio s0 the
warmup starts from): m = s0 + (m(W) - s0) t / W on [0, W), where m(W) is the body's
value at W (1 for every kind that starts at its peak).

`resolve_spec` (check a spec, fill its defaults) and `multiplier` (a resolved spec's
whole m(t)) dispatch on `KINDS` and live beside it because a spec may hold a spec: a
`branch` starts from its main branch's multiplier, itself any kind.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

import rewarm.schedules.cyclic as cyclic
import rewarm.schedules.decays as decays
import rewarm.schedules.infinite as infinite
import rewarm.schedules.refined as refined
import rewarm.schedules.shapes as shapes
import rewarm.schedules.wsd as wsd
from rewarm.errors import UserError
from rewarm.schedules.decays import Body
from rewarm.schedules.params import ABSENT, REQUIRED, Param, resolve_params


@dataclass(frozen=True)
class Kind:
    summary: str
    source: str
    params: dict[str, Param]
    make: Callable[[dict[str, Any], float], Body]
    check: Callable[[dict[str, Any], float, str], None] | None = None


def _warmup(default: Any = 0.0, start: Any = 0.0) -> dict[str, Param]:
    return {
        "warmup": Param("length", default, "warmup length W"),
        "warmup_start": Param("ratio", start, "ratio s0 the linear warmup starts from"),
    }


def _final(default: Any = 0.0) -> dict[str, Param]:
    return {"final_ratio": Param("ratio", default, "final ratio f = min LR / peak")}


def _shape(default: str, choices: dict[str, Any], key: str = "shape") -> dict[str, Param]:
    return {key: Param("choice", default, "decay shape", tuple(choices))}


def _positive_end(spec: dict[str, Any], where: str, shape_key: str = "shape") -> None:
    if spec.get(shape_key, "exponential") in shapes.NEEDS_POSITIVE_END and spec["final_ratio"] <= 0:
        shape = spec.get(shape_key, spec["kind"])
        raise UserError(
            f"{where}.final_ratio must be > 0 for a {shape!r} decay (it divides by f), "
            f"got {spec['final_ratio']!r}"
        )


def _check_exponential(spec: dict[str, Any], total: float, where: str) -> None:
    _positive_end(spec, where, shape_key="_none")


def _check_decaying(spec: dict[str, Any], total: float, where: str) -> None:
    _positive_end(spec, where)


def _check_step(spec: dict[str, Any], total: float, where: str) -> None:
    if spec["step_size"] <= spec["warmup"]:
        raise UserError(
            f"{where}.step_size must be > warmup ({spec['warmup']:g}), got {spec['step_size']!r}"
        )


def _check_multistep(spec: dict[str, Any], total: float, where: str) -> None:
    if spec["milestones"][0] <= spec["warmup"]:
        raise UserError(f"{where}.milestones must all be > warmup ({spec['warmup']:g})")


def _check_inverse_sqrt(spec: dict[str, Any], total: float, where: str) -> None:
    if spec["timescale"] <= 0:
        raise UserError(f"{where}.timescale must be > 0 (or give warmup > 0)")
    if spec["timescale"] < spec["warmup"]:
        raise UserError(f"{where}.timescale must be >= warmup ({spec['warmup']:g})")


def _check_period(spec: dict[str, Any], total: float, where: str) -> None:
    if spec["period"] <= 0:
        raise UserError(f"{where}.period must be > 0")


def _check_wsd(spec: dict[str, Any], total: float, where: str) -> None:
    if spec["warmup"] + spec["decay"] > total:
        raise UserError(
            f"{where}.decay must be <= the length minus warmup ({total - spec['warmup']:g}), "
            f"got {spec['decay']!r}"
        )
    _positive_end(spec, where)


def _check_wsd_s(spec: dict[str, Any], total: float, where: str) -> None:
    _check_period(spec, total, where)
    if spec["decay"] > spec["period"]:
        raise UserError(
            f"{where}.decay must be <= period ({spec['period']:g}), got {spec['decay']!r}"
        )
    _positive_end(spec, where)
    # A stage cut inside a period would end in that period's stable part, at the peak.
    periods = (total - spec["warmup"]) / spec["period"]
    if spec["decay"] > 0 and abs(periods - round(periods)) > 1e-9 * max(periods, 1.0):
        raise UserError(
            f"{where}.period ({spec['period']:g}) must divide the length after warmup "
            f"({total - spec['warmup']:g}), else the stage ends mid-period at the peak LR"
        )


def _check_branch(spec: dict[str, Any], total: float, where: str) -> None:
    main = spec["main"]
    if main.get("kind") in ("branch", "rewarm"):
        raise UserError(f"{where}.main.kind must be the main run's own kind, not {main['kind']!r}")
    spec["main"] = resolve_spec(main, spec["main_total"], f"{where}.main")
    if spec["at"] > spec["main_total"]:
        raise UserError(f"{where}.at must be <= main_total ({spec['main_total']:g})")
    if spec["warmup"] + spec["decay"] > total:
        raise UserError(
            f"{where}.decay must be <= the length minus warmup ({total - spec['warmup']:g})"
        )
    _positive_end(spec, where)
    if spec["shape"] in shapes.NEEDS_POSITIVE_END and _branch_start(spec) <= 0:
        raise UserError(f"{where}.shape {spec['shape']!r} needs a main-branch LR > 0 at `at`")


def _branch_start(spec: dict[str, Any]) -> float:
    """The main branch's multiplier at `at`: where a branch starts (its warmup target)."""
    main = multiplier(spec["main"], spec["main_total"])
    return float(main(np.array([spec["at"]], dtype=np.float64))[0])


def _branch(spec: dict[str, Any], total: float) -> Body:
    return wsd.branch(spec, total, start=_branch_start(spec))


def _check_infinite(spec: dict[str, Any], total: float, where: str) -> None:
    if spec["cooldown_end"] < spec["warmup"]:
        raise UserError(f"{where}.cooldown_end must be >= warmup ({spec['warmup']:g})")
    if spec["warmup"] > 0 and spec["cooldown_end"] == spec["warmup"]:
        raise UserError(
            f"{where}.cooldown_end must be > warmup ({spec['warmup']:g}): with no cooldown "
            "the warmup rises to constant_ratio and never reaches the peak LR (warmup = 0 "
            "continues a constant phase)"
        )
    a = spec.get("anneal_start")
    if a is not None:
        if a < spec["cooldown_end"]:
            raise UserError(
                f"{where}.anneal_start must be >= cooldown_end ({spec['cooldown_end']:g})"
            )
        if a < total:  # an anneal of zero length never reaches f
            _positive_end(spec, where, shape_key="anneal_shape")


def _check_triangular(spec: dict[str, Any], total: float, where: str) -> None:
    _check_period(spec, total, where)


def _half_period(spec: dict[str, Any], total: float) -> float:
    """period / 2 (Smith's rise)"""
    return min(spec["period"] / 2.0, total)


def _base(spec: dict[str, Any], total: float) -> float:
    """base_ratio"""
    return spec["base_ratio"]


def _one_cycle_warmup(spec: dict[str, Any], total: float) -> float:
    """0.3 x length (PyTorch)"""
    return 0.3 * total


def _timescale(spec: dict[str, Any], total: float) -> float:
    """warmup"""
    return spec["warmup"]


def _main_total(spec: dict[str, Any], total: float) -> float:
    """at"""
    return spec["at"]


def _whole(spec: dict[str, Any], total: float) -> float:
    """length - warmup"""
    return total - spec["warmup"]


def _wsd_decay(spec: dict[str, Any], total: float) -> float:
    """0.2 x length, <= T - W"""
    return min(0.2 * total, total - spec["warmup"])


def _cooldown_end(spec: dict[str, Any], total: float) -> float:
    """warmup (no cooldown)"""
    return spec["warmup"]


_GAMMA = Param("gamma", 0.1, "factor gamma applied at each milestone")

KINDS: dict[str, Kind] = {
    "constant": Kind("m = 1 after the warmup", "-", _warmup(), decays.constant),
    "linear": Kind(
        "linear decay from 1 to f over [W, T]",
        "Defazio et al. 2023",
        {**_warmup(), **_final()},
        decays.linear,
    ),
    "cosine": Kind(
        "cosine decay from 1 to f over [W, T]",
        "Loshchilov & Hutter 2017",
        {**_warmup(), **_final()},
        decays.cosine,
    ),
    "cosine-restarts": Kind(
        "cosine cycles from 1 to f of lengths P, P*mult, ... (SGDR)",
        "Loshchilov & Hutter 2017",
        {
            **_warmup(),
            **_final(),
            "period": Param("length", REQUIRED, "length P of the first cycle"),
            "period_mult": Param("positive", 1.0, "each cycle is this many times longer"),
        },
        cyclic.cosine_restarts,
        _check_period,
    ),
    "polynomial": Kind(
        "m = f + (1 - f)(1 - p)^power over [W, T]",
        "PyTorch PolynomialLR",
        {**_warmup(), **_final(), "power": Param("positive", 1.0, "exponent of (1 - p)")},
        decays.polynomial,
    ),
    "exponential": Kind(
        "geometric decay m = f^p over [W, T] (f > 0)",
        "-",
        {**_warmup(), **_final(REQUIRED)},
        decays.exponential,
        _check_exponential,
    ),
    "step": Kind(
        "m = gamma^floor(t / step_size)",
        "PyTorch StepLR",
        {
            **_warmup(),
            "step_size": Param("length", REQUIRED, "distance between milestones"),
            "gamma": _GAMMA,
        },
        decays.step,
        _check_step,
    ),
    "multistep": Kind(
        "m = gamma^(milestones passed)",
        "PyTorch MultiStepLR",
        {
            **_warmup(),
            "milestones": Param("positions", REQUIRED, "increasing positions"),
            "gamma": _GAMMA,
        },
        decays.multistep,
        _check_multistep,
    ),
    "inverse-sqrt": Kind(
        "m = sqrt(tau / max(t, tau)) after the warmup",
        "Vaswani et al. 2017",
        {**_warmup(), "timescale": Param("length", _timescale, "tau (>= warmup)")},
        decays.inverse_sqrt,
        _check_inverse_sqrt,
    ),
    "rex": Kind(
        "m = f + (1 - f)(1 - p) / (1 - p/2) over [W, T]",
        "Chen et al. 2022 (REX)",
        {**_warmup(), **_final()},
        decays.rex,
    ),
    "triangular": Kind(
        "linear cycles between base_ratio and 1 with period P",
        "Smith 2017 (cyclical LR)",
        {
            "period": Param("length", REQUIRED, "full cycle length P (up and down)"),
            "base_ratio": Param("ratio", 0.1, "bottom of the cycle"),
            "mode": Param(
                "choice",
                "triangular",
                "amplitude halves each cycle in triangular2",
                ("triangular", "triangular2"),
            ),
            **_warmup(_half_period, _base),
        },
        cyclic.triangular,
        _check_triangular,
    ),
    "one-cycle": Kind(
        "rise from warmup_start to 1, then anneal to f",
        "Smith & Topin 2019",
        {
            **_warmup(_one_cycle_warmup, 0.04),
            **_final(4e-6),
            **_shape("cosine", {"cosine": 0, "linear": 0}),
        },
        decays.one_cycle,
    ),
    "wsd": Kind(
        "warmup, stable at 1, decay to f over the last `decay` with `shape`",
        "Hu et al. 2024; Hägele et al. 2024; Wen et al. 2024",
        {
            **_warmup(),
            "decay": Param("length", _wsd_decay, "length D of the final decay"),
            **_shape("1-sqrt", shapes.DECAY_SHAPES),
            **_final(),
        },
        wsd.wsd,
        _check_wsd,
    ),
    "wsd-s": Kind(
        "periods of stable-then-decay, back to the peak without re-warm",
        "Wen et al. 2024",
        {
            **_warmup(),
            "period": Param("length", REQUIRED, "length P of one stable+decay period"),
            "decay": Param("length", REQUIRED, "decay length D at the end of each period"),
            **_shape("1-sqrt", shapes.DECAY_SHAPES),
            **_final(),
        },
        wsd.wsd_s,
        _check_wsd_s,
    ),
    "infinite": Kind(
        "warmup, cooldown to c, constant c, optional anneal to f",
        "Ibrahim et al. 2024; Singh et al. 2025",
        {
            **_warmup(),
            "cooldown_end": Param("position", _cooldown_end, "position C where the cooldown ends"),
            "constant_ratio": Param("ratio", REQUIRED, "c, the constant phase's ratio"),
            "anneal_start": Param("position", ABSENT, "position A of the anneal; absent: none"),
            **_shape("cosine", shapes.COOLDOWN_SHAPES, "cooldown_shape"),
            **_shape("exponential", shapes.ANNEAL_SHAPES, "anneal_shape"),
            **_final(),
        },
        infinite.infinite,
        _check_infinite,
    ),
    "branch": Kind(
        "any-time cooldown: from the main branch's LR at `at`, decay to f",
        "Hägele et al. 2024; Wen et al. 2024",
        {
            **_warmup(),
            "at": Param("positive", REQUIRED, "main-branch position s the branch starts from"),
            "main": Param("table", {"kind": "constant"}, "the main branch's spec"),
            "main_total": Param("positive", _main_total, "length of the main branch's schedule"),
            "decay": Param("length", _whole, "decay length D"),
            **_shape("1-sqrt", shapes.DECAY_SHAPES),
            **_final(),
        },
        _branch,
        _check_branch,
    ),
    "refined": Kind(
        "from a previous run's gradient norms: m_t ~ w_t sum_{p>t} w_p, w = G^-1 (AdamW)",
        "Defazio et al. 2023",
        {
            **_warmup(),
            "grad_norms": Param("norms", REQUIRED, "array of numbers or path to a file of them"),
            "optimizer": Param(
                "choice",
                "adamw",
                "adamw: w = G^-1 of L1 norms (grad_norm_l1); sgd: w = G^-2 of L2 norms",
                tuple(refined.EXPONENT),
            ),
            "resample": Param("switch", True, "smooth on 10,000 resampled points (authors)"),
            "median_window": Param("count", refined.default_window, "median filter width"),
        },
        refined.refined,
    ),
    "rewarm": Kind(
        "warm up from the previous stage's LR (or 0) to the peak, re-decay to f",
        "Gupta et al. 2023; Ibrahim et al. 2024",
        {
            **_warmup(),
            **_shape("cosine", shapes.DECAY_SHAPES),
            **_final(),
            "start": Param(
                "choice",
                "previous",
                "warm up from the 'previous' stage's LR or 'zero'",
                ("previous", "zero"),
            ),
        },
        wsd.rewarm,
        _check_decaying,
    ),
}


# -- dispatch on KINDS ---------------------------------------------------------------


def resolve_spec(spec: Any, total: float, where: str) -> dict[str, Any]:
    """Check `spec` and return it with every default filled in (a new dict).

    Raises `UserError` starting with `where` and naming the key at fault.
    """
    if not isinstance(spec, dict):
        raise UserError(f"{where} must be a table with a 'kind', got {spec!r}")
    if isinstance(total, bool) or not isinstance(total, int | float) or not total > 0:
        raise UserError(f"{where}: the schedule's length must be > 0, got {total!r}")
    if "kind" not in spec:
        raise UserError(f"{where}.kind is required (one of: {', '.join(KINDS)})")
    kind = spec["kind"]
    if not isinstance(kind, str) or kind not in KINDS:
        raise UserError(f"{where}.kind must be one of {', '.join(KINDS)}; got {kind!r}")
    info = KINDS[kind]
    resolved = resolve_params(info.params, spec, float(total), where)
    if info.check is not None:
        info.check(resolved, float(total), where)
    return resolved


def multiplier(spec: dict[str, Any], total: float, start_ratio: float | None = None) -> Body:
    """m(t) of a resolved spec over positions clamped to [0, total], warmup included;
    `start_ratio`, when given, replaces the spec's warmup_start."""
    start = spec["warmup_start"] if start_ratio is None else start_ratio
    body = KINDS[spec["kind"]].make(spec, float(total))
    return decays.with_warmup(body, float(total), float(spec["warmup"]), float(start))
