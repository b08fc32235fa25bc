"""What a run reports about itself: seconds per phase in its records, and the tokens
its checkpoints were trained on (`rewarm.checkpoint.trained_tokens`)."""

from __future__ import annotations

import time
from dataclasses import fields

import pytest

from rewarm import checkpoint
from rewarm.continual import compare as cmp
from rewarm.continual.metrics import Compute
from rewarm.continual.timeline import timeline_of
from rewarm.errors import UserError
from rewarm.runlog import PhaseSeconds, RunEnd, read_run
from rewarm.train.trainer import train
from tests.runhelpers import load, one_thread, write_config

# Stage "first" is 300 tokens: 3 steps of 128, so it trains 384 tokens and its last
# step runs past the stage's configured length (the LR plan position stops at 300).
SETS = ("stages.0.tokens=300", "stages.1.tokens=128")


@pytest.fixture(scope="module")
def timed_run(tmp_path_factory):
    """(cfg, wall seconds of `train`) of a two-stage run of 3 + 1 steps."""
    cfg = load(write_config(tmp_path_factory.mktemp("accounting")), *SETS)
    with one_thread():
        t0 = time.perf_counter()
        train(cfg, progress=False)
        wall = time.perf_counter() - t0
    return cfg, wall


def test_phase_seconds_are_in_the_records_and_sum_to_the_wall_time(timed_run):
    cfg, wall = timed_run
    log = read_run(cfg.run_dir)
    assert [t.step for t in log.trains] == [1, 2, 3, 4]
    for t in log.trains:
        assert t.seconds is not None
        assert all(getattr(t.seconds, f.name) >= 0 for f in fields(PhaseSeconds))
        assert t.seconds.step > 0 and t.seconds.data > 0 and t.seconds.log > 0
    # The first interval holds stage one's opening evaluation; step 2 ends with a
    # periodic checkpoint (every 256 tokens), charged to the interval of step 3.
    assert log.trains[0].seconds.eval > 0
    assert log.trains[2].seconds.checkpoint > 0
    assert log.trains[1].seconds.checkpoint == 0 and log.trains[1].seconds.eval == 0

    end = log.events[-1]
    assert isinstance(end, RunEnd) and end.seconds is not None
    assert end.startup_seconds is not None and end.startup_seconds > 0
    # Evaluations at steps 0, 3 (stage end; stage two's start reuses it) and 4;
    # checkpoints at step 2 (periodic), 3 and 4 (stage ends).
    assert end.evaluations == len({e.step for e in log.evals}) == 3
    assert end.checkpoints == 3
    total = end.seconds
    for name in ("data", "step", "eval", "checkpoint", "log"):
        intervals = sum(getattr(t.seconds, name) for t in log.trains)
        # Records round seconds to microseconds: each term may be up to 0.5 us high.
        assert intervals <= getattr(total, name) + 1e-6 * (len(log.trains) + 1), name
    # The train records tile the loop up to the last one; the run total adds the tail
    # (the last stage's end: evaluation and checkpoint).
    assert sum(t.seconds.total for t in log.trains) < total.total
    # Loop and startup account for the call's wall time, but for what `train` does
    # around them (run lock, process group, closing the log): well under a second.
    accounted = total.total + end.startup_seconds
    assert accounted <= wall
    assert wall - accounted < 0.5 + 0.05 * wall
    assert total.other < 0.2 * total.total


def test_checkpoint_tokens_are_the_trained_tokens_not_the_plan_position(timed_run):
    cfg, _ = timed_run
    root = cfg.run_dir / "checkpoints"
    stage_end = root / checkpoint.step_dir_name(3)
    assert checkpoint.step_of(stage_end) == 3
    state = checkpoint.read_state(stage_end)
    assert (state["stage"], state["stage_end"], state["position"]) == (1, True, 300)
    assert checkpoint.trained_tokens(stage_end) == 3 * 128 == 384
    assert checkpoint.trained_tokens(root / checkpoint.step_dir_name(4)) == 512
    # The comparison counts a run branched from that checkpoint's stage 1 as 384 tokens,
    # with and without the parent run among the runs compared.
    parent = read_run(cfg.run_dir)
    branch = cmp.RunView(
        name="branch",
        path=cfg.run_dir.parent / "branch",
        timeline=timeline_of(parent),
        compute=Compute(
            tokens=128,
            tokens_by_stage=(128,),
            flops_per_token=None,
            flops=None,
            eval_tokens=0,
            eval_flops=None,
            flops_source="",
        ),
        config={"model": {"init": f"checkpoint:{stage_end}"}},
        step_tokens={},
    )
    assert cmp.new_compute(branch, [branch]) == (128, 384)


def test_checkpoint_tokens_of_a_malformed_state_name_the_file(tmp_path):
    ckpt = tmp_path / checkpoint.step_dir_name(7)
    ckpt.mkdir()
    (ckpt / checkpoint.STATE).write_text('{"position": 10, "loop": {"tokens": "many"}}')
    with pytest.raises(UserError, match=r"state.json: malformed loop state"):
        checkpoint.trained_tokens(ckpt)
    assert checkpoint.step_of(tmp_path / "not_a_step") is None
