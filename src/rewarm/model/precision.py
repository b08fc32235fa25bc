"""The numeric precision training and evaluation run in (`train.precision`).

| value | weights and optimizer | forward and backward |
| --- | --- | --- |
| `"fp32"` | fp32 | fp32 |
| `"bf16-mixed"` | fp32 (master weights, AdamW moments) | bf16 autocast: matrix products and attention in bf16, reductions (norms, softmax, the loss) in fp32 |
| `"auto"` | `"bf16-mixed"` on a CUDA device that supports bf16, else `"fp32"` | |

`"auto"` is what rewarm always did: fp32 on a CPU (exact resume and the tests'
bitwise comparisons rely on it), bf16 autocast with fp32 master weights on a GPU
(Micikevicius et al. 2018, "Mixed Precision Training", with bf16 instead of fp16,
so no loss scaling is needed). A pure-bf16 mode (bf16 weights and moments) is not
offered: AdamW updates smaller than bf16's 8-bit mantissa resolves are lost
without stochastic rounding or Kahan summation, which changes the training
itself, not only its speed.

`"bf16-mixed"` on a CUDA device without bf16 (before Ampere) cannot run and is
refused naming the key. On a CPU it runs (CPU autocast), and is fast only where
the CPU has native bf16 matrix units (AMX or AVX512-BF16); elsewhere products are
emulated and a step is many times slower, so a warning says so. It is allowed
rather than refused because it is the only way to exercise the GPU's precision
path on a CPU, and it is the faster choice on CPUs with AMX.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable

import torch

from rewarm.errors import UserError

logger = logging.getLogger(__name__)

Autocast = Callable[[], contextlib.AbstractContextManager]


def resolve(precision: str, device: torch.device, where: str = "train.precision") -> str:
    """The precision in force on `device`: "fp32" or "bf16-mixed" (`UserError` when the
    device cannot run the one asked for)."""
    if precision == "auto":
        return "bf16-mixed" if device.type == "cuda" and cuda_bf16(device) else "fp32"
    if precision == "bf16-mixed":
        if device.type == "cuda" and not cuda_bf16(device):
            name = torch.cuda.get_device_name(device)
            raise UserError(
                f'{where}: "bf16-mixed" needs a GPU with bf16 support (Ampere or newer); '
                f'{name} has none: use "fp32"'
            )
        if device.type == "cpu" and not cpu_bf16():
            logger.warning(
                'rewarm train: %s = "bf16-mixed" on a CPU without native bf16 (AMX or '
                "AVX512-BF16): bf16 products are emulated and training is much slower than "
                'in "fp32"',
                where,
            )
    return "fp32" if precision == "auto" else precision


def autocast(precision: str, device: torch.device) -> Autocast:
    """A context-manager factory that runs the forward pass in `precision` (resolved)."""
    if precision == "bf16-mixed":
        return lambda: torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext


def cuda_bf16(device: torch.device) -> bool:
    return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())


def cpu_bf16() -> bool:
    """The CPU has native bf16 matrix units (AMX tiles or AVX512-BF16)."""
    probes = ("_is_amx_tile_supported", "_is_avx512_bf16_supported")
    return any(bool(getattr(torch.cpu, p, lambda: False)()) for p in probes)
