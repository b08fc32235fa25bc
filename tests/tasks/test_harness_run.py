"""lm-evaluation-harness for real, on a tiny model and a local task (no network):
`task` records at every stage boundary and every `tasks_every_tokens`, equal to what
`lm_eval` returns standalone on the exported checkpoint and to `rewarm eval --tasks`;
the report of the two-stage run shows the task forgotten; task evaluation leaves the
training's random state and the model's mode alone."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
import torch
from taskhelpers import LIMIT, STAGE_TOKENS, TASK_EVERY

from rewarm import checkpoint
from rewarm.cli import main
from rewarm.runlog import RunEnd, read_run

pytest.importorskip("lm_eval", reason="needs the tasks extra: pip install 'rewarm[tasks]'")

TASK = "rewarm_api_names"


def _stage_end_checkpoints(cfg):
    root = cfg.run_dir / "checkpoints"
    out = []
    for path in sorted(root.glob("step_*")):
        state = checkpoint.read_state(path)
        if state.get("stage_end"):
            out.append((state["loop"]["tokens"], path))
    return out


def test_task_records_at_every_boundary_and_interval(task_run):
    cfg, _ = task_run
    log = read_run(cfg.run_dir)
    got = [(r.tokens, r.stage) for r in log.tasks]
    end = 2 * STAGE_TOKENS
    inside = [t for t in range(TASK_EVERY, end, TASK_EVERY) if t != STAGE_TOKENS]
    want = sorted(
        [(0, "api"), (STAGE_TOKENS, "api"), (STAGE_TOKENS, "other"), (end, "other")]
        + [(t, "api" if t < STAGE_TOKENS else "other") for t in inside]
    )
    assert sorted(got) == want
    for r in log.tasks:
        assert (r.task, r.metric, r.domain, r.higher_is_better) == (TASK, "acc", "api", True)
        assert r.samples == LIMIT and r.stderr is not None and 0 <= r.value <= 1
    at_boundary = [r for r in log.tasks if r.tokens == STAGE_TOKENS]
    assert at_boundary[0].value == at_boundary[1].value  # evaluated once, written twice
    (end_record,) = [e for e in log.events if isinstance(e, RunEnd)]
    assert end_record.task_evaluations == len({t for t, _ in got})
    assert end_record.evaluations == 3  # held-out loss: the boundaries only


def test_values_equal_lm_eval_standalone_on_the_exported_checkpoints(task_run, tmp_path, capsys):
    from lm_eval import simple_evaluate
    from lm_eval.tasks import TaskManager

    cfg, _ = task_run
    log = read_run(cfg.run_dir)
    yaml = cfg.data_dir / "tasks" / "api-names-64" / "task.yaml"
    checked = 0
    for tokens, ckpt in _stage_end_checkpoints(cfg):
        out = tmp_path / ckpt.name
        assert main(["export", str(ckpt), "--out", str(out)]) == 0
        res = simple_evaluate(
            model="hf",
            model_args={"pretrained": str(out), "dtype": "float32"},
            tasks=[str(yaml)],
            limit=LIMIT,
            batch_size=cfg.eval.task_batch_size,
            device="cpu",
            task_manager=TaskManager(include_defaults=False),
        )
        assert res is not None
        standalone = res["results"][TASK]
        logged = [r for r in log.tasks if r.tokens == tokens]
        assert logged
        for r in logged:
            assert r.value == pytest.approx(standalone["acc,none"], abs=1e-12)
            assert r.stderr == pytest.approx(standalone["acc_stderr,none"], abs=1e-12)
        # `rewarm eval` on the checkpoint: the same number again.
        capsys.readouterr()
        args = ["eval", str(ckpt), "--tasks", str(yaml), "--limit", str(LIMIT), "--json"]
        assert main(args) == 0
        (line,) = capsys.readouterr().out.strip().splitlines()
        assert json.loads(line)["value"] == pytest.approx(logged[0].value, abs=1e-12)
        checked += 1
    assert checked == 2


def test_eval_command_runs_the_configs_tasks(task_run, capsys):
    cfg, _ = task_run
    final = read_run(cfg.run_dir).tasks[-1]
    capsys.readouterr()
    assert main(["eval", str(cfg.run_dir), "--config", cfg.source, "--tasks"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["task", "metric", "value", "stderr", "items"]
    cells = out[1].split()
    assert cells[:2] == [TASK, "acc"] and float(cells[2]) == pytest.approx(final.value, abs=1e-4)


def test_report_shows_the_task_forgotten(task_run, tmp_path):
    from rewarm.report.build import build_report

    cfg, _ = task_run
    build_report([read_run(cfg.run_dir)], tmp_path)
    summary = (tmp_path / "summary.md").read_text(encoding="utf-8")
    section = summary.split("## run: task forgetting")[1].split("\n## ")[0]
    row = next(line for line in section.splitlines() if line.startswith(f"| {TASK} acc"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    forgetting, bwt = float(cells[4]), float(cells[5])
    # Stage "other" overwrites what follows each object: the api task is forgotten.
    log = read_run(cfg.run_dir)
    at = {r.tokens: r.value for r in log.tasks}
    assert forgetting == pytest.approx(at[STAGE_TOKENS] - at[2 * STAGE_TOKENS], abs=1e-4)
    assert forgetting > 0.1 and bwt == pytest.approx(-forgetting, abs=1e-4)
    assert "## run: task stability gap" in summary
    assert (tmp_path / "tasks-run.png").is_file()
    html = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert "run: task forgetting" in html and "task metrics over training" in html


def test_task_evaluation_keeps_random_state_and_mode(task_run):
    from rewarm.config import TaskSection
    from rewarm.data import prepare, tokenizer
    from rewarm.model.hf import build_model
    from rewarm.tasks import harness

    cfg, _ = task_run
    domains = prepare.prepare(cfg, progress=False)
    tok = tokenizer.load_tokenizer(cfg)
    tasks = harness.resolve(
        [TaskSection(task="rewarm:names:api", limit=8)], "t", cfg=cfg, domains=domains, tok=tok
    )
    evaluator = harness.TaskEvaluator(tasks, tok.to_hf(), batch_size=8)
    model = build_model(cfg, tok.vocab_size, tok.eos_id)
    model.train()
    random.seed(5)
    np.random.seed(5)
    torch.manual_seed(5)
    before = (random.getstate(), np.random.get_state()[1].copy(), torch.get_rng_state())
    (result,) = evaluator.evaluate(model)
    assert result.samples == 8 and model.training
    assert random.getstate() == before[0]
    assert (np.random.get_state()[1] == before[1]).all()
    assert torch.equal(torch.get_rng_state(), before[2])
