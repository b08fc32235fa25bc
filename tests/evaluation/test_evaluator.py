"""The evaluator: fixed windows, exact mean loss, bits per byte, rank slices that add up."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from rewarm.errors import UserError
from rewarm.evaluation.evaluator import Evaluator, eval_windows


@settings(max_examples=50, deadline=None)
@given(st.integers(9, 500), st.integers(1, 200), st.integers(2, 8))
def test_windows_are_fixed_in_range_and_sized(n, tokens, seq_len):
    held = np.arange(n, dtype=np.uint16)
    if n < seq_len + 1:
        with pytest.raises(UserError, match="held-out split"):
            eval_windows(held, tokens, seq_len, "d")
        return
    w = eval_windows(held, tokens, seq_len, "d")
    assert w.shape == (max(1, tokens // seq_len), seq_len + 1) and w.dtype == np.int64
    # Each window is a contiguous slice of the split: consecutive ids here.
    assert np.all(np.diff(w, axis=1) == 1) and w.min() >= 0 and w.max() < n
    assert np.array_equal(w, eval_windows(held, tokens, seq_len, "d"))


class Bigram(torch.nn.Module):
    """Logits depend only on the current token: an easy exact reference."""

    def __init__(self, vocab: int) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.table = torch.nn.Parameter(torch.randn(vocab, vocab))

    def forward(self, input_ids):
        return type("Out", (), {"logits": self.table[input_ids]})()


def test_loss_is_the_token_mean_and_ranks_add_up():
    rng = np.random.default_rng(0)
    held = {
        "a": rng.integers(0, 11, 400).astype(np.uint16),
        "b": rng.integers(0, 11, 90).astype(np.uint16),
    }
    model = Bigram(11)
    one = Evaluator(
        {k: (v, 1.5) for k, v in held.items()},
        tokens_per_domain=64,
        seq_len=8,
        batch_rows=3,
        device=torch.device("cpu"),
    )
    res = {r.domain: r for r in one.evaluate(model)}
    for name, arr in held.items():
        w = torch.from_numpy(eval_windows(arr, 64, 8, name))
        want = torch.nn.functional.cross_entropy(
            model.table[w[:, :-1]].flatten(0, 1), w[:, 1:].flatten()
        )
        assert res[name].loss == pytest.approx(want.item(), rel=1e-6)
        assert res[name].tokens == w[:, 1:].numel()
        assert res[name].bits_per_byte == pytest.approx(res[name].loss / math.log(2) / 1.5)
    assert model.training  # mode restored

    # Two "ranks" each evaluating their slice, with sums exchanged, give the same numbers.
    partial = []
    for rank in range(2):
        ev = Evaluator(
            {k: (v, 1.5) for k, v in held.items()},
            tokens_per_domain=64,
            seq_len=8,
            batch_rows=3,
            device=torch.device("cpu"),
            rank=rank,
            world_size=2,
            all_reduce_sum=partial.append,
        )
        ev.evaluate(model)
    sums = [partial[i] + partial[i + 2] for i in range(2)]
    assert (sums[0][0] / sums[0][1]).item() == pytest.approx(res["a"].loss, rel=1e-6)


def test_built_from_the_config_with_the_training_micro_batch():
    """`build_evaluator` (the trainer's and `rewarm eval`'s): the config's sample and
    twice the training micro-batch of a rank; a named subset of domains."""
    from rewarm.config import config_from_dict
    from rewarm.data.shards import DomainData
    from rewarm.evaluation.evaluator import build_evaluator

    cfg = config_from_dict(
        {
            "run": {"name": "t"},
            "domains": {"a": {"source": "a.txt"}, "b": {"source": "b.txt"}},
            "train": {"seq_len": 8, "batch_tokens": 64},
            "eval": {"tokens_per_domain": 32},
            "stages": [{"name": "s", "tokens": 64, "mix": {"a": 1.0}}],
        }
    )
    held = np.arange(200, dtype=np.uint16)
    manifest = {"split": {"heldout_bytes": 400, "heldout_tokens": 200}}
    domains = {n: DomainData(name=n, train=held, heldout=held, manifest=manifest) for n in "ab"}
    cpu = torch.device("cpu")
    one = build_evaluator(cfg, domains, device=cpu)
    assert one.batch_rows == 2 * 8 and list(one.samples) == ["a", "b"]
    assert one.samples["a"][0].shape == (4, 9)  # 32 tokens // seq_len 8 windows
    two = build_evaluator(cfg, domains, device=cpu, rank=1, world_size=2, names=["b"])
    assert two.batch_rows == 2 * 4 and list(two.samples) == ["b"]
    assert two.samples["b"][0].shape == (2, 9)  # this rank's half of the windows
    cfg.train.micro_batch_tokens = 16
    assert build_evaluator(cfg, domains, device=cpu, world_size=2).batch_rows == 2 * 2
