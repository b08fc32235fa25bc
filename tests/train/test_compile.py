"""`train.compile = true`: the compiled loss (model + cross-entropy) trains like eager mode."""

from __future__ import annotations

import shutil

import pytest
import torch

from rewarm.train import step as step_mod
from rewarm.train.trainer import train
from tests.runhelpers import load, one_thread, records, write_config

pytestmark = pytest.mark.skipif(shutil.which("c++") is None, reason="Inductor needs a C++ compiler")

SETS = ["stages.0.tokens=384", "stages.1.tokens=256", "eval.every_tokens=0"]


def _losses(cfg) -> list[float]:
    return [r["loss"] for r in records(cfg.run_dir, "train")]


def test_compiled_loss_matches_eager(tmp_path, monkeypatch):
    eager = load(write_config(tmp_path, "eager"), *SETS)
    with one_thread():
        train(eager, progress=False)

    built = []
    real = step_mod.loss_module

    def spy(wrapped, *, compile, distributed, **options):
        built.append(m := real(wrapped, compile=compile, distributed=distributed, **options))
        return m

    monkeypatch.setattr("rewarm.train.session.loss_module", spy)
    compiled = load(write_config(tmp_path, "compiled"), *SETS, "train.compile=true")
    with one_thread():
        train(compiled, progress=False)
    # The whole loss module was compiled (not just the model) ...
    assert len(built) == 1 and isinstance(built[0], torch._dynamo.eval_frame.OptimizedModule)
    assert isinstance(built[0]._orig_mod, step_mod.NextTokenLoss)
    # ... and computes the same training: 5 steps over two stages, with replay.
    a, b = _losses(eager), _losses(compiled)
    assert len(a) == len(b) == 5
    assert b == pytest.approx(a, rel=1e-4, abs=1e-5)
    # Evaluations (eager model in both runs) agree too: same weights after the run.
    ev = [(r["step"], r["domain"], r["loss"]) for r in records(eager.run_dir, "eval")]
    cv = [(r["step"], r["domain"], r["loss"]) for r in records(compiled.run_dir, "eval")]
    assert [x[:2] for x in ev] == [x[:2] for x in cv]
    assert [x[2] for x in cv] == pytest.approx([x[2] for x in ev], rel=1e-4)
