"""An upper bound on any trainer's MFU: the training step's counted arithmetic alone.

Run as a worker of throughput.py (`--worker ceiling`).
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import common
from workload import build_model


def worker_ceiling(a: argparse.Namespace) -> dict[str, Any]:
    """The step's counted arithmetic alone: an upper bound on any trainer's MFU.

    Times, on this CPU, exactly the matrix products a training step of the model must
    do (for every `nn.Linear` of the model, T = batch_tokens rows: forward X W^T, input
    gradient dY W, weight gradient dY^T X) plus causal SDPA attention forward and
    backward per layer, each the best of `repeats`. A step that did nothing else (no
    norms, activations, softmax of the loss, optimizer) would take their sum; its MFU
    is the ceiling. The fp32 peak is measured in the same process, before and after.
    """
    import torch
    import torch.nn.functional as F

    from rewarm.model.accounting import model_stats

    model = build_model(a.preset, a.vocab_size, a.seq_len)
    T = a.batch_tokens
    peak = common.matmul_peak_gflops()

    def best(fn: Any, repeats: int = 3) -> float:
        fn()
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        return min(times)

    shapes: dict[tuple[int, int], int] = {}
    for m in model.modules():
        if isinstance(m, torch.nn.Linear):
            shapes[(m.in_features, m.out_features)] = (
                shapes.get((m.in_features, m.out_features), 0) + 1
            )
    gemm_s = 0.0
    gemm_flops = 0.0
    for (k, n), count in shapes.items():
        x, w, gy = torch.randn(T, k), torch.randn(n, k), torch.randn(T, n)
        t = best(lambda x=x, w=w: x @ w.t()) + best(lambda gy=gy, w=w: gy @ w)
        t += best(lambda gy=gy, x=x: gy.t() @ x)
        gemm_s += count * t
        gemm_flops += count * 3 * 2.0 * T * k * n
    cfg = model.config
    heads, d = cfg.num_attention_heads, cfg.hidden_size
    rows = T // a.seq_len
    q, k_, v = (
        torch.randn(rows, heads, a.seq_len, d // heads, requires_grad=True) for _ in range(3)
    )

    def attention() -> None:
        out = F.scaled_dot_product_attention(q, k_, v, is_causal=True)
        out.backward(torch.ones_like(out))

    attn_s = cfg.num_hidden_layers * best(attention)
    peak = max(peak, common.matmul_peak_gflops())
    fpt = model_stats(model, a.seq_len).flops_per_token
    floor_s = gemm_s + attn_s
    return {
        "gemm_s": gemm_s,
        "gemm_gflops": gemm_flops / gemm_s / 1e9,
        "attention_s": attn_s,
        "floor_s": floor_s,
        "flops_per_step": fpt * T,
        "peak_gflops": peak,
        "ceiling_mfu": fpt * T / floor_s / (peak * 1e9),
        "shapes": {f"{k}x{n}": c for (k, n), c in shapes.items()},
    }
