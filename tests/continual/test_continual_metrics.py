"""Continual-evaluation metrics on hand-built record sequences with known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rewarm.continual import metrics as m
from rewarm.continual.timeline import build_timeline
from rewarm.runlog import EvalRecord, StageRecord


def ev(tokens: int, domain: str, loss: float, step: int | None = None) -> EvalRecord:
    return EvalRecord(
        step=tokens // 10 if step is None else step,
        tokens=tokens,
        stage=None,
        domain=domain,
        loss=loss,
        bits_per_byte=loss / math.log(2) / 4,
    )


def stage(index: int, event: str, tokens: int, name: str = "") -> StageRecord:
    return StageRecord(
        stage=name or f"s{index}", index=index, event=event, step=tokens // 10, tokens=tokens
    )


def config(*mixes: dict[str, float]) -> dict:
    return {"stages": [{"name": f"s{i}", "mix": mix} for i, mix in enumerate(mixes)]}


# Domain a is trained in stage 0 (tokens 0..100], b in stage 1 (100..200], c never.
CURVES = {
    "a": [5.0, 3.0, 2.0, 2.5, 2.2],
    "b": [6.0, 5.5, 5.0, 3.0, 2.0],
    "c": [7.0, 7.0, 7.0, 7.0, 7.0],
}
POSITIONS = [0, 50, 100, 150, 200]
STAGES = [stage(0, "start", 0), stage(0, "end", 100), stage(1, "start", 100), stage(1, "end", 200)]


def two_stage(curves=CURVES, drop: tuple[tuple[int, str], ...] = ()):
    evals = [
        ev(t, d, curve[j])
        for j, t in enumerate(POSITIONS)
        for d, curve in curves.items()
        if (t, d) not in drop
    ]
    return build_timeline(evals, STAGES, config({"a": 1.0}, {"b": 1.0, "a": 0.0}))


def test_loss_matrix_average_forgetting_and_transfer():
    tl = two_stage()
    r = m.loss_matrix(tl)
    np.testing.assert_allclose(r.values, [[2.0, 5.0, 7.0], [2.2, 2.0, 7.0]])
    assert r.substituted == ()
    assert m.average_seen_loss(tl, r) == pytest.approx([2.0, 2.1])
    forget = m.forgetting(tl, r)
    assert forget[0] == {}
    assert forget[1] == pytest.approx({"a": 0.2})
    bwt, terms = m.backward_transfer(tl, r)
    assert bwt == pytest.approx(-0.2) and terms == pytest.approx({"a": -0.2})
    # b starts stage 1 at 5.0; its first evaluation (the initial model) was 6.0.
    assert m.forward_transfer(tl) == {1: pytest.approx({"b": 1.0})}
    assert m.forward_transfer(tl, reference={"b": 4.5}) == {1: pytest.approx({"b": -0.5})}


def test_domain_never_trained_is_not_seen_or_forgotten():
    tl = two_stage()
    assert tl.first_stage("c") is None
    assert "c" not in m.seen_domains(tl, 1)
    assert all("c" not in row for row in m.forgetting(tl, m.loss_matrix(tl)))
    assert "c" not in m.windowed_forgetting(tl, 10)
    assert [g.domain for g in m.stability_gaps(tl)] == ["a"]


def test_stability_gap_that_never_recovers():
    (gap,) = m.stability_gaps(two_stage(), eps=0.01)
    assert (gap.stage, gap.domain) == (1, "a")
    assert gap.start_loss == 2.0 and gap.peak_loss == 2.5
    assert gap.gap == pytest.approx(0.5)
    assert gap.peak_tokens == 150 and gap.evals_to_peak == 1
    assert not gap.recovered
    assert gap.recover_evals is None and gap.recover_tokens is None


def test_stability_gap_recovery_counts_evaluations_after_the_peak():
    (gap,) = m.stability_gaps(two_stage(), eps=0.25)  # 2.2 <= 2.0 + 0.25
    assert gap.recovered and gap.recover_evals == 1
    assert gap.recover_tokens == 100 and gap.recover_steps == 10
    curves = {**CURVES, "a": [5.0, 3.0, 2.0, 2.5, 2.0]}
    (gap,) = m.stability_gaps(two_stage(curves), eps=0.0)
    assert gap.recovered and gap.recover_evals == 1
    # A loss that only falls has no gap: recovered at once.
    falling = {**CURVES, "a": [5.0, 3.0, 2.0, 1.9, 1.8]}
    (gap,) = m.stability_gaps(two_stage(falling))
    assert gap.gap == pytest.approx(-0.1) and gap.recovered and gap.recover_evals == 0


def test_missing_boundary_evaluation_uses_the_nearest_earlier_one_inside_the_stage():
    tl = two_stage(drop=((100, "a"),))
    r = m.loss_matrix(tl)
    assert r.values[0, 0] == 3.0  # read at tokens 50
    assert r.substituted == ((0, "a", 50),)
    (gap,) = m.stability_gaps(tl, eps=0.01)
    assert gap.start_loss == 3.0 and gap.recovered  # 2.2 <= 3.0 + eps
    # Nothing inside stage 1 for b: the cell is missing, not borrowed from stage 0.
    tl = two_stage(drop=((150, "b"), (200, "b")))
    r = m.loss_matrix(tl)
    assert math.isnan(r.values[1, 1])
    assert m.average_seen_loss(tl, r)[1] == pytest.approx(2.2)


def test_worst_case_loss_and_wc_loss():
    tl = two_stage()
    wc = m.worst_case(tl)
    # Stage 0: WC-loss is the current domain's loss (no old domain yet).
    np.testing.assert_allclose(wc.wc_loss[:3], [5.0, 3.0, 2.0])
    # Stage 1 (k = 2): 1/2 * L_b + 1/2 * worst a after tokens 100 (2.5 both times).
    np.testing.assert_allclose(wc.wc_loss[3:], [0.5 * 3.0 + 0.5 * 2.5, 0.5 * 2.0 + 0.5 * 2.5])
    assert wc.final_worst == {"a": 2.5}


def test_wc_loss_is_de_langes_mean_over_tasks_by_default():
    # Stage 0 trains a and c together, stage 1 trains b. At tokens 200: L_b = 2.0,
    # worst case of a after its stage = 2.5, of c = 7.0.
    evals = [ev(t, d, curve[j]) for j, t in enumerate(POSITIONS) for d, curve in CURVES.items()]
    tl = build_timeline(evals, STAGES, config({"a": 0.5, "c": 0.5}, {"b": 1.0}))
    tasks = m.worst_case(tl)
    assert tasks.definition == "tasks"
    # De Lange et al.: WC-ACC_k = 1/k A(T_k) + (1 - 1/k) min-ACC with k = 3 tasks so far
    # is the plain mean over the three domains.
    assert tasks.wc_loss[-1] == pytest.approx((2.0 + 2.5 + 7.0) / 3)
    stages = m.worst_case(tl, definition="stages")
    # Weighted by stage number (k = 2): the two old domains share one half.
    assert stages.wc_loss[-1] == pytest.approx(0.5 * 2.0 + 0.5 * (2.5 + 7.0) / 2)
    with pytest.raises(ValueError, match="definition"):
        m.worst_case(tl, definition="min")


def test_windowed_forgetting_window_limits_the_rise():
    curves = {"a": [5.0, 2.0, 2.0, 2.1, 2.2, 2.3, 2.4], "b": [6.0] * 7}
    positions = [0, 50, 100, 125, 150, 175, 200]
    evals = [ev(t, d, c[j]) for j, t in enumerate(positions) for d, c in curves.items()]
    tl = build_timeline(evals, STAGES, config({"a": 1.0}, {"b": 1.0}))
    # From tokens 100 on: 2.0, 2.1, 2.2, 2.3, 2.4.
    assert m.windowed_forgetting(tl, 2)["a"] == pytest.approx(0.1)
    assert m.windowed_forgetting(tl, 3)["a"] == pytest.approx(0.2)
    assert m.windowed_forgetting(tl, 100)["a"] == pytest.approx(0.4)


def test_one_stage_run_has_no_transfer_or_gap():
    evals = [ev(t, "a", 5.0 - t / 100) for t in (0, 100, 200)]
    tl = build_timeline(evals, [stage(0, "start", 0), stage(0, "end", 200)], config({"a": 1.0}))
    r = m.loss_matrix(tl)
    assert r.values.shape == (1, 1) and r.values[0, 0] == 3.0
    assert m.backward_transfer(tl, r) == (None, {})
    assert m.forgetting(tl, r) == [{}]
    assert m.forward_transfer(tl) == {}
    assert m.stability_gaps(tl) == []
    assert m.windowed_forgetting(tl, 10) == {}  # only the final evaluation after its stage


def test_unfinished_stage_ends_at_the_last_logged_position():
    evals = [ev(t, d, 3.0) for t in (0, 100, 150) for d in ("a", "b")]
    tl = build_timeline(
        evals,
        [stage(0, "start", 0), stage(0, "end", 100), stage(1, "start", 100)],
        config({"a": 1.0}, {"b": 1.0}),
        last_tokens=170,
    )
    assert tl.stages[1].end == 170 and not tl.stages[1].complete
    assert m.loss_matrix(tl).substituted == ((1, "a", 150), (1, "b", 150))


def test_later_record_wins_at_the_same_position():
    evals = [ev(0, "a", 5.0), ev(100, "a", 2.0), ev(100, "a", 2.5)]
    tl = build_timeline(evals, [stage(0, "start", 0), stage(0, "end", 100)], config({"a": 1}))
    assert tl.tokens.tolist() == [0, 100]
    assert m.loss_matrix(tl).values[0, 0] == 2.5


def test_bits_per_byte_and_compute():
    assert m.bits_per_byte(math.log(2) * 3, 1.5) == pytest.approx(2.0)
    tl = two_stage()
    c = m.compute(tl, flops_per_token=1000.0, eval_tokens_per_domain=8)
    assert c.tokens_by_stage == (100, 100) and c.tokens == 200
    assert c.flops == 200_000.0
    assert c.eval_tokens == 15 * 8 and c.eval_flops == pytest.approx(15 * 8 * 1000 / 3)
    c = m.compute(tl, non_embedding_params=10)
    assert c.flops == 200 * 60 and "6 x" in c.flops_source
    assert m.compute(tl).flops is None


def brute_max_rise(v: list[float], w: int) -> float:
    best = 0.0
    for n in range(len(v)):
        for mm in range(max(0, n - w + 1), n):
            best = max(best, v[n] - v[mm])
    return best


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.floats(0, 10, allow_nan=False), min_size=1, max_size=30),
    st.integers(1, 40),
)
def test_max_rise_matches_brute_force(values, window):
    assert m.max_rise(np.array(values), window) == pytest.approx(brute_max_rise(values, window))


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(1, 8, allow_nan=False), min_size=6, max_size=6))
def test_forgetting_is_rise_over_best_earlier_boundary(losses):
    """Three stages of one domain each; boundary losses of `a` drawn at random."""
    positions = [0, 100, 200, 300]
    stages = []
    for k in range(3):
        stages += [stage(k, "start", 100 * k), stage(k, "end", 100 * (k + 1))]
    a = [6.0, losses[0], losses[1], losses[2]]
    evals = [ev(t, "a", a[j]) for j, t in enumerate(positions)]
    evals += [ev(t, "b", losses[3 + min(j, 2)]) for j, t in enumerate(positions)]
    tl = build_timeline(evals, stages, config({"a": 1}, {"b": 1}, {"b": 1}))
    r = m.loss_matrix(tl)
    f = m.forgetting(tl, r)
    assert f[1]["a"] == pytest.approx(a[2] - a[1])
    assert f[2]["a"] == pytest.approx(a[3] - min(a[1], a[2]))
    bwt, _ = m.backward_transfer(tl, r)
    assert bwt == pytest.approx(a[1] - a[3])


EVALS = [ev(t, d, c[j]) for j, t in enumerate(POSITIONS) for d, c in CURVES.items()]


@settings(max_examples=30, deadline=None)
@given(st.permutations(EVALS), st.permutations(STAGES))
def test_metrics_do_not_depend_on_record_order(evals, stages):
    """Records are grouped by position and stage index, not by file order."""
    tl = build_timeline(evals, stages, config({"a": 1.0}, {"b": 1.0}))
    ref = two_stage()
    assert set(tl.domains) == set(ref.domains)
    r, r0 = m.loss_matrix(tl), m.loss_matrix(ref)
    for d in ref.domains:
        np.testing.assert_array_equal(
            r.values[:, r.domains.index(d)], r0.values[:, r0.domains.index(d)]
        )
    assert m.backward_transfer(tl, r) == m.backward_transfer(ref, r0)
    assert m.stability_gaps(tl) == m.stability_gaps(ref)
    np.testing.assert_array_equal(m.worst_case(tl).wc_loss, m.worst_case(ref).wc_loss)
