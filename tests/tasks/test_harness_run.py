"""lm-evaluation-harness for real, on a tiny model and a local task (no network):
`task` records at every stage boundary and every `tasks_every_tokens`, equal to what
`lm_eval` returns standalone on the exported checkpoint and to `rewarm eval --tasks`;
the report of the two-stage run shows the task forgotten; task evaluation leaves the
training's random state and the model's mode alone."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest
import torch

from rewarm import checkpoint
from rewarm.cli import main
from rewarm.runlog import RunEnd, read_run
from tests.tasks.taskhelpers import LIMIT, RECALL, RECALL_ITEMS, STAGE_TOKENS, TASK_EVERY

pytest.importorskip("lm_eval", reason="needs the tasks extra: pip install 'rewarm[tasks]'")

NEXT_LINE = "rewarm_api_next_line"  # built-in, from api's held-out documents
TASKS = {NEXT_LINE: LIMIT, RECALL: RECALL_ITEMS}  # task -> items per evaluation


def _task_files(cfg):
    """task -> the YAML the harness reads (the built-in one next to the shards)."""
    return {
        NEXT_LINE: cfg.data_dir / "tasks" / "api-next-line-64" / "task.yaml",
        RECALL: Path(cfg.eval.tasks[1].task),
    }


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
    end = 2 * STAGE_TOKENS
    inside = [t for t in range(TASK_EVERY, end, TASK_EVERY) if t != STAGE_TOKENS]
    want = sorted(
        [(0, "api"), (STAGE_TOKENS, "api"), (STAGE_TOKENS, "other"), (end, "other")]
        + [(t, "api" if t < STAGE_TOKENS else "other") for t in inside]
    )
    for task, items in TASKS.items():
        mine = [r for r in log.tasks if r.task == task]
        assert sorted((r.tokens, r.stage) for r in mine) == want, task
        for r in mine:
            assert (r.metric, r.domain, r.higher_is_better) == ("acc", "api", True)
            assert r.samples == items and r.stderr is not None and 0 <= r.value <= 1
        at_boundary = [r for r in mine if r.tokens == STAGE_TOKENS]
        assert at_boundary[0].value == at_boundary[1].value  # evaluated once, written twice
    assert {r.task for r in log.tasks} == set(TASKS)
    (end_record,) = [e for e in log.events if isinstance(e, RunEnd)]
    assert end_record.task_evaluations == len({t for t, _ in want})
    assert end_record.evaluations == 3  # held-out loss: the boundaries only


def test_values_equal_lm_eval_standalone_on_the_exported_checkpoints(task_run, tmp_path, capsys):
    from lm_eval import simple_evaluate
    from lm_eval.tasks import TaskManager

    cfg, _ = task_run
    log = read_run(cfg.run_dir)
    checked = 0
    for tokens, ckpt in _stage_end_checkpoints(cfg):
        out = tmp_path / ckpt.name
        assert main(["export", str(ckpt), "--out", str(out)]) == 0
        for task, yaml in _task_files(cfg).items():
            res = simple_evaluate(
                model="hf",
                model_args={"pretrained": str(out), "dtype": "float32"},
                tasks=[str(yaml)],
                limit=TASKS[task],
                batch_size=cfg.eval.task_batch_size,
                device="cpu",
                task_manager=TaskManager(include_defaults=False),
            )
            assert res is not None
            standalone = res["results"][task]
            logged = [r for r in log.tasks if r.tokens == tokens and r.task == task]
            assert len(logged) == (2 if tokens == STAGE_TOKENS else 1)
            for r in logged:
                assert r.value == pytest.approx(standalone["acc,none"], abs=1e-12)
                assert r.stderr == pytest.approx(standalone["acc_stderr,none"], abs=1e-12)
            # `rewarm eval` on the checkpoint: the same number again.
            capsys.readouterr()
            args = ["eval", str(ckpt), "--tasks", str(yaml), "--limit", str(TASKS[task])]
            assert main([*args, "--json"]) == 0
            (line,) = capsys.readouterr().out.strip().splitlines()
            assert json.loads(line)["value"] == pytest.approx(logged[0].value, abs=1e-12)
            checked += 1
    assert checked == 4


def test_eval_command_runs_the_configs_tasks(task_run, capsys):
    cfg, _ = task_run
    final = {r.task: r.value for r in read_run(cfg.run_dir).tasks}  # the last of each
    capsys.readouterr()
    assert main(["eval", str(cfg.run_dir), "--config", cfg.source, "--tasks"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["task", "metric", "value", "stderr", "items"]
    rows = {line.split()[0]: line.split()[1:] for line in out[1:]}
    assert set(rows) == set(TASKS)
    for task, cells in rows.items():
        assert cells[0] == "acc" and float(cells[1]) == pytest.approx(final[task], abs=1e-4)


def test_report_shows_the_task_forgotten(task_run, tmp_path):
    from rewarm.report.build import build_report

    cfg, _ = task_run
    build_report([read_run(cfg.run_dir)], tmp_path)
    summary = (tmp_path / "summary.md").read_text(encoding="utf-8")
    section = summary.split("## run: task forgetting")[1].split("\n## ")[0]
    row = next(line for line in section.splitlines() if line.startswith(f"| {RECALL} acc"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    forgetting, bwt = float(cells[4]), float(cells[5])
    # Stage "other" overwrites what follows each object: the recall task is forgotten.
    at = {r.tokens: r.value for r in read_run(cfg.run_dir).tasks if r.task == RECALL}
    assert at[STAGE_TOKENS] > 0.9  # learnt in stage "api"
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
        [TaskSection(task="rewarm:next-line:api", limit=8)], "t", cfg=cfg, domains=domains, tok=tok
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
