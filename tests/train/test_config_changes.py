"""A changed config against an existing run is refused with a diff, unless allowed."""

from __future__ import annotations

import shutil

from rewarm.cli import main
from rewarm.train.changes import diff
from tests.runhelpers import copy_run, load, one_thread, records, write_config


def test_diff_names_nested_keys():
    old = {"train": {"lr": 1e-3}, "stages": [{"mix": {"a": 1.0}}, {"mix": {"b": 1.0}}]}
    new = {"train": {"lr": 2e-3}, "stages": [{"mix": {"a": 1.0}}, {"mix": {"b": 0.5, "a": 0.5}}]}
    assert diff(old, new) == {
        "stages[1].mix.a": (None, 0.5),
        "stages[1].mix.b": (1.0, 0.5),
        "train.lr": (1e-3, 2e-3),
    }


def test_changed_config_refused_then_allowed(finished, tmp_path, capsys):
    path = copy_run(finished[0], tmp_path)
    cfg = load(path)
    lr_before = {r["step"]: r["lr"] for r in records(cfg.run_dir, "train")}
    # Pretend the run was killed after step 10: its last checkpoint is gone.
    shutil.rmtree(cfg.run_dir / "checkpoints" / "step_00000012")
    capsys.readouterr()
    metrics_before = (cfg.run_dir / "metrics.jsonl").read_text()

    args = ["train", str(path), "--no-progress", "--set", "train.lr=0.001"]
    changed = [*args, "--set", "stages.1.schedule.warmup=64"]
    assert main(changed) == 2
    err = capsys.readouterr().err.splitlines()
    assert "  stages[1].schedule.warmup: 128 -> 64" in err
    assert "  train.lr: 0.003 -> 0.001" in err
    assert err[-1].startswith("rewarm train: error: ") and "--allow-changes" in err[-1]
    assert (cfg.run_dir / "metrics.jsonl").read_text() == metrics_before  # nothing touched

    # Allowing only one of the two keys is still a refusal naming the other.
    assert main([*changed, "--allow-changes", "train.lr"]) == 2
    assert "stages[1].schedule.warmup" in capsys.readouterr().err

    # A section name allows everything under it; the schedule change is logged.
    with one_thread():
        assert main([*changed, "--allow-changes", "stages,train.lr"]) == 0
    err = [line for line in capsys.readouterr().err.splitlines() if "schedule changed" in line]
    assert len(err) == 1 and "stage 1 (second) schedule.warmup: 128.0 -> 64.0" in err[0]
    assert "stage 0 (first) peak_lr: 0.003 -> 0.001" in err[0]
    run = records(cfg.run_dir, "run")
    assert [r["event"] for r in run] == ["start", "resume", "schedule_changed", "end"]
    assert "schedule.warmup: 128.0 -> 64.0" in run[2]["change"]
    assert run[1]["step"] == 10
    lr_after = {r["step"]: r["lr"] for r in records(cfg.run_dir, "train")}
    assert sorted(lr_after) == list(range(1, 13))
    assert all(lr_after[s] == lr_before[s] for s in range(1, 11))  # kept from the first run
    assert lr_after[11] < lr_before[11]  # the new peak LR 1e-3 applies from the resume on
    assert "lr = 0.001" in (cfg.run_dir / "config.resolved.toml").read_text()


def test_bad_config_exits_2_before_any_work(tmp_path, capsys):
    path = write_config(tmp_path, "bad")
    assert main(["train", str(path), "--set", "stages.1.mix.nope=1.0"]) == 2
    err = capsys.readouterr().err.strip()
    assert "stages[1].mix.nope" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "runs").exists()
