"""Peak FLOP/s of the training device, for model FLOPs utilisation (MFU).

MFU = achieved FLOP/s / peak FLOP/s, achieved = flops_per_token * tokens/s
(SCIENCE.md section 6). On CUDA the peak is the vendor's dense bf16 figure for
known devices; elsewhere it is measured with a large matrix product (fp32 on a
CPU, the dtype the CPU trains in).
"""

from __future__ import annotations

import functools
import time

import torch

# Dense bf16 tensor-core peaks (no sparsity), from the vendors' data sheets.
CUDA_PEAKS = {"H200": 989e12, "H100": 989e12, "A100": 312e12, "L40S": 362e12, "L4": 121e12}


def measure_matmul_flops(
    device: torch.device,
    dtype: torch.dtype,
    n: int = 1024,
    reps: int = 8,
    min_seconds: float = 0.0,
) -> float:
    """Best FLOP/s of timed n x n products (2 n^3 FLOPs each): at least `reps` of
    them, repeated until `min_seconds` have passed. The best rep, not the mean, is
    the peak: slower reps are interference from other processes, which a loaded
    machine shows more of (a longer `min_seconds` helps there). The product is
    written into one preallocated output, so allocation is not timed."""
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    out = torch.empty(n, n, device=device, dtype=dtype)
    torch.mm(a, b, out=out)  # warm-up: thread pool, page faults
    best = float("inf")
    done, began = 0, time.perf_counter()
    while done < reps or time.perf_counter() - began < min_seconds:
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        torch.mm(a, b, out=out)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        best = min(best, time.perf_counter() - start)
        done += 1
    return 2.0 * n**3 / max(best, 1e-9)


def peak_flops(device: torch.device) -> float:
    return _peak_flops(str(device))


@functools.cache
def _peak_flops(name: str) -> float:
    """Measured once per process and device: a run's MFU then shares one denominator, and
    a process that trains several runs (the demo, tests) pays for it once."""
    device = torch.device(name)
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        for key, peak in CUDA_PEAKS.items():
            if key in name:
                return peak
        return measure_matmul_flops(device, torch.bfloat16, n=4096, reps=10)
    # The RNG must not move: measuring would otherwise shift model init and data order.
    with torch.random.fork_rng(devices=[]):
        # 2048: large enough to reach the CPU's matmul peak (1024 reads ~2x low under load).
        return measure_matmul_flops(device, torch.float32, n=2048, reps=5)
