"""Averages evaluated alongside the model; an average or a merge handed on at a stage's
end (`apply_at_end`, `merge`), with the trained model's numbers kept as "trained"."""

from __future__ import annotations

import pytest
import torch

from rewarm import checkpoint
from rewarm.runlog import read_run
from rewarm.train.trainer import train
from tests.runhelpers import load, one_thread, records, write_config


def _weights(run_dir, step):
    return checkpoint.load_weights(run_dir / "checkpoints" / checkpoint.step_dir_name(step))


@pytest.mark.slow
def test_average_is_evaluated_alongside_and_never_feeds_back(finished, tmp_path):
    ref = finished[0]
    extra = 'average = { kind = "ema", decay = 0.5 }\n'
    cfg = load(write_config(tmp_path, "ema", extra=extra))
    with one_thread():
        train(cfg, progress=False)
    log = read_run(cfg.run_dir)
    # The trained model's records are those of the run without an average.
    assert records(cfg.run_dir, "train") and [
        (r["step"], r["loss"]) for r in records(cfg.run_dir, "train")
    ] == [(r["step"], r["loss"]) for r in records(ref.run_dir, "train")]
    assert [(e.step, e.domain, e.loss) for e in log.evals] == [
        (e.step, e.domain, e.loss) for e in read_run(ref.run_dir).evals
    ]
    # One "ema" record per domain at every evaluation of stage two.
    side = [(e.step, e.domain) for e in log.side_evals]
    assert side == [(s, d) for s in (6, 9, 12) for d in ("prose", "code")]
    assert {e.weights for e in log.side_evals} == {"ema"}
    at = {(e.step, e.domain): e.loss for e in log.side_evals}
    raw = {(e.step, e.domain): e.loss for e in log.evals}
    assert at[(6, "prose")] == raw[(6, "prose")]  # the stage's first weights
    assert at[(12, "prose")] != raw[(12, "prose")]


@pytest.mark.slow
def test_apply_at_end_hands_on_the_average(finished, tmp_path):
    extra = 'average = { kind = "uniform", every_tokens = 256, last = 2, apply_at_end = true }\n'
    cfg = load(write_config(tmp_path, "apply", extra=extra))
    with one_thread():
        train(cfg, progress=False)
    log = read_run(cfg.run_dir)
    # Snapshots at stage tokens 256, 512, 768 (steps 8, 10, 12): the last two are averaged.
    # Training is that of the run without an average, whose checkpoints hold them.
    w10, w12 = _weights(finished[0].run_dir, 10), _weights(finished[0].run_dir, 12)
    final = checkpoint.load_weights(checkpoint.latest(cfg.run_dir / "checkpoints"))
    for k in final:
        torch.testing.assert_close(final[k], (w10[k] + w12[k]) / 2, rtol=0, atol=1e-6)
    # step_12 is the stage end, written after the swap; the trained weights are not kept,
    # but their evaluation is, labelled "trained", next to the average's.
    trained = {e.domain: e.loss for e in log.side_evals if e.weights == "trained"}
    end = {e.domain: e.loss for e in log.evals if e.step == 12}
    assert trained.keys() == end.keys() == {"prose", "code"}
    assert trained != end


@pytest.mark.slow
def test_merge_weight_zero_returns_the_stage_start(tmp_path):
    cfg = load(write_config(tmp_path, "merge0", extra="merge = { weight = 0.0 }\n"))
    with one_thread():
        train(cfg, progress=False)
    start, end = _weights(cfg.run_dir, 6), _weights(cfg.run_dir, 12)
    assert all(torch.equal(start[k], end[k]) for k in start)
    log = read_run(cfg.run_dir)
    by = {(e.step, e.stage, e.domain): e.loss for e in log.evals}
    assert by[(12, "second", "prose")] == by[(6, "first", "prose")]
