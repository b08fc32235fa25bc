"""What the demo's seeds support: each comparison decided by a stated rule, by code.

A claim says that one arm ends lower than another on one table field ("replay
reduces old-corpus forgetting": rewarm+replay's forgetting < rewarm's), or lower
than a bound. Its evidence is the paired difference per seed,

    d_s = a_s - factor x b_s        (or a_s - bound),

a and b being the two arms' values with the same seed s (same initialisation and
data order up to the arms' own differences, so pairing removes the shared noise).
With n seeds, d = mean(d_s) and SE = sd(d_s) / sqrt(n) (sample sd, ddof = 1). The
rule:

- **holds**: d < 0 and |d| > 2 SE;
- **does not hold**: d > 0 and |d| > 2 SE (the opposite is supported);
- **within noise**: |d| <= 2 SE;
- **noise unknown**: one seed (d is printed, nothing is decided; run --seeds 3).

A claim about values the config fixes (compute ratios) is `exact`: decided by the
sign of d alone, with any number of seeds. Two standard errors is about a 95%
interval for a normal mean; with 2-5 seeds the t distribution's wider tails make
it a lenient test, so read "holds" on 3 seeds as "consistent in sign and size",
not as a significance level.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from rewarm.demo.table import ArmResult

Z = 2.0
"""Standard errors a mean paired difference must exceed to decide a claim."""
RETRAIN_BOUND = 0.75
"""The models learn: retrain's final bits per byte / the unigram's, on both corpora."""
CONTINUAL_BOUND = 0.8
"""... and every continual arm's, on the corpus it trained last."""
HOLDS, FAILS, NOISE, UNKNOWN = "holds", "does not hold", "within noise", "noise unknown"


@dataclass(frozen=True, kw_only=True)
class Claim:
    text: str
    """What is claimed, e.g. "replay reduces docs forgetting"."""
    arm: str
    field: str
    """An `ArmResult` field; lower is better for every one the claims use."""
    versus: str | None = None
    """The other arm (claim: arm < factor x versus); None: compare with `bound`."""
    factor: float = 1.0
    bound: float | None = None
    exact: bool = False
    """Set by the config (no noise): decided by the sign alone."""
    unit: str = "bpb"


@dataclass(frozen=True, kw_only=True)
class Finding:
    claim: Claim
    n: int
    """Seeds with both values."""
    diff: float
    """Mean paired difference d (< 0 supports the claim)."""
    se: float | None
    """Its standard error; None with one seed or for an exact claim."""
    verdict: str


def decide(diffs: Sequence[float], exact: bool = False) -> tuple[float, float | None, str]:
    """(mean, standard error, verdict) of paired differences by the rule above."""
    if not diffs:
        raise ValueError("no paired differences")
    mean = statistics.fmean(diffs)
    if exact:
        return mean, None, HOLDS if mean < 0 else FAILS
    if len(diffs) < 2:
        return mean, None, UNKNOWN
    se = statistics.stdev(diffs) / math.sqrt(len(diffs))
    if abs(mean) > Z * se:
        return mean, se, HOLDS if mean < 0 else FAILS
    return mean, se, NOISE


def demo_claims(old: str, new: str) -> list[Claim]:
    """The comparisons the demo exists to test (docs/demo.md, "What holds")."""
    out = [
        Claim(
            text=f"replay reduces {old} forgetting",
            arm="rewarm+replay",
            versus="rewarm",
            field="old_forgetting",
        ),
        Claim(
            text=f"re-warming adapts better to {new} than no re-warm",
            arm="rewarm",
            versus="naive",
            field="new_bpb",
        ),
    ]
    for arm in ("rewarm+replay", "infinite+replay"):
        for name, field in ((old, "old_bpb"), (new, "new_bpb")):
            out.append(
                Claim(
                    text=f"{arm} ends below retrain on {name}",
                    arm=arm,
                    versus="retrain",
                    field=field,
                )
            )
    for name, field in ((old, "old_vs_unigram"), (new, "new_vs_unigram")):
        out.append(
            Claim(
                text=f"retrain ends below 0.75 x the unigram on {name}",
                arm="retrain",
                field=field,
                bound=RETRAIN_BOUND,
                unit="x unigram",
            )
        )
    for arm in ("naive", "rewarm", "rewarm+replay", "infinite+replay"):
        out.append(
            Claim(
                text=f"{arm} ends below 0.8 x the unigram on {new}",
                arm=arm,
                field="new_vs_unigram",
                bound=CONTINUAL_BOUND,
                unit="x unigram",
            )
        )
    for name, field in ((old, "old_bpb"), (new, "new_bpb")):
        out.append(
            Claim(
                text=f"rewarm+replay ends within 1% of retrain on {name}",
                arm="rewarm+replay",
                versus="retrain",
                field=field,
                factor=1.01,
            )
        )
    out.append(
        Claim(
            text="rewarm+replay trains at most half of retrain's tokens after stage 1",
            arm="rewarm+replay",
            field="compute",
            bound=0.5,
            exact=True,
            unit="of retrain's tokens",
        )
    )
    return out


def _value(r: ArmResult | None, field: str) -> float | None:
    value = None if r is None else getattr(r, field)
    return None if value is None or math.isnan(value) else float(value)


def evaluate(claims: Sequence[Claim], results: Sequence[ArmResult]) -> list[Finding]:
    """A finding for every claim whose arms ran (with at least one paired seed)."""
    by_key = {(r.arm, r.seed): r for r in results}
    seeds = sorted({r.seed for r in results})
    out = []
    for c in claims:
        diffs = []
        for s in seeds:
            a = _value(by_key.get((c.arm, s)), c.field)
            if c.versus is None:
                b = c.bound
            else:
                other = _value(by_key.get((c.versus, s)), c.field)
                b = None if other is None else c.factor * other
            if a is not None and b is not None:
                diffs.append(a - b)
        if diffs:
            mean, se, verdict = decide(diffs, c.exact)
            out.append(Finding(claim=c, n=len(diffs), diff=mean, se=se, verdict=verdict))
    return out


def _evidence(f: Finding) -> str:
    c = f.claim
    if c.versus is None:
        value = f.diff + (c.bound or 0.0)
        if c.exact:
            return f"{c.arm}: {value:.3f} {c.unit} (bound {c.bound:g}; set by the config)"
        spread = "" if f.se is None else f" ± {f.se:.3f}"
        return f"{c.arm}: {value:.3f}{spread} {c.unit} (bound {c.bound:g})"
    other = c.versus if c.factor == 1.0 else f"{c.factor:g} x {c.versus}"
    spread = "" if f.se is None else f" ± {f.se:.3f}"
    return f"{c.arm} - {other} = {f.diff:+.3f}{spread} {c.unit}"


def format_findings(findings: Sequence[Finding], seeds: int) -> list[str]:
    """The "what holds" block: one line per claim, the verdict first."""
    if seeds >= 2:
        rule = (
            f"decided from {seeds} seeds: holds / does not hold when the mean paired "
            f"difference exceeds {Z:g} standard errors, else within noise"
        )
    else:
        rule = "one seed: the noise is unknown, so nothing is decided (run --seeds 3)"
    lines = [f"What holds ({rule}):"]
    width = max((len(f.verdict) for f in findings), default=0)
    for f in findings:
        lines.append(f"  {f.verdict.ljust(width)}  {f.claim.text}: {_evidence(f)}")
    return lines
