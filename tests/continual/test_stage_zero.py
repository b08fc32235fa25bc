"""The starting model is stage 0 for runs from a trained model (`hf:` / `checkpoint:`)."""

from __future__ import annotations

import math

import pytest

from rewarm.continual import metrics as m
from rewarm.continual.timeline import build_timeline
from rewarm.runlog import EvalRecord, StageRecord

# One stage that trains "new" only; "old" is what the starting model already knew.
LOSSES = {
    "old": [2.0, 2.6, 2.4, 2.3],
    "new": [5.0, 3.5, 3.0, 2.8],
}
POSITIONS = [0, 100, 200, 300]


def _records():
    evals = [
        EvalRecord(step=t // 10, tokens=t, stage="s", domain=d, loss=curve[j], bits_per_byte=None)
        for j, t in enumerate(POSITIONS)
        for d, curve in LOSSES.items()
    ]
    stages = [
        StageRecord(stage="cont", index=0, event="start", step=0, tokens=0),
        StageRecord(stage="cont", index=0, event="end", step=30, tokens=300),
    ]
    return evals, stages


def _config(init: str) -> dict:
    return {
        "model": {"init": init},
        "domains": {"old": {}, "new": {}},
        "stages": [{"name": "cont", "mix": {"new": 1.0}}],
    }


@pytest.mark.parametrize("init", ["hf:/models/base", "checkpoint:runs/a/checkpoints/step_1"])
def test_continued_model_is_measured_against_its_start(init):
    tl = build_timeline(*_records(), _config(init))
    assert tl.has_initial and [s.name for s in tl.stages] == ["start", "cont"]
    assert [tl.number(k) for k in range(2)] == [0, 1]
    assert len(tl.trained_stages) == 1
    r = m.loss_matrix(tl)
    assert r.values[0].tolist() == [2.0, 5.0] and r.values[1].tolist() == [2.3, 2.8]
    f = m.forgetting(tl, r)
    assert f[-1]["old"] == pytest.approx(0.3)  # against the start, not n/a
    bwt, terms = m.backward_transfer(tl, r)
    assert bwt == pytest.approx(-0.3) and set(terms) == {"old"}
    (gap,) = m.stability_gaps(tl)
    assert (gap.domain, gap.start_loss, gap.peak_loss) == ("old", 2.0, 2.6)
    wc = m.worst_case(tl)
    # WC-loss(t) = 1/2 L_new(t) + 1/2 worst_old(t), k = 2 stages counting the start
    assert wc.wc_loss[-1] == pytest.approx(0.5 * 2.8 + 0.5 * 2.6)
    assert wc.final_worst == {"old": 2.6}
    assert m.compute(tl).tokens == 300


def test_run_from_scratch_has_no_stage_zero():
    tl = build_timeline(*_records(), _config("scratch"))
    assert not tl.has_initial and [tl.number(k) for k in range(len(tl.stages))] == [1]
    r = m.loss_matrix(tl)
    assert m.forgetting(tl, r) == [{}]
    assert m.stability_gaps(tl) == []
    assert math.isnan(m.worst_case(tl).wc_loss[0]) is False
