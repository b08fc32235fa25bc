"""Seeds aggregation and the "what holds" rule, on synthetic numbers."""

from __future__ import annotations

import pytest

from rewarm.demo import claims, seeds
from rewarm.demo.table import ArmResult

BASE = dict(
    old_loss=4.0,
    new_loss=4.0,
    mean_bpb=0.0,
    max_gap=None,
    old_vs_unigram=None,
    new_vs_unigram=None,
    compute_total=1.0,
    tokens=100,
)


def result(arm: str, seed: int, **values: float | None) -> ArmResult:
    fields = {"old_bpb": 2.0, "new_bpb": 2.0, "old_forgetting": None, "compute": 0.45}
    return ArmResult(arm=arm, seed=seed, **{**BASE, **fields, **values})


def test_decide_by_two_standard_errors():
    assert claims.decide([-0.10, -0.12, -0.11])[2] == claims.HOLDS
    assert claims.decide([0.10, 0.12, 0.11])[2] == claims.FAILS
    assert claims.decide([-0.10, 0.10, 0.01])[2] == claims.NOISE
    mean, se, verdict = claims.decide([-0.3])
    assert (mean, se, verdict) == (-0.3, None, claims.UNKNOWN)
    # exact claims (set by the config) are decided by the sign, even with one seed
    assert claims.decide([-0.05], exact=True)[2] == claims.HOLDS
    assert claims.decide([0.05], exact=True)[2] == claims.FAILS
    # around the boundary: |d| must exceed 2 SE (here SE = 0.05)
    for d, want in ((0.099, claims.NOISE), (0.101, claims.FAILS), (-0.101, claims.HOLDS)):
        mean, se, verdict = claims.decide([d - 0.05 * 3**0.5, d + 0.05 * 3**0.5, d])
        assert mean == pytest.approx(d) and se == pytest.approx(0.05) and verdict == want


def test_paired_by_seed():
    """Seeds move both arms together: pairing sees a clear effect that a plain comparison
    of the two spreads would call noise."""
    rs = []
    for s, level in enumerate((1.0, 0.5, 1.5)):  # seed noise far larger than the effect
        rs.append(result("rewarm", s, old_forgetting=level))
        rs.append(result("rewarm+replay", s, old_forgetting=level - 0.1 - 0.001 * s))
    (f,) = claims.evaluate(claims.demo_claims("docs", "code")[:1], rs)
    assert f.verdict == claims.HOLDS and f.n == 3 and f.diff == pytest.approx(-0.101)


def test_every_demo_claim_on_three_seeds():
    rs = []
    for s in range(3):
        wiggle = 0.01 * (s - 1)
        rs += [
            result("retrain", s, old_bpb=2.00 + wiggle, new_bpb=2.00 + wiggle, compute=1.0),
            result("naive", s, old_bpb=2.30, new_bpb=2.20 + wiggle, old_forgetting=0.4),
            result("rewarm", s, old_bpb=2.30, new_bpb=2.00 + wiggle, old_forgetting=0.4 + wiggle),
            # replay: clearly less forgetting; vs retrain: noise on old, worse on new
            result(
                "rewarm+replay",
                s,
                old_bpb=2.00 + 2 * wiggle * (-1) ** s,
                new_bpb=2.10,
                old_forgetting=0.2,
            ),
        ]
    found = {f.claim.text: f for f in claims.evaluate(claims.demo_claims("docs", "code"), rs)}
    verdict = {text: f.verdict for text, f in found.items()}
    assert verdict["replay reduces docs forgetting"] == claims.HOLDS
    assert verdict["re-warming adapts better to code than no re-warm"] == claims.HOLDS
    assert verdict["rewarm+replay ends below retrain on docs"] == claims.NOISE
    assert verdict["rewarm+replay ends below retrain on code"] == claims.FAILS
    assert verdict["rewarm+replay ends within 1% of retrain on code"] == claims.FAILS
    assert verdict["rewarm+replay trains at most half of retrain's tokens after stage 1"] == (
        claims.HOLDS
    )
    # infinite+replay did not run: its claims are left out, not guessed
    assert not any(t.startswith("infinite+replay") for t in found)
    lines = claims.format_findings(list(found.values()), seeds=3)
    assert "3 seeds" in lines[0] and "2 standard errors" in lines[0]
    assert any(line.strip().startswith("does not hold") for line in lines[1:])


def test_unigram_bounds_are_claims_decided_by_the_seeds():
    """Item 4's bounds: retrain <= 0.75 x unigram on both corpora, every continual arm
    <= 0.8 x on the corpus it trained last; decided from the seeds like any claim."""
    rs = []
    for s in range(3):
        w = 0.002 * (s - 1)
        rs += [
            result("retrain", s, old_vs_unigram=0.70 + w, new_vs_unigram=0.749 + 3 * w),
            result("naive", s, new_vs_unigram=0.70 + w),
            result("rewarm", s, new_vs_unigram=0.81 + w),
        ]
    found = claims.evaluate(claims.demo_claims("docs", "code"), rs)
    verdict = {f.claim.text: f.verdict for f in found}
    assert verdict["retrain ends below 0.75 x the unigram on docs"] == claims.HOLDS
    assert verdict["retrain ends below 0.75 x the unigram on code"] == claims.NOISE
    assert verdict["naive ends below 0.8 x the unigram on code"] == claims.HOLDS
    assert verdict["rewarm ends below 0.8 x the unigram on code"] == claims.FAILS
    (line,) = [x for x in claims.format_findings(found, seeds=3) if "naive ends below 0.8" in x]
    assert "0.700 ± 0.001 x unigram (bound 0.8)" in line


def test_spread_and_cells():
    sp = seeds.spread([1.0, 2.0, None, float("nan"), 3.0])
    assert (sp.mean, sp.sd, sp.n) == (2.0, 1.0, 3)
    assert seeds.spread([None]).mean is None and seeds.spread([4.0]).sd is None
    assert seeds.cell(sp, 3) == "2.000±1.000"
    assert seeds.cell(sp, 3, signed=True) == "+2.000±1.000"
    assert seeds.cell(sp, 2, exact=True) == "2.00"
    rows = seeds.aggregate_cells(
        [result("naive", 1, old_bpb=2.2), result("naive", 0, old_bpb=2.0), result("rewarm", 0)]
    )
    assert [r[0] for r in rows] == ["naive", "rewarm"]
    assert rows[0][1] == f"2.100±{0.2 / 2**0.5:.3f}" and rows[1][1] == "2.000"
