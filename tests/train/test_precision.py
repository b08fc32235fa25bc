"""train.precision: resolved per device, refused where it cannot run, used by evaluation too."""

from __future__ import annotations

import logging

import pytest
import torch

from rewarm.errors import UserError
from rewarm.model import precision
from rewarm.runconfig import load as load_config
from rewarm.train.trainer import train
from tests.runhelpers import load, one_thread, records, write_config

CPU, CUDA = torch.device("cpu"), torch.device("cuda")
SHORT = ["stages.0.tokens=384", "stages.1.tokens=256", "eval.every_tokens=0"]


def test_auto_is_fp32_on_cpu_and_bf16_on_a_gpu_that_has_it(monkeypatch):
    assert precision.resolve("auto", CPU) == "fp32"
    assert precision.resolve("fp32", CUDA) == "fp32"
    monkeypatch.setattr(precision, "cuda_bf16", lambda device: True)
    assert precision.resolve("auto", CUDA) == "bf16-mixed"
    monkeypatch.setattr(precision, "cuda_bf16", lambda device: False)
    assert precision.resolve("auto", CUDA) == "fp32"  # pre-Ampere: what auto can run


def test_bf16_on_a_gpu_without_it_is_refused_naming_the_key(monkeypatch):
    monkeypatch.setattr(precision, "cuda_bf16", lambda device: False)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "Tesla V100")
    with pytest.raises(UserError, match=r"run\.toml: train\.precision: .*V100"):
        precision.resolve("bf16-mixed", CUDA, "run.toml: train.precision")


def test_bf16_on_a_cpu_runs_and_warns_only_without_native_bf16(monkeypatch, caplog):
    with caplog.at_level(logging.WARNING, logger="rewarm"):
        monkeypatch.setattr(precision, "cpu_bf16", lambda: True)
        assert precision.resolve("bf16-mixed", CPU) == "bf16-mixed"
        assert not caplog.records
        monkeypatch.setattr(precision, "cpu_bf16", lambda: False)
        assert precision.resolve("bf16-mixed", CPU) == "bf16-mixed"
    assert len(caplog.records) == 1 and "emulated" in caplog.records[0].getMessage()


def test_unknown_precision_is_a_config_error(tmp_path):
    with pytest.raises(UserError, match=r"train\.precision.*bf16-mixed"):
        load_config(write_config(tmp_path), ['train.precision="fp16"'])


def test_bf16_mixed_trains_in_bf16_and_evaluates_in_bf16(tmp_path):
    """A CPU run in bf16-mixed: its losses differ from fp32 (autocast is on), its
    weights stay fp32, and `rewarm eval`'s evaluator (built from the same config)
    reproduces the run's own final evaluation exactly, while fp32 does not."""
    from rewarm.data.prepare import prepare
    from rewarm.evaluation.evaluator import build_evaluator
    from rewarm.model.hf import load_checkpoint_model, resolve_checkpoint_dir

    fp32 = load(write_config(tmp_path, "fp32"), *SHORT)
    bf16 = load(write_config(tmp_path, "bf16"), *SHORT, 'train.precision="bf16-mixed"')
    with one_thread():
        train(fp32, progress=False)
        train(bf16, progress=False)
    a = [r["loss"] for r in records(fp32.run_dir, "train")]
    b = [r["loss"] for r in records(bf16.run_dir, "train")]
    assert len(a) == len(b) == 5 and a != b
    assert b == pytest.approx(a, rel=0.05)  # the same training, to bf16 rounding

    model = load_checkpoint_model(resolve_checkpoint_dir(bf16.run_dir, "test"))
    assert all(p.dtype == torch.float32 for p in model.parameters())  # fp32 master weights
    final = {r["domain"]: r["loss"] for r in records(bf16.run_dir, "eval") if r["step"] == 5}
    domains = prepare(bf16, progress=False)
    with one_thread():
        same = build_evaluator(bf16, domains, device=CPU).evaluate(model)
        plain = build_evaluator(fp32, domains, device=CPU).evaluate(model)
    assert {r.domain: r.loss for r in same} == pytest.approx(final, rel=1e-6)
    assert {r.domain: r.loss for r in plain} != pytest.approx(final, rel=1e-6)
