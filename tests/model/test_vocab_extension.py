"""Vocabulary extension (`model.extend_vocab`): a tokenizer with added tokens grows the
embeddings and LM head (new rows at the mean of the old ones) instead of being refused;
the resize leaves every old token's logit unchanged."""

from __future__ import annotations

import math

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from rewarm import runconfig
from rewarm.data.tokenizer import ByteTokenizer, load_hf, train_bpe
from rewarm.errors import UserError
from rewarm.model.hf import build_model
from rewarm.model.presets import preset_config

ADDED = ["<python>", "<rust>", "<ελληνικά>"]


@pytest.fixture
def dirs(tmp_path):
    """A byte-vocabulary model saved with its tokenizer, and that tokenizer extended."""
    torch.manual_seed(0)
    base = tmp_path / "base"
    model = AutoModelForCausalLM.from_config(
        preset_config("llama-tiny", vocab_size=257, seq_len=64)
    )
    model.save_pretrained(base)
    ByteTokenizer().save(base)
    hf = AutoTokenizer.from_pretrained(str(base))
    hf.add_tokens(ADDED)
    hf.save_pretrained(str(tmp_path / "extended"))
    return base, tmp_path / "extended"


def _cfg(tmp_path, base, tokenizer: str, extend: bool):
    return runconfig.from_dict(
        {
            "run": {"name": "v", "out_dir": str(tmp_path / "runs")},
            "model": {"init": f"hf:{base}", "extend_vocab": extend},
            "tokenizer": {"kind": tokenizer},
            "domains": {"d": {"source": "x"}},
            "stages": [{"name": "s", "tokens": 8192, "mix": {"d": 1}}],
        },
        "t.toml",
    )


def test_extension_keeps_old_logits_and_means_new_rows(tmp_path, dirs):
    base, extended = dirs
    tok = load_hf(str(extended))
    assert tok.vocab_size == 257 + len(ADDED)
    grown = build_model(_cfg(tmp_path, base, f"hf:{extended}", True), tok.vocab_size, tokenizer=tok)
    old = AutoModelForCausalLM.from_pretrained(base).eval()
    grown.eval()
    emb, head = grown.get_input_embeddings().weight, grown.get_output_embeddings().weight
    assert emb.shape[0] == head.shape[0] == grown.config.vocab_size == 260
    for new, before in (
        (emb, old.get_input_embeddings().weight),
        (head, old.get_output_embeddings().weight),
    ):
        assert torch.equal(new[:257], before)
        assert torch.allclose(new[257:], before.mean(0).expand(3, -1), atol=1e-4)
    x = torch.randint(0, 257, (2, 48), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        a, b = old(input_ids=x).logits, grown(input_ids=x).logits
    assert torch.equal(b[..., :257], a)  # every old token's logit, exactly
    # The loss moves only by the mass the new tokens take: at most log(1 + k/V) nats per
    # token, since a mean row's logit is the average old logit (Jensen; Hewitt 2021).
    nll = [
        torch.nn.functional.cross_entropy(
            logits[:, :-1].flatten(0, 1), x[:, 1:].flatten(), reduction="none"
        )
        for logits in (a, b)
    ]
    delta = nll[1] - nll[0]
    assert (delta > 0).all() and (delta <= math.log(1 + 3 / 257) + 1e-4).all()


def test_without_extend_vocab_the_bigger_tokenizer_is_refused(tmp_path, dirs):
    base, extended = dirs
    tok = load_hf(str(extended))
    with pytest.raises(UserError, match="model.extend_vocab = true"):
        build_model(_cfg(tmp_path, base, f"hf:{extended}", False), tok.vocab_size, tokenizer=tok)


def test_a_tokenizer_that_renumbers_the_models_tokens_is_refused(tmp_path, dirs):
    base, _ = dirs
    other = train_bpe(iter(["some text to learn merges from"] * 50), 300)
    other.save(tmp_path / "other")
    tok = load_hf(str(tmp_path / "other"))
    with pytest.raises(UserError, match="tokenizer.kind.*keeps the model's ids"):
        build_model(
            _cfg(tmp_path, base, f"hf:{tmp_path / 'other'}", True), tok.vocab_size, tokenizer=tok
        )
