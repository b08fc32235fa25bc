"""The offline W&B and MLflow sinks receive every train, eval and task record of a
run, read back from their own files; arms group by `log.group`; a missing package is
exit 2 with the install command."""

from __future__ import annotations

import importlib.util

import pytest

from rewarm import extras
from rewarm.cli import main
from rewarm.runlog import read_run
from rewarm.trackers.scalars import scalars
from tests.trackers.trackerfiles import mlflow_metric, mlflow_run, wandb_history


def _expected(cfg):
    """[(tokens, {scalar: value})] of every train, eval and task record, in file order."""
    log = read_run(cfg.run_dir)
    return [(r.tokens, scalars(r)) for r in [*log.trains, *log.evals, *log.tasks]], log


def test_wandb_offline_run_has_every_record(task_run):
    cfg, sinks = task_run
    if "wandb" not in sinks:
        pytest.skip("needs the wandb extra: pip install 'rewarm[wandb]'")
    rows, run = wandb_history(cfg.run_dir.parent.parent / "trackers")
    assert (run.project, run.run_group, run.display_name) == ("rewarm", "tests", "run")
    expected, log = _expected(cfg)
    assert log.tasks or not extras.available("lm_eval")
    remaining = list(rows)
    for tokens, values in expected:
        match = next(
            (i for i, row in enumerate(remaining)
             if row.get("tokens") == tokens and all(row.get(k) == v for k, v in values.items())),
            None,
        )  # fmt: skip
        assert match is not None, (tokens, values)
        remaining.pop(match)
    # Nothing else but the stage markers.
    assert all(set(r) - {"tokens", "_step", "_runtime", "_timestamp"} == {"stage/index"}
               for r in remaining)  # fmt: skip


def test_mlflow_file_store_has_every_record(task_run):
    cfg, sinks = task_run
    if "mlflow" not in sinks:
        pytest.skip("needs the mlflow extra: pip install 'rewarm[mlflow]'")
    run = mlflow_run(cfg.run_dir.parent.parent / "trackers" / "mlruns")
    assert (run / "tags" / "group").read_text() == "tests"
    assert (run / "tags" / "mlflow.runName").read_text() == "run"
    assert (run / "params" / "train.seq_len").read_text() == "64"
    expected, _ = _expected(cfg)
    by_key: dict[str, list[tuple[float, int]]] = {}
    for tokens, values in expected:
        for key, value in values.items():
            by_key.setdefault(key, []).append((value, tokens))
    assert {"train/loss", "eval/api/loss", "eval/other/bits_per_byte"} <= set(by_key)
    for key, points in by_key.items():
        got = mlflow_metric(run, key)
        assert [s for _, s in got] == [s for _, s in points], key  # step = tokens
        assert [v for v, _ in got] == pytest.approx([v for v, _ in points]), key
    assert "status: 3" in (run / "meta.yaml").read_text()  # FINISHED


@pytest.mark.parametrize(
    ("module", "sets", "hint"),
    [
        ("wandb", ['log.sinks=["wandb"]'], "log.sinks = 'wandb' needs the wandb package"),
        ("mlflow", ['log.sinks=["mlflow"]'], "pip install 'rewarm[mlflow]'"),
        ("lm_eval", [], "eval.tasks needs the lm-eval package: pip install 'rewarm[tasks]'"),
        ("tensorboard", ["train.tensorboard=true"], "tensorboard package"),
    ],
)
def test_missing_package_exits_2_with_the_install_command(
    tmp_path, monkeypatch, capsys, module, sets, hint
):
    from tests.tasks.taskhelpers import write_config

    real = importlib.util.find_spec
    monkeypatch.setattr(extras, "available", lambda name: name != module)
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == module else real(name, *a)
    )
    args = ["train", str(write_config(tmp_path))]
    for s in sets:
        args += ["--set", s]
    assert main(args) == 2
    assert hint in capsys.readouterr().err
    assert not (tmp_path / "runs" / "run").exists()  # refused before any work


def test_eval_and_demo_tasks_need_lm_eval(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(extras, "available", lambda name: name != "lm_eval")
    assert main(["demo", "--quick", "--tasks", "--out", str(tmp_path / "demo")]) == 2
    assert "pip install 'rewarm[tasks]'" in capsys.readouterr().err
    assert not (tmp_path / "demo").exists()
