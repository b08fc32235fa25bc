"""Weight averages of known weight sequences equal their closed forms; swapping weights
in for an evaluation gives the model's own back bit for bit."""

from __future__ import annotations

import numpy as np
import torch

from rewarm.mitigate.averaging import WeightAverage
from rewarm.mitigate.options import AverageSpec
from rewarm.mitigate.tensors import snapshot, swapped
from rewarm.mitigate.wsm import merge_weights


def _spec(kind: str, **kw) -> AverageSpec:
    base = {"every_tokens": 1, "last": 3, "decay": 0.9, "shape": "linear", "apply_at_end": False}
    return AverageSpec(kind=kind, **{**base, **kw})


def _sequence(n: int) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return [torch.randn(4, 3, generator=g) for _ in range(n)]


def _observe_all(avg: WeightAverage, seq: list[torch.Tensor]) -> torch.nn.Linear:
    model = torch.nn.Linear(3, 4, bias=False)
    for theta in seq:
        with torch.no_grad():
            model.weight.copy_(theta)
        avg.observe(model)
    return model


def test_uniform_is_the_mean_of_the_last_k():
    seq = _sequence(7)
    avg = WeightAverage(_spec("uniform", last=3))
    _observe_all(avg, seq)
    want = torch.stack(seq[-3:]).double().mean(0)
    torch.testing.assert_close(avg.averaged()["weight"].double(), want, rtol=0, atol=1e-6)
    assert avg.updates == 7 and len(avg.window) == 3


def test_fewer_snapshots_than_k_average_what_there_is():
    seq = _sequence(2)
    avg = WeightAverage(_spec("uniform", last=5))
    _observe_all(avg, seq)
    torch.testing.assert_close(avg.averaged()["weight"], (seq[0] + seq[1]) / 2)


def test_ema_matches_its_closed_form():
    seq, d = _sequence(6), 0.9
    avg = WeightAverage(_spec("ema", decay=d))
    _observe_all(avg, seq)
    # avg_n = d^n theta_0 + (1 - d) sum_{i=1..n} d^(n-i) theta_i
    n = len(seq) - 1
    want = d**n * seq[0].double() + sum(
        (1 - d) * d ** (n - i) * seq[i].double() for i in range(1, n + 1)
    )
    torch.testing.assert_close(avg.averaged()["weight"].double(), want, rtol=0, atol=1e-6)


def test_wsm_weights_the_window_by_the_shape():
    seq = _sequence(6)
    avg = WeightAverage(_spec("wsm", last=4, shape="cosine"))
    _observe_all(avg, seq)
    c = merge_weights("cosine", 4)
    want = sum(float(cj) * t.double() for cj, t in zip(c, seq[-4:], strict=True))
    torch.testing.assert_close(avg.averaged()["weight"].double(), want, rtol=0, atol=1e-6)
    np.testing.assert_allclose(avg.coefficients(), c)


def test_one_snapshot_is_the_model_itself():
    avg = WeightAverage(_spec("uniform"))
    model = _observe_all(avg, _sequence(1))
    assert avg.trivial
    assert torch.equal(avg.averaged()["weight"], model.weight)


def test_swapped_restores_the_models_weights_exactly():
    model = torch.nn.Linear(3, 4)
    own = snapshot(model)
    other = {k: torch.randn_like(v) for k, v in own.items()}
    with swapped(model, other):
        assert torch.equal(model.weight, other["weight"])
    assert all(torch.equal(p, own[n]) for n, p in model.named_parameters())
