"""`run.branch_from`: a run continues another run's checkpoint with its full state."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest
import torch

from rewarm import checkpoint
from rewarm.cli import main
from rewarm.data import shards
from rewarm.data.mixture import MixtureSampler
from rewarm.errors import UserError
from rewarm.runlog import Branched, read_run
from rewarm.schedules import StagePlan
from rewarm.train import branch, distributed
from rewarm.train.session import open_session
from rewarm.train.trainer import train
from tests.runhelpers import load, one_thread, records, train_losses, write_config


def _corpus(cfg) -> Path:
    return Path(cfg.source).parent / "corpus"


def _branch_config(tmp: Path, parent, name: str, step: int, *sets: str):
    ckpt = parent.run_dir / "checkpoints" / checkpoint.step_dir_name(step)
    path = write_config(tmp, name, corpus=_corpus(parent))
    return load(path, f'run.branch_from="{ckpt}"', *sets), ckpt


def _tree_digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != "run.lock"
    }


def test_branch_resumes_the_parent_state_bit_for_bit(finished, tmp_path):
    parent, _ = finished
    cfg, ckpt = _branch_config(tmp_path, parent, "same", 6)
    before = _tree_digest(parent.run_dir)
    record = branch.seed(cfg)
    assert isinstance(record, Branched) and record.step == 6 and record.tokens == 768
    assert record.change is None  # the same schedule as the parent's
    assert branch.seed(cfg) is None  # idempotent: seeded once

    saved = checkpoint.read_state(ckpt)
    env = distributed.setup("cpu")
    s = open_session(cfg, env, progress=False)
    try:
        opt = checkpoint.load_optimizer(ckpt)
        mine = s.optimizer.state_dict()
        assert mine["param_groups"] == opt["param_groups"]
        for key, state in opt["state"].items():
            for name, value in state.items():
                assert torch.equal(mine["state"][key][name], value), (key, name)
        weights = checkpoint.load_weights(ckpt)
        model_state = s.model.state_dict()
        assert all(torch.equal(model_state[k], v) for k, v in weights.items())
        assert s.sampler.state_dict() == saved["sampler"]
        assert s.position() == saved["position"] == 768
        assert s.plan.lr(s.position()) == StagePlan.from_config(parent).lr(768)
        assert s.state.step == 6 and s.state.stage == 1 and not s.state.stage_started
    finally:
        s.log.close()
    with one_thread():
        train(cfg, progress=False)
    # then it writes exactly what the parent wrote after the checkpoint
    assert train_losses(cfg.run_dir) == train_losses(parent.run_dir)
    assert records(cfg.run_dir, "stage") == records(parent.run_dir, "stage")
    evals = lambda run: [r for r in records(run, "eval") if r["step"] > 6]  # noqa: E731
    assert evals(cfg.run_dir) == evals(parent.run_dir)
    assert _tree_digest(parent.run_dir) == before  # the parent is only read
    log = read_run(cfg.run_dir)
    assert log.branch is not None and log.branch.checkpoint == str(ckpt)
    assert log.config["run"]["name"] == "same"  # the branch's config, not the parent's
    events = [e.event for e in log.events]
    assert events == ["start", "branch", "resume", "end"]


def test_branch_follows_its_own_later_stages(finished, tmp_path):
    parent, _ = finished
    cfg, _ = _branch_config(
        tmp_path,
        parent,
        "own",
        6,
        'stages.1.schedule={kind="constant"}',
        "stages.1.lr=1e-3",
        "stages.1.replay={fraction=0.5}",
        "stages.1.tokens=512",
    )
    with one_thread():
        train(cfg, progress=False)
    plan = StagePlan.from_config(cfg)
    trains = records(cfg.run_dir, "train")
    assert trains[:6] == records(parent.run_dir, "train")[:6]  # carried over
    assert [r["lr"] for r in trains[6:]] == [1e-3] * 4
    assert [r["lr"] for r in trains[6:]] == [plan.lr(768 + 128 * i) for i in range(4)]
    end = [r for r in records(cfg.run_dir, "stage") if r["event"] == "end"][-1]
    assert end["tokens_by_domain"]["prose"] == pytest.approx(256, abs=32)  # half of 512
    brec = [r for r in records(cfg.run_dir, "run") if r["event"] == "branch"][0]
    assert "stage 1" in brec["change"] and brec["parent_fingerprint"] != brec["fingerprint"]


def test_replay_in_a_branch_draws_only_windows_the_parent_trained_on(finished, tmp_path):
    parent, _ = finished
    cfg, _ = _branch_config(tmp_path, parent, "replay", 6, "stages.1.replay={fraction=0.5}")
    branch.seed(cfg)
    env = distributed.setup("cpu")
    s = open_session(cfg, env, progress=False)
    s.log.close()
    domains = {n: shards.open_domain(parent.data_dir / n) for n in parent.domains}
    fresh = MixtureSampler(parent, domains)
    seen = set()
    for _ in range(6):  # the parent's stage 1: 6 steps of prose
        seen |= {row.tobytes() for row in fresh.next_batch().tokens}
    s.sampler.start_stage(1)
    replayed = []
    for _ in range(6):
        batch = s.sampler.next_batch()
        replayed += [
            row.tobytes() for row, rep in zip(batch.tokens, batch.replay, strict=True) if rep
        ]
    windows = (shards.open_domain(parent.data_dir / "prose").train.size - 1) // 32
    assert len(replayed) == 12 and windows > 20 * len(seen)  # could fail if drawn from all
    assert set(replayed) <= seen


def test_branch_with_a_changed_earlier_stage_exits_2_naming_the_key(finished, tmp_path, capsys):
    parent, _ = finished
    ckpt = parent.run_dir / "checkpoints" / checkpoint.step_dir_name(6)
    path = write_config(tmp_path, "bad", corpus=_corpus(parent))
    base = ["train", str(path), "--no-progress", "--set", f'run.branch_from="{ckpt}"']
    for key, value in (
        ("stages.0.schedule.final_ratio", "0.5"),
        ("model.preset", '"llama-small"'),
        ("train.batch_tokens", "256"),
    ):
        assert main([*base, "--set", f"{key}={value}"]) == 2
        err = capsys.readouterr().err.strip()
        shown = key.replace("stages.0", "stages[0]")
        assert len(err.splitlines()) == 1 and f"{shown}:" in err, err
    assert not (tmp_path / "runs" / "bad" / "checkpoints").exists()
    # a checkpoint not inside a run cannot carry a log
    loose = tmp_path / "loose" / ckpt.name
    shutil.copytree(ckpt, loose)
    with pytest.raises(UserError, match="checkpoints/ directory"):
        branch.resolve(load(path, f'run.branch_from="{loose}"'))


def test_any_time_cooldown_from_a_checkpoint_inside_a_stage(tmp_path):
    main_path = write_config(tmp_path, "main")
    parent = load(
        main_path,
        'stages=[{name="main", tokens=1536, mix={prose=1.0}, '
        'schedule={kind="constant", warmup=128}}]',
        "checkpoint.keep=10",
    )
    with one_thread():
        train(parent, progress=False)
    # cut the main stage at step 4 (512 tokens), then decay over 512 tokens
    cool, _ = _branch_config(
        tmp_path,
        parent,
        "cool",
        4,
        'stages=[{name="main", tokens=512, mix={prose=1.0}, '
        'schedule={kind="constant", warmup=128}}, '
        '{name="cooldown", tokens=512, mix={prose=1.0}, '
        'schedule={kind="branch", at=512, decay=512, shape="linear", final_ratio=0.0}}]',
    )
    with one_thread():
        train(cool, progress=False)
    trains = records(cool.run_dir, "train")
    assert trains[:4] == records(parent.run_dir, "train")[:4]
    lrs = [r["lr"] for r in trains[4:]]
    assert lrs[0] == pytest.approx(3e-3) and lrs == sorted(lrs, reverse=True) and lrs[-1] < 1e-3
    stages = [(r["stage"], r["event"], r["tokens"]) for r in records(cool.run_dir, "stage")]
    assert stages == [
        ("main", "start", 0),
        ("main", "end", 512),
        ("cooldown", "start", 512),
        ("cooldown", "end", 1024),
    ]
    # a cut stage whose schedule gives other LRs before the checkpoint is refused
    bad, _ = _branch_config(
        tmp_path,
        parent,
        "bad",
        4,
        'stages=[{name="main", tokens=512, mix={prose=1.0}, schedule={kind="cosine"}}, '
        '{name="c", tokens=512, mix={prose=1.0}}]',
    )
    with pytest.raises(UserError, match=r"stages\[0\]\.schedule: gives LR"):
        branch.seed(bad)


def test_killed_seed_is_seeded_again(finished, tmp_path, monkeypatch):
    parent, _ = finished
    cfg, _ = _branch_config(tmp_path, parent, "killed", 6)

    def die(*args, **kwargs):
        raise KeyboardInterrupt  # a kill while the checkpoint is copied

    monkeypatch.setattr(branch.shutil, "copytree", die)
    with pytest.raises(KeyboardInterrupt):
        branch.seed(cfg)
    assert checkpoint.latest(cfg.run_dir / "checkpoints") is None
    assert not [p for p in cfg.run_dir.iterdir() if p.name.startswith(".tmp")]
    monkeypatch.undo()
    assert branch.seed(cfg) is not None
    lines = (cfg.run_dir / "metrics.jsonl").read_text().splitlines()
    assert sum('"event": "branch"' in line for line in lines) == 1
    state = checkpoint.read_state(checkpoint.latest(cfg.run_dir / "checkpoints"))
    assert len(lines) == state["loop"]["metrics_lines"]
