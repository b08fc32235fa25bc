"""Decay shapes: how a multiplier moves from a start value `a` to an end value `b`.

Every shape is a vectorised function `shape(p, a, b)` of the progress `p` in [0, 1]
through a decay phase, with `shape(0, a, b) == a` and `shape(1, a, b) == b`. With
`a = 1` and `b = f` (the final ratio) they are exactly the formulas of
`docs/schedules.md`:

- linear:      b + (a - b) * (1 - p)
- cosine:      b + (a - b) * (1 + cos(pi p)) / 2
- 1-sqrt:      b + (a - b) * (1 - sqrt(p))           (Hägele et al. 2024)
- square:      b + (a - b) * (1 - p^2)               (Hägele et al. 2024)
- exponential: a * (b / a)^p                         (geometric; a, b > 0)
- harmonic:    1 / (1/a + (1/b - 1/a) p)             (1/m moves linearly; a, b > 0)
- rex:         b + (a - b) * (1 - p) / (1 - p / 2)   (Chen et al. 2022, REX)
- inverse-sqrt: a + (b - a) * g(p) / g(1), g(x) = 1 / sqrt(1 + 10 x) - 1
                (the infinite schedule's cooldown, Singh et al. 2025)

All functions take and return float64 numpy arrays; callers clip `p` to [0, 1].
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

Shape = Callable[[np.ndarray, float, float], np.ndarray]

INVERSE_SQRT_A = 10.0
"""The `a` of the infinite schedule's inverse-sqrt cooldown (Singh et al. 2025's code)."""


def linear(p: np.ndarray, a: float, b: float) -> np.ndarray:
    return b + (a - b) * (1.0 - p)


def cosine(p: np.ndarray, a: float, b: float) -> np.ndarray:
    return b + (a - b) * (1.0 + np.cos(np.pi * p)) / 2.0


def one_minus_sqrt(p: np.ndarray, a: float, b: float) -> np.ndarray:
    return b + (a - b) * (1.0 - np.sqrt(p))


def square(p: np.ndarray, a: float, b: float) -> np.ndarray:
    return b + (a - b) * (1.0 - p * p)


def exponential(p: np.ndarray, a: float, b: float) -> np.ndarray:
    return a * (b / a) ** p


def harmonic(p: np.ndarray, a: float, b: float) -> np.ndarray:
    return 1.0 / (1.0 / a + (1.0 / b - 1.0 / a) * p)


def rex(p: np.ndarray, a: float, b: float) -> np.ndarray:
    return b + (a - b) * (1.0 - p) / (1.0 - p / 2.0)


def inverse_sqrt(p: np.ndarray, a: float, b: float) -> np.ndarray:
    def g(x: np.ndarray | float) -> np.ndarray:
        return 1.0 / np.sqrt(1.0 + INVERSE_SQRT_A * np.asarray(x)) - 1.0

    return a + (b - a) * g(p) / g(1.0)


def polynomial(power: float) -> Shape:
    """b + (a - b) * (1 - p)^power (PyTorch's PolynomialLR, Hugging Face's polynomial decay)."""

    def shape(p: np.ndarray, a: float, b: float) -> np.ndarray:
        return b + (a - b) * (1.0 - p) ** power

    return shape


# Shapes a WSD decay, a branch, WSD-S and a re-warm re-decay may use.
DECAY_SHAPES: dict[str, Shape] = {
    "linear": linear,
    "cosine": cosine,
    "1-sqrt": one_minus_sqrt,
    "square": square,
    "exponential": exponential,
    "harmonic": harmonic,
}

# The infinite schedule's cooldown (1 -> c) and anneal (c -> f) shapes.
COOLDOWN_SHAPES: dict[str, Shape] = {
    "cosine": cosine,
    "linear": linear,
    "inverse-sqrt": inverse_sqrt,
}
ANNEAL_SHAPES: dict[str, Shape] = {
    "exponential": exponential,
    "linear": linear,
    "cosine": cosine,
}

# Shapes whose formula divides by or takes logs of the end value: it must be > 0.
NEEDS_POSITIVE_END = frozenset({"exponential", "harmonic"})
