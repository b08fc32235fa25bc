"""Any local Hugging Face causal LM trains via init = "hf:PATH"; checkpoint: branches."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoModelForCausalLM, LlamaConfig

from rewarm.data import shards
from rewarm.evaluation.evaluator import eval_windows
from rewarm.train.trainer import train
from tests.runhelpers import load, one_thread, records, write_config


def _heldout_loss(model, cfg, domain: str) -> float:
    held = shards.open_domain(cfg.data_dir / domain).heldout
    x = torch.from_numpy(eval_windows(held, cfg.eval.tokens_per_domain, cfg.train.seq_len, domain))
    with torch.no_grad():
        logits = model(input_ids=x[:, :-1]).logits
    return torch.nn.functional.cross_entropy(logits.flatten(0, 1), x[:, 1:].flatten()).item()


def test_model_saved_by_transformers_trains_via_hf_init(tmp_path):
    hf_dir = tmp_path / "hf-model"
    torch.manual_seed(123)
    mcfg = LlamaConfig(
        vocab_size=300,
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        intermediate_size=128,
        tie_word_embeddings=True,
    )
    AutoModelForCausalLM.from_config(mcfg).save_pretrained(hf_dir)
    cfg = load(write_config(tmp_path, "hf", init=f"hf:{hf_dir}"), "stages.1.tokens=128")
    with one_thread():
        train(cfg, progress=False)
    original = AutoModelForCausalLM.from_pretrained(hf_dir)
    first = {r["domain"]: r["loss"] for r in records(cfg.run_dir, "eval") if r["step"] == 0}
    # The run started from exactly those weights: its first evaluation is theirs.
    assert first["prose"] == pytest.approx(_heldout_loss(original, cfg, "prose"), rel=1e-5)
    run = records(cfg.run_dir, "run")[0]
    assert run["params"] == sum(p.numel() for p in original.parameters())  # tied: counted once
    losses = [r["loss"] for r in records(cfg.run_dir, "train")]
    assert losses[5] < losses[0]

    # Branch a new run from that run's stage-one checkpoint: weights only, position 0.
    branch = load(
        write_config(tmp_path, "branch", init=f"checkpoint:{cfg.run_dir}"), "stages.1.tokens=128"
    )
    with one_thread():
        train(branch, progress=False)
    first_branch = {
        r["domain"]: r["loss"] for r in records(branch.run_dir, "eval") if r["step"] == 0
    }
    last = {r["domain"]: r["loss"] for r in records(cfg.run_dir, "eval") if r["step"] == 7}
    assert first_branch == pytest.approx(last, rel=1e-6)
    assert records(branch.run_dir, "train")[0]["step"] == 1


def test_hf_init_refuses_a_missing_directory(tmp_path):
    from rewarm.cli import main

    path = write_config(tmp_path, "missing", init=f"hf:{tmp_path / 'nope'}")
    assert main(["train", str(path), "--no-progress"]) == 2
