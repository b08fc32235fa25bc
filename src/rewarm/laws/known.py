"""Schedules of the shared public loss curves (Luo et al. 2025; see
`data/loss-curves/README.md`), rebuilt per step from their file names.

All runs warm up linearly from 0 to the peak 3e-4 over 2160 steps, then follow:

* `constant_T`: 3e-4 to step T.
* `cosine_T`: cosine from 3e-4 (step 2160) to 3e-5 (step T).
* `wsd_S_T`: 3e-4 to step S, then geometric decay to 3e-5 at step T.
* `wsdld_S_T`: 3e-4 to step S, then linear decay to 3e-5 at step T.
* `wsdcon_K`: 3e-4 until step 8000, then K * 1e-5 until step 16000.
"""

from __future__ import annotations

import re

import numpy as np

PEAK = 3e-4
FINAL = 3e-5
WARMUP = 2160


def _base(total: int) -> tuple[np.ndarray, np.ndarray]:
    s = np.arange(total + 1, dtype=np.float64)
    lr = np.full(total + 1, PEAK)
    lr[:WARMUP] = PEAK * s[:WARMUP] / WARMUP
    return s, lr


def known_lr(name: str) -> tuple[np.ndarray, int] | None:
    """`(lr per step, warmup)` for a shared curve's file stem, or None if unknown."""
    m = re.fullmatch(r"(constant|cosine)_(\d+)", name)
    if m:
        total = int(m.group(2))
        s, lr = _base(total)
        if m.group(1) == "cosine":
            p = (s[WARMUP:] - WARMUP) / (total - WARMUP)
            lr[WARMUP:] = FINAL + (PEAK - FINAL) * (1 + np.cos(np.pi * p)) / 2
        return lr, WARMUP
    m = re.fullmatch(r"(wsd|wsdld)_(\d+)_(\d+)", name)
    if m:
        start, total = int(m.group(2)), int(m.group(3))
        s, lr = _base(total)
        q = (s[start:] - start) / (total - start)
        if m.group(1) == "wsd":
            lr[start:] = PEAK ** (1 - q) * FINAL**q
        else:
            lr[start:] = PEAK + (FINAL - PEAK) * q
        return lr, WARMUP
    m = re.fullmatch(r"wsdcon_(\d+)", name)
    if m:
        s, lr = _base(16000)
        lr[8000:] = int(m.group(1)) * 1e-5
        return lr, WARMUP
    return None
