"""Slow, obviously-correct reference implementations of the laws' sums (tests only)."""

from __future__ import annotations

import math


def s1_ref(eta: list[float]) -> list[float]:
    out, s = [0.0], 0.0
    for t in range(1, len(eta)):
        s += eta[t]
        out.append(s)
    return out


def s2_ref(eta: list[float], lam: float) -> list[float]:
    """Tissue et al.: m_i = lam m_{i-1} + (eta_{i-1} - eta_i); S2 = sum m_i."""
    out, m, s = [0.0], 0.0, 0.0
    for i in range(1, len(eta)):
        m = lam * m + (eta[i - 1] - eta[i])
        s += m
        out.append(s)
    return out


def ld_ref(eta: list[float], b: float, c: float, beta: float, gamma: float) -> list[float]:
    """Luo et al. MPL loss drop, the O(n^2) double sum exactly as written."""
    out = []
    for t in range(len(eta)):
        total = 0.0
        for k in range(1, t + 1):
            s_kt = sum(eta[k : t + 1])
            g = 1.0 - (c * eta[k] ** (-gamma) * s_kt + 1.0) ** (-beta)
            total += (eta[k - 1] - eta[k]) * g
        out.append(b * total)
    return out


def mpl_ref(lr: list[float], warmup: int, p: dict[str, float]) -> list[float]:
    eta = lr[warmup:]
    s_w = math.fsum(lr[: warmup + 1])
    s1 = s1_ref(eta)
    ld = ld_ref(eta, p["B"], p["C"], p["beta"], p["gamma"])
    return [p["L0"] + p["A"] * (s1[t] + s_w) ** (-p["alpha"]) - ld[t] for t in range(len(eta))]
