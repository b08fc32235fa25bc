"""A two-stage run end to end, in process: records, checkpoints, resume of a finished run."""

from __future__ import annotations

import math

import pytest
import torch

from rewarm import checkpoint
from rewarm.data import shards
from rewarm.train.trainer import train
from tests.runhelpers import load, records, write_config


def test_two_stage_run_writes_every_record(finished):
    cfg, state = finished
    steps = [6, 6]  # 768 tokens / 128 per step
    assert (state.stage, state.step, state.tokens) == (2, 12, 12 * 128)
    train_recs = records(cfg.run_dir, "train")
    assert [r["step"] for r in train_recs] == list(range(1, 13))
    assert [r["stage"] for r in train_recs] == ["first"] * steps[0] + ["second"] * steps[1]
    assert all(math.isfinite(r["loss"]) and r["lr"] >= 0 for r in train_recs)
    assert train_recs[0]["lr"] == 0.0 and max(r["lr"] for r in train_recs) == pytest.approx(3e-3)
    # Learning happens: the last loss of stage one is below the first.
    assert train_recs[5]["loss"] < train_recs[0]["loss"] - 0.5
    stage = records(cfg.run_dir, "stage")
    assert [(r["stage"], r["event"], r["step"]) for r in stage] == [
        ("first", "start", 0),
        ("first", "end", 6),
        ("second", "start", 6),
        ("second", "end", 12),
    ]
    # tokens_by_domain on "end" counts replay: stage two mixes prose back in.
    assert stage[1]["tokens_by_domain"] == {"prose": 768}
    assert set(stage[3]["tokens_by_domain"]) == {"prose", "code"}
    assert sum(stage[3]["tokens_by_domain"].values()) == 768
    run = records(cfg.run_dir, "run")
    assert run[0]["event"] == "start" and run[-1]["event"] == "end"
    assert run[0]["params"] > run[0]["non_embedding_params"] > 0
    assert run[0]["config"]["run"]["name"] == "run"
    assert (cfg.run_dir / "config.resolved.toml").is_file()


def test_eval_records_cover_every_domain_at_every_boundary(finished):
    cfg, _ = finished
    evals = records(cfg.run_dir, "eval")
    bytes_per_token = {
        d: shards.open_domain(cfg.data_dir / d).bytes_per_token_heldout for d in cfg.domains
    }
    by_point = {}
    for r in evals:
        by_point.setdefault((r["step"], r["stage"]), set()).add(r["domain"])
        bpb = r["loss"] / math.log(2) / bytes_per_token[r["domain"]]
        assert r["bits_per_byte"] == pytest.approx(bpb, rel=1e-9)
    for point in [(0, "first"), (6, "first"), (6, "second"), (12, "second")]:
        assert by_point[point] == {"prose", "code"}, point
    # eval.every_tokens = 384: after steps 3 and 9 as well.
    assert (3, "first") in by_point and (9, "second") in by_point
    # Stage two trains code: its held-out loss falls across the stage.
    code = {r["step"]: r["loss"] for r in evals if r["domain"] == "code"}
    assert code[12] < code[6]


def test_checkpoints_keep_stage_ends_and_last_k(finished):
    cfg, _ = finished
    root = cfg.run_dir / "checkpoints"
    names = sorted(p.name for p in root.glob("step_*"))
    # every 256 tokens = 2 steps; keep = 2 periodic ones; stage ends 6 and 12 always kept.
    assert names == ["step_00000006", "step_00000008", "step_00000010", "step_00000012"]
    assert checkpoint.latest(root).name == "step_00000012"
    state = checkpoint.read_state(root / "step_00000006")
    assert state["stage_end"] and state["loop"]["stage"] == 1 and state["position"] == 768
    assert set(state["rng"]) >= {"python", "numpy", "torch"}


def test_rerunning_a_finished_run_changes_nothing(finished):
    cfg, state = finished
    before = (cfg.run_dir / "metrics.jsonl").read_bytes()
    again = train(cfg, progress=False)
    assert again == state
    assert (cfg.run_dir / "metrics.jsonl").read_bytes() == before


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_bf16_run_learns(tmp_path):
    cfg = load(write_config(tmp_path, "cuda"), 'train.device="cuda"')
    train(cfg, progress=False)
    losses = [r["loss"] for r in records(cfg.run_dir, "train")]
    assert all(math.isfinite(x) for x in losses) and losses[5] < losses[0] - 0.5
    assert "cuda" in records(cfg.run_dir, "run")[0]["device"]
