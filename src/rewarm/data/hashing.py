"""Counter-based randomness: every random choice is a hash of (seed, purpose, counters).

The sampler keeps no random-generator state. A draw is a pure function of the seed
and integer counters (stage, step, row), so a sampler restored from a handful of
integers yields exactly what the uninterrupted one would have. The permutation of
windows in an epoch is a keyed bijection computed on demand, so memory does not
grow with the corpus.

Mixing function: the splitmix64 finaliser (Steele, Lea & Flood 2014,
"Fast splittable pseudorandom number generators").
"""

from __future__ import annotations

import hashlib

import numpy as np

MASK64 = (1 << 64) - 1
GOLDEN64 = 0x9E3779B97F4A7C15  # 2^64 / golden ratio, odd
_C1 = 0xBF58476D1CE4E5B9
_C2 = 0x94D049BB133111EB


def mix(x: int) -> int:
    """splitmix64 of a Python int (one 64-bit value)."""
    z = (x + GOLDEN64) & MASK64
    z = ((z ^ (z >> 30)) * _C1) & MASK64
    z = ((z ^ (z >> 27)) * _C2) & MASK64
    return z ^ (z >> 31)


def derive(*parts: int | str) -> int:
    """A 64-bit key from a seed and labels; stable across Python processes."""
    h = 0x5EED
    for p in parts:
        if isinstance(p, str):
            p = int.from_bytes(hashlib.blake2b(p.encode(), digest_size=8).digest(), "little")
        h = mix(h ^ (p & MASK64))
    return h


def mix_array(x: np.ndarray, key: int) -> np.ndarray:
    """splitmix64 of each element of a uint64 array combined with `key` (wraps mod 2^64)."""
    z = (x.astype(np.uint64, copy=False) ^ np.uint64(key)) + np.uint64(GOLDEN64)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(_C1)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(_C2)
    return z ^ (z >> np.uint64(31))


def golden_uniform(n: np.ndarray, offset: int) -> np.ndarray:
    """The additive-recurrence (Kronecker) sequence u_n = frac(offset + n / phi) in [0, 1).

    Low-discrepancy: the share of n < N with u_n in any interval of length w differs
    from w by O(log N / N), so domain shares realised over a few batches already match
    the configured weights closely (Weyl 1916; Kuipers & Niederreiter 1974).
    Computed in 64-bit fixed point, so it is exact for any n.
    """
    z = n.astype(np.uint64) * np.uint64(GOLDEN64) + np.uint64(offset)
    return (z >> np.uint64(11)).astype(np.float64) * (1.0 / (1 << 53))


class Permutation:
    """A keyed bijection of [0, n), evaluated element-wise without a table.

    A bijection g of [0, 2^k) (2^k >= n, k minimal) is built from invertible steps
    mod 2^k: multiply by an odd constant, add a constant, xor with a right shift.
    Cycle-walking (Black & Rogaway 2002, "Ciphers with arbitrary finite domains")
    applies g again to any value >= n until it lands in [0, n), which restricts g to a
    bijection of [0, n); since 2^k < 2n, on average fewer than two passes are needed.
    """

    def __init__(self, n: int, key: int) -> None:
        if n <= 0:
            raise ValueError("Permutation needs n >= 1")
        self.n = n
        self.bits = max(2, (n - 1).bit_length())
        self.mask = np.uint64((1 << self.bits) - 1)
        self.shift = np.uint64(max(1, self.bits // 2))
        keys = [derive(key, i) for i in range(6)]
        self.mul = [np.uint64(k | 1) for k in keys[:3]]
        self.add = [np.uint64(k) for k in keys[3:]]

    def _g(self, x: np.ndarray) -> np.ndarray:
        """One pass of the bijection, in place on a private uint64 array."""
        tmp = np.empty_like(x)
        for mul, add in zip(self.mul, self.add, strict=True):
            x *= mul
            x += add
            x &= self.mask
            np.right_shift(x, self.shift, out=tmp)
            x ^= tmp
        return x

    def __call__(self, i: np.ndarray) -> np.ndarray:
        x = self._g(np.array(i, dtype=np.uint64))
        bad = x >= np.uint64(self.n)
        while bad.any():
            x[bad] = self._g(x[bad])
            bad = x >= np.uint64(self.n)
        return x.astype(np.int64)
