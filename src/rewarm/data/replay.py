"""Replay specs: every policy, its parameters and weighting, and the spec's validation.

A stage's `replay = { fraction, policy, domains, alpha, interval, source }` replaces
a share `fraction` of every global batch with windows from domains trained in
earlier stages (replacement, as in Ibrahim et al. 2024, "Simple and Scalable
Strategies to Continually Pre-train LLMs"; the batch size never changes).

One plain dict, `POLICIES`, maps a spec's `policy` to its `Policy`: a one-line
meaning, its source, the parameters it reads and its domain weights (normalised to
sum 1 by the sampler). Adding or changing a policy is an edit of that dict and the
functions it names; nothing registers itself.

- `uniform`: w_j = 1.
- `proportional`: w_j = tokens drawn from j in all earlier stages (replay included).
- `power-law`: w_j = (s - last_j)^-alpha, s the current optimizer step of the run and
  last_j the last step that showed domain j, own data or replay (Gandhi et al. 2024,
  "Catastrophic Interference is Mitigated in Naturalistic Power-Law Learning
  Environments": the chance of revisiting a task decays as a power law of the time
  since it was last seen). The weights change every step (`rewarm.data.recency`).
- `stage-recency`: w_j = (k - last_j)^-alpha with k the current stage index and last_j
  the last earlier stage whose mix trained j: recency in whole stages, blind to replay
  visits (what `power-law` computed before it followed the paper).
- `recall-interval`: domains weighted as `proportional`; each replayed window is
  trained `interval` (V) times within its step, so a step replays R/V distinct
  windows and the rest between two recalls of a window grows V-fold at equal compute
  (Kang et al. 2025, "Do Your Best and Get Enough Rest for Continual Learning": V
  augmented views per sample in one batch, V = 4 in the authors' commands). Text
  has no augmentations, so the V views are identical copies: within the step they
  weigh the window's gradient V times; what carries over is the longer rest.

A domain that no earlier stage trained can still be replayed with `source = "all"`:
it stands for data the model saw before this run (e.g. a sample of a Hugging Face
model's pre-training corpus). It counts as trained just before stage 0 (stage age
k + 1, last seen at step -1) and, for `proportional`, with weight = its whole split.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from rewarm.config import Config
from rewarm.errors import UserError


@dataclass(frozen=True)
class History:
    """What a policy may weigh the replay domains by (one entry per replay domain)."""

    ages: np.ndarray
    """Stages since each domain was last trained (k - last_j; k + 1 for pre-run data)."""
    since_seen: np.ndarray
    """Optimizer steps since each domain was last shown, own data or replay (>= 1); at
    the stage's first step for static policies, updated every step for `age_weight` ones."""
    seen_rows: np.ndarray
    """Rows drawn from each domain in all earlier stages, replay included."""
    windows: np.ndarray
    """Training windows of each domain (its whole split, for pre-run data)."""


@dataclass(frozen=True)
class Policy:
    summary: str
    source: str
    params: tuple[str, ...]
    """Keys of `PARAMS` this policy reads."""
    weights: Callable[[dict[str, Any], History], np.ndarray]
    """(resolved spec, history) -> one unnormalised weight per replay domain."""
    recall: bool = False
    """Show each replayed window `interval` times within its step (`MixPlan.views`)."""
    age_weight: Callable[[dict[str, Any], float], float] | None = None
    """(resolved spec, steps since a domain was last shown) -> its weight, re-evaluated
    every step (`rewarm.data.recency`); None: the weights are fixed for the stage."""


def _uniform(spec: dict[str, Any], h: History) -> np.ndarray:
    return np.ones(len(h.ages))


def _proportional(spec: dict[str, Any], h: History) -> np.ndarray:
    # a domain never trained in this run is pre-run data: weight = its whole train split
    weights = np.where(h.seen_rows > 0, h.seen_rows, h.windows).astype(np.float64)
    return weights if weights.sum() > 0 else np.ones(len(weights))


def _power_law(spec: dict[str, Any], h: History) -> np.ndarray:
    return h.since_seen.astype(np.float64) ** -float(spec["alpha"])


def _power_law_age(spec: dict[str, Any], age: float) -> float:
    return age ** -float(spec["alpha"])


def _stage_recency(spec: dict[str, Any], h: History) -> np.ndarray:
    return h.ages.astype(np.float64) ** -float(spec["alpha"])


