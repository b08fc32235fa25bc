"""Continual runs against a re-training baseline: detection, loss difference, compute ratio."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rewarm.continual import compare as cmp
from rewarm.continual.metrics import compute
from rewarm.continual.timeline import build_timeline
from rewarm.errors import UserError
from rewarm.runlog import EvalRecord, StageRecord


def view(
    name: str,
    stages: list[tuple[int, dict[str, float]]],
    final: dict[str, float],
    *,
    path: Path | None = None,
    init: str = "scratch",
    fpt: float | None = 100.0,
    step_tokens: dict[int, int] | None = None,
) -> cmp.RunView:
    """A run of consecutive stages (tokens, mix) whose last evaluation gives `final`."""
    recs, evals, pos = [], [], 0
    for k, (length, _mix) in enumerate(stages):
        recs.append(StageRecord(stage=f"s{k}", index=k, event="start", step=0, tokens=pos))
        pos += length
        recs.append(StageRecord(stage=f"s{k}", index=k, event="end", step=0, tokens=pos))
    for d, v in final.items():
        evals.append(EvalRecord(step=0, tokens=0, stage=0, domain=d, loss=v + 1, bits_per_byte=v))
        evals.append(EvalRecord(step=1, tokens=pos, stage=0, domain=d, loss=v, bits_per_byte=v / 2))
    config = {"model": {"init": init}, "stages": [{"mix": mix} for _len, mix in stages]}
    tl = build_timeline(evals, recs, config)
    return cmp.RunView(
        name=name,
        path=path or Path("/nonexistent") / name,
        timeline=tl,
        compute=compute(tl, flops_per_token=fpt),
        config=config,
        step_tokens=step_tokens or {},
    )


def runs():
    cont = view("cont", [(400, {"a": 1}), (100, {"b": 1})], {"a": 2.1, "b": 2.5})
    full = view("joint", [(1000, {"a": 0.5, "b": 0.5})], {"a": 2.0, "b": 2.6})
    return cont, full


def test_baseline_detected_from_config_or_name_or_flag():
    cont, full = runs()
    assert cmp.detect_baseline([cont, full]) == 1
    named = view("retrain-ab", [(10, {"a": 1})], {"a": 3.0})
    assert cmp.detect_baseline([cont, full, named]) == 2
    assert cmp.detect_baseline([cont, full], explicit="cont") == 0
    assert cmp.detect_baseline([cont]) is None
    with pytest.raises(UserError, match="--baseline nope"):
        cmp.detect_baseline([cont, full], explicit="nope")
    other = view("retrain-2", [(10, {"a": 1})], {"a": 3.0})
    with pytest.raises(UserError, match="several runs"):
        cmp.detect_baseline([cont, named, other])


def test_loss_difference_and_compute_ratio():
    cont, full = runs()
    c = cmp.compare(cont, full, [cont, full])
    assert c.loss_diff == pytest.approx({"a": 0.1, "b": -0.1})
    assert c.bpb_diff == pytest.approx({"a": 0.05, "b": -0.05})
    assert c.mean_loss_diff == pytest.approx(0.0)
    # Stage 1 (400 tokens) plays the shared checkpoint; 100 new tokens vs 1000.
    assert (c.tokens_since_checkpoint, c.shared_tokens) == (100, 400)
    assert c.token_ratio == pytest.approx(0.1)
    assert c.flops_ratio == pytest.approx(0.1)
    assert c.total_ratio == pytest.approx(0.5)


def test_flops_ratio_uses_each_runs_flops_per_token():
    cont = view("cont", [(400, {"a": 1}), (100, {"b": 1})], {"a": 2.0}, fpt=300.0)
    full = view("joint", [(1000, {"a": 1, "b": 1})], {"a": 2.0}, fpt=100.0)
    c = cmp.compare(cont, full, [cont, full])
    assert c.flops_ratio == pytest.approx(100 * 300 / (1000 * 100))
    no_flops = view("x", [(100, {"a": 1})], {"a": 2.0}, fpt=None)
    assert cmp.compare(no_flops, full, [no_flops, full]).flops_ratio is None


def test_branch_from_checkpoint_counts_the_shared_stage_once(tmp_path):
    parent_dir = tmp_path / "base"
    parent = view(
        "base",
        [(300, {"a": 1})],
        {"a": 2.0},
        path=parent_dir,
        step_tokens={10: 120, 25: 300},
    )
    ckpt = parent_dir / "checkpoints" / "step_00000025"
    branch = view("branch", [(50, {"b": 1})], {"a": 2.2, "b": 2.4}, init=f"checkpoint:{ckpt}")
    full = view("retrain", [(700, {"a": 1, "b": 1})], {"a": 2.1, "b": 2.3})
    views = [parent, branch, full]
    c = cmp.compare(branch, full, views)
    assert (c.tokens_since_checkpoint, c.shared_tokens) == (50, 300)
    assert c.total_ratio == pytest.approx(350 / 700)
    # Parent not among the runs: the checkpoint's own state.json is read instead: the
    # tokens trained (loop.tokens), not the LR plan position (270 after a partial step).
    ckpt.mkdir(parents=True)
    (ckpt / "state.json").write_text(json.dumps({"position": 270, "loop": {"tokens": 280}}))
    assert cmp.new_compute(branch, [branch, full]) == (50, 280)
    # Neither: the shared part is unknown, the ratio since the checkpoint is still defined.
    lost = view("lost", [(50, {"b": 1})], {"b": 2.4}, init="checkpoint:/gone/step_00000001")
    c = cmp.compare(lost, full, [lost, full])
    assert c.shared_tokens is None and c.total_ratio is None
    assert c.token_ratio == pytest.approx(50 / 700)


def test_branch_counts_the_parent_part_once():
    """A branch's log carries its parent's stage 1: only the tokens after it are new."""
    cont, full = runs()
    branch = view("branch", [(400, {"a": 1}), (300, {"b": 1})], {"a": 2.2, "b": 2.4})
    branch = cmp.RunView(**{**branch.__dict__, "branch_tokens": 400})
    assert cmp.new_compute(branch, [cont, branch, full]) == (300, 400)
    c = cmp.compare(branch, full, [cont, branch, full])
    assert c.token_ratio == pytest.approx(0.3) and c.total_ratio == pytest.approx(0.7)
    # a branch inside stage 1 (an any-time cooldown): shared = the tokens up to it
    mid = cmp.RunView(**{**branch.__dict__, "branch_tokens": 250})
    assert cmp.new_compute(mid, [mid]) == (450, 250)


def test_runs_from_a_trained_model_keep_their_stage_count():
    """The starting model's stage 0 is no stage for the baseline or compute rules."""
    hf = view("joint", [(1000, {"a": 0.5, "b": 0.5})], {"a": 2.0, "b": 2.6}, init="hf:/m")
    cont = view("cont", [(400, {"a": 1}), (100, {"b": 1})], {"a": 2.1, "b": 2.5}, init="hf:/m")
    assert hf.timeline.has_initial and len(hf.timeline.trained_stages) == 1
    assert cmp.detect_baseline([cont, hf]) == 1
    assert cmp.new_compute(cont, [cont, hf]) == (100, 400)
