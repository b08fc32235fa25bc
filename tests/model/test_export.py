"""`rewarm export` writes a directory transformers loads, with the same loss on a batch."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from rewarm import checkpoint
from rewarm.cli import main
from rewarm.data.tokenizer import ByteTokenizer
from rewarm.model.hf import load_checkpoint_model
from rewarm.model.presets import preset_config
from rewarm.train.step import micro_batch_loss


def _write_checkpoint(root, tied: bool):
    torch.manual_seed(0)
    mcfg = preset_config(
        "llama-tiny", vocab_size=257, seq_len=32, overrides={"tie_word_embeddings": tied}
    )
    model = AutoModelForCausalLM.from_config(mcfg, attn_implementation="sdpa")
    tok = ByteTokenizer()
    path = checkpoint.save(
        root,
        5,
        model_state=model.state_dict(),
        model_config_json=mcfg.to_json_string(),
        optimizer_state=None,
        state={"step": 5},
        keep=1,
        extra=lambda d: tok.save(d / checkpoint.TOKENIZER),
    )
    return model, path


@pytest.mark.parametrize("tied", [False, True])
def test_export_reloads_with_the_same_loss(tmp_path, tied):
    model, ckpt = _write_checkpoint(tmp_path / "ckpt", tied)
    out = tmp_path / "hf"
    assert main(["export", str(ckpt), "--out", str(out)]) == 0
    reloaded = AutoModelForCausalLM.from_pretrained(out)
    tok = AutoTokenizer.from_pretrained(out)
    text = "def f(x):\n    return x + 1  # ünïcode"
    ids = tok(text)["input_ids"]
    assert ids == ByteTokenizer().encode(text)
    batch = torch.tensor([ids[:33], ids[1:34]])
    with torch.no_grad():
        a, b = micro_batch_loss(model, batch), micro_batch_loss(reloaded, batch)
    assert b.item() == pytest.approx(a.item(), rel=1e-6)
    # And rewarm's own loader gives bitwise the same weights.
    again = load_checkpoint_model(ckpt)
    assert all(
        torch.equal(p, q) for p, q in zip(model.parameters(), again.parameters(), strict=True)
    )


def test_export_refuses_non_empty_out_without_force(tmp_path, capsys):
    _, ckpt = _write_checkpoint(tmp_path / "ckpt", False)
    (tmp_path / "hf").mkdir()
    (tmp_path / "hf" / "keep.txt").write_text("x")
    assert main(["export", str(ckpt), "--out", str(tmp_path / "hf")]) == 2
    assert "--force" in capsys.readouterr().err
    assert main(["export", str(tmp_path / "ckpt"), "--out", str(tmp_path / "hf"), "--force"]) == 0
    assert not (tmp_path / "hf" / "keep.txt").exists()
