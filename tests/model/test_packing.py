"""Document masking (`train.document_mask`): positions restart at each document, a
token's logits do not depend on earlier documents of its window, evaluation masks
the same way, and a model that ignores the packed positions is refused."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers import AutoModelForCausalLM

from rewarm.errors import UserError
from rewarm.evaluation.evaluator import Evaluator
from rewarm.model.packing import check_model, document_positions
from rewarm.model.presets import preset_config
from rewarm.train.step import NextTokenLoss
from rewarm.train.trainer import train
from tests.runhelpers import load, one_thread, records, write_config

EOS = 256


def tiny_model() -> torch.nn.Module:
    torch.manual_seed(0)
    cfg = preset_config("llama-tiny", vocab_size=300, seq_len=64)
    return AutoModelForCausalLM.from_config(cfg, attn_implementation="sdpa").eval()


def test_positions_restart_after_each_eos():
    x = torch.tensor([[5, 6, EOS, 7, 8, 9, EOS, EOS, 1], [EOS, 1, 2, 3, 4, 5, 6, 7, 8]])
    assert document_positions(x, EOS).tolist() == [
        [0, 1, 2, 0, 1, 2, 3, 0, 0],
        [0, 0, 1, 2, 3, 4, 5, 6, 7],
    ]


def test_logits_ignore_the_previous_document_only_with_the_mask():
    model = tiny_model()
    gen = torch.Generator().manual_seed(1)
    a = torch.randint(0, EOS, (3, 40), generator=gen)
    a[:, 14] = EOS  # document 1: tokens 0-14 (its eos included); document 2 from 15
    b = a.clone()
    b[:, :14] = torch.randint(0, EOS, (3, 14), generator=gen)  # another first document
    with torch.no_grad():
        masked = [
            model(input_ids=x, position_ids=document_positions(x, EOS)).logits for x in (a, b)
        ]
        plain = [model(input_ids=x).logits for x in (a, b)]
        alone = model(input_ids=a[:, 15:]).logits  # document 2 as its own sequence
    assert torch.equal(masked[0][:, 15:], masked[1][:, 15:])
    assert torch.allclose(masked[0][:, 15:], alone, atol=1e-5)
    assert not torch.allclose(plain[0][:, 15:], plain[1][:, 15:], atol=1e-3)
    assert not torch.allclose(masked[0][:, :14], masked[1][:, :14], atol=1e-3)


def test_training_loss_uses_the_mask():
    """The summed loss of the targets predicted from document 2's tokens does not move
    when document 1 changes (total minus the first 12 tokens' loss), without the mask
    it does."""
    model = tiny_model()
    tokens = torch.randint(0, EOS, (2, 33), generator=torch.Generator().manual_seed(2))
    tokens[:, 10] = EOS  # document 2 starts at token 11
    changed = tokens.clone()
    changed[:, :10] = (tokens[:, :10] + 1) % EOS

    def tail(loss: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
        return loss(x) - loss(x[:, :12])

    with torch.no_grad():
        masked, plain = NextTokenLoss(model, EOS), NextTokenLoss(model)
        assert torch.allclose(tail(masked, tokens), tail(masked, changed), atol=1e-4)
        assert not torch.allclose(tail(plain, tokens), tail(plain, changed), atol=1e-4)


def test_evaluator_masks_like_training():
    model = tiny_model()
    held = np.random.default_rng(3).integers(0, EOS, 400).astype(np.uint16)
    held[::37] = EOS
    kw = dict(tokens_per_domain=96, seq_len=32, batch_rows=2, device=torch.device("cpu"))
    masked = Evaluator({"d": (held, 1.0)}, document_eos=EOS, **kw).evaluate(model)[0]
    plain = Evaluator({"d": (held, 1.0)}, **kw).evaluate(model)[0]
    windows = Evaluator({"d": (held, 1.0)}, **kw).samples["d"][0]
    with torch.no_grad():
        want = NextTokenLoss(model, EOS)(windows) / (windows.shape[0] * 32)
    assert masked.loss == pytest.approx(float(want), rel=1e-6)
    assert masked.loss != pytest.approx(plain.loss, rel=1e-6)


class IgnoresPositions(torch.nn.Module):
    """A model whose attention crosses documents whatever the positions say."""

    def __init__(self, inner: torch.nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, input_ids, position_ids=None):
        return self.inner(input_ids=input_ids)


def test_model_that_ignores_packed_positions_is_refused():
    model = tiny_model()
    check_model(model, EOS, 300, "t.toml: train.document_mask")  # a Llama model passes
    with pytest.raises(UserError, match="train.document_mask"):
        check_model(IgnoresPositions(model), EOS, 300, "t.toml: train.document_mask")


def test_run_with_document_mask_trains_and_evaluates(tmp_path):
    cfg = load(write_config(tmp_path), "train.document_mask=true", "stages.1.tokens=128")
    with one_thread():
        state = train(cfg, progress=False)
    assert state.stage == 2
    evals = records(cfg.run_dir, "eval")
    assert evals and all(np.isfinite(r["loss"]) for r in evals)