POLICIES: dict[str, Policy] = {
    "uniform": Policy("w_j = 1", "-", (), _uniform),
    "proportional": Policy(
        "w_j = rows drawn from j in earlier stages", "Ibrahim et al. 2024", (), _proportional
    ),
    "power-law": Policy(
        "w_j = (steps since j was last shown, replay included)^-alpha, every step",
        "Gandhi et al. 2024",
        ("alpha",),
        _power_law,
        age_weight=_power_law_age,
    ),
    "stage-recency": Policy(
        "w_j = (stages since a stage's mix trained j)^-alpha", "-", ("alpha",), _stage_recency
    ),
    "recall-interval": Policy(
        "proportional; each replayed window trained `interval` times in its step, "
        "then resting `interval` times longer",
        "Kang et al. 2025",
        ("interval",),
        _proportional,
        recall=True,
    ),
}


def _is_number(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool)


def _check_alpha(value: Any, where: str) -> None:
    if not _is_number(value) or value <= 0:
        raise UserError(f"{where}.alpha must be a number > 0, got {value!r}")


def _check_interval(value: Any, where: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise UserError(
            f"{where}.interval must be an integer >= 1 (copies of a replayed window per "
            f"step), got {value!r}"
        )


@dataclass(frozen=True)
class PolicyParam:
    default: Any
    check: Callable[[Any, str], None]


PARAMS: dict[str, PolicyParam] = {
    "alpha": PolicyParam(1.0, _check_alpha),
    "interval": PolicyParam(4, _check_interval),
}
"""Policy parameters. Each is checked whenever given, whatever the policy, so a bad
value is never silently ignored."""

SOURCES = ("seen", "all")
KEYS = ("fraction", "policy", "domains", *PARAMS, "source")
DEFAULTS: dict[str, Any] = {
    "fraction": 0.0,
    "policy": "uniform",
    **{k: p.default for k, p in PARAMS.items()},
    "source": "seen",
}


def trained_before(cfg: Config, stage_index: int) -> list[str]:
    """Domains with a positive mix weight in some stage before `stage_index` (declared order)."""
    seen = {d for st in cfg.stages[:stage_index] for d, w in st.mix.items() if w > 0}
    return [d for d in cfg.domains if d in seen]


def last_trained(cfg: Config, stage_index: int, domain: str) -> int:
    """Index of the last stage before `stage_index` that trained `domain`; -1 when none did
    (pre-run data replayed with `source = "all"` counts as trained just before stage 0)."""
    trained = [j for j in range(stage_index) if cfg.stages[j].mix.get(domain, 0) > 0]
    return max(trained, default=-1)


def resolve(replay: dict[str, Any], cfg: Config, stage_index: int) -> dict[str, Any]:
    """The replay spec with defaults filled in (call after validate_replay)."""
    out = {**DEFAULTS, **replay}
    out["fraction"] = float(out["fraction"])
    if "domains" not in replay:
        out["domains"] = trained_before(cfg, stage_index)
    return out


def validate_replay(replay: dict[str, Any], cfg: Config, stage_index: int, where: str) -> None:
    """Check a stage's replay table; raise UserError starting with `where`."""
    for key in replay:
        if key not in KEYS:
            raise UserError(f"{where}: unknown key {key!r} (known: {', '.join(KEYS)})")
    source = replay.get("source", DEFAULTS["source"])
    if stage_index == 0 and (source != "all" or "domains" not in replay):
        raise UserError(
            f"{where}: the first stage cannot replay (no earlier stage); to replay data the "
            'model saw before this run, name it in domains and set source = "all"'
        )
    frac = replay.get("fraction", 0.0)
    if not _is_number(frac) or not 0 <= frac < 1:
        raise UserError(f"{where}.fraction must be a number in [0, 1), got {frac!r}")
    policy = replay.get("policy", DEFAULTS["policy"])
    if policy not in POLICIES:
        raise UserError(f"{where}.policy must be one of {', '.join(POLICIES)}, got {policy!r}")
    if source not in SOURCES:
        raise UserError(f"{where}.source must be 'seen' or 'all', got {source!r}")
    for key, param in PARAMS.items():
        param.check(replay.get(key, param.default), where)
    earlier = trained_before(cfg, stage_index)
    domains = replay.get("domains", earlier)
    if not isinstance(domains, list) or not all(isinstance(d, str) for d in domains):
        raise UserError(f"{where}.domains must be an array of domain names")
    for d in domains:
        if d not in cfg.domains:
            raise UserError(f"{where}.domains names an undeclared domain {d!r}")
        if d not in earlier and source != "all":
            raise UserError(
                f"{where}.domains: {d!r} is not trained in an earlier stage "
                f'(trained before: {", ".join(earlier) or "none"}); set source = "all" to '
                "replay data from before this run"
            )
    if frac > 0 and not domains:
        raise UserError(f"{where}: no earlier-stage domain to replay")
