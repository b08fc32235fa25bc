"""Task-level continual metrics (`rewarm.continual.task_metrics`) on hand-made records: the
loss formulas with the sign of accuracy, a lower-is-better metric flipped, tasks
about knowledge from before the run, and recovery within the reported stderr."""

from __future__ import annotations

import math

import pytest

from rewarm.continual import task_metrics as tc
from rewarm.continual.timeline import Stage
from rewarm.runlog import TaskRecord

STAGES = (
    Stage(index=0, name="one", start=0, end=100, start_step=0, end_step=10, domains=("a",),
          complete=True, tokens_by_domain={}),
    Stage(index=1, name="two", start=100, end=200, start_step=10, end_step=20, domains=("b",),
          complete=True, tokens_by_domain={}),
)  # fmt: skip


def _records(task, metric, points, *, domain, better=True, stderr=None):
    return [
        TaskRecord(step=t // 10, tokens=t, stage="one" if t <= 100 else "two", task=task,
                   metric=metric, value=v, stderr=stderr, higher_is_better=better,
                   samples=100, domain=domain)
        for t, v in points
    ]  # fmt: skip


# X: knowledge of domain a (stage 1's), learnt then partly forgotten.
X = _records("x", "acc", [(0, 0.3), (50, 0.6), (100, 0.9), (150, 0.5), (200, 0.7)],
             domain="a", stderr=0.05)  # fmt: skip
# Y: a benchmark about knowledge from before the run (no domain).
Y = _records("y", "acc", [(0, 0.8), (50, 0.6), (100, 0.7), (150, 0.75), (200, 0.78)], domain=None)
# Z: perplexity of domain a: lower is better.
Z = _records("z", "ppl", [(0, 50.0), (100, 10.0), (200, 20.0)], domain="a", better=False)


@pytest.fixture
def summary():
    s = tc.summarize(X + Y + Z, STAGES)
    assert s is not None
    return s


def test_matrix_forgetting_and_bwt_with_accuracy_signs(summary):
    labels = [c.label for c in summary.grid.columns]
    assert labels == ["x acc", "y acc", "z ppl"]
    assert summary.matrix.tolist() == [[0.9, 0.7, 10.0], [0.7, 0.78, 20.0]]
    f0, f1 = summary.forgetting
    # x is first trained in stage 0: no forgetting there; y (pre-run) is measured
    # against the run's first evaluation from stage 0 on.
    assert set(f0) == {"y acc"} and f0["y acc"] == pytest.approx(0.8 - 0.7)
    assert f1["x acc"] == pytest.approx(0.9 - 0.7)
    assert f1["y acc"] == pytest.approx(0.8 - 0.78)
    assert f1["z ppl"] == pytest.approx(20.0 - 10.0)  # perplexity rose: forgotten (> 0)
    assert summary.bwt_terms == pytest.approx({"x acc": -0.2, "y acc": -0.02, "z ppl": -10.0})
    assert summary.bwt == pytest.approx((-0.2 - 0.02 - 10.0) / 3)
    assert summary.final["x acc"] == (0.7, 0.05) and summary.final["y acc"] == (0.78, None)


def test_stability_gaps_and_recovery_within_the_stderr(summary):
    gaps = {(g.stage, g.label): g for g in summary.gaps}
    assert set(gaps) == {(0, "y acc"), (1, "x acc"), (1, "y acc"), (1, "z ppl")}
    x = gaps[(1, "x acc")]
    assert (x.start_value, x.low_value, x.low_tokens) == (0.9, 0.5, 150)
    assert x.gap == pytest.approx(0.4) and x.eps == 0.05
    assert not x.recovered  # 0.7 < 0.9 - 0.05
    y0 = gaps[(0, "y acc")]
    assert y0.gap == pytest.approx(0.2) and y0.eps == tc.EPS and not y0.recovered
    y1 = gaps[(1, "y acc")]
    assert y1.gap == pytest.approx(-0.05) and y1.recovered and y1.recover_tokens == 0
    z = gaps[(1, "z ppl")]
    assert z.gap == pytest.approx(10.0) and z.low_value == 20.0


def test_recovery_is_the_first_evaluation_back_within_eps():
    pts = [(0, 0.2), (100, 0.9), (120, 0.4), (140, 0.86), (160, 0.95), (200, 0.9)]
    s = tc.summarize(_records("x", "acc", pts, domain="a", stderr=0.05), STAGES)
    assert s is not None
    (gap,) = s.gaps
    assert gap.recovered and gap.recover_tokens == 40  # 0.86 >= 0.9 - 0.05, at 140


def test_against_retraining_and_missing_values():
    run = tc.build_grid(X + Z, STAGES)
    base = tc.build_grid(_records("x", "acc", [(200, 0.8)], domain="a")
                         + _records("z", "ppl", [(200, 15.0)], domain="a", better=False),
                         STAGES)  # fmt: skip
    assert run is not None and base is not None
    assert tc.against(run, base) == pytest.approx({"x acc": -0.1, "z ppl": -5.0})
    assert tc.summarize([], STAGES) is None
    # No evaluation inside stage 0: its cell is missing, never borrowed from stage 1.
    late = tc.summarize(_records("x", "acc", [(150, 0.5), (200, 0.6)], domain="a"), STAGES)
    assert late is not None and math.isnan(late.matrix[0, 0]) and late.forgetting[1] == {}
