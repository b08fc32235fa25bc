"""A checkpoint written by an older version still resumes."""

from __future__ import annotations

import json
import shutil

from rewarm import checkpoint
from rewarm.train.trainer import train
from tests.runhelpers import copy_run, load, one_thread, records


def test_a_state_with_the_retired_config_hash_resumes(finished, tmp_path):
    """state.json once held `config_hash` (never read): such checkpoints must still load."""
    cfg = load(copy_run(finished[0], tmp_path))
    root = cfg.run_dir / "checkpoints"
    ckpts = sorted(p for p in root.glob("step_*") if checkpoint.is_complete(p))
    first_end = next(p for p in ckpts if checkpoint.read_state(p)["stage"] == 1)
    for later in ckpts[ckpts.index(first_end) + 1 :]:
        shutil.rmtree(later)
    state = checkpoint.read_state(first_end)
    assert "config_hash" not in state
    state["config_hash"] = "0123456789abcdef"
    (first_end / checkpoint.STATE).write_text(json.dumps(state), encoding="utf-8")
    (root / checkpoint.LATEST).write_text(first_end.name + "\n", encoding="utf-8")

    with one_thread():
        done = train(cfg, progress=False)
    assert done.stage == len(cfg.stages) and done.step == finished[1].step
    resumed = [r for r in records(cfg.run_dir, "run") if r["event"] == "resume"]
    assert [r["step"] for r in resumed] == [state["step"]]
