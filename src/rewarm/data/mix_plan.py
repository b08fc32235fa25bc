"""One stage's draw plan: which rows of which step are replay, and from which domain.

Everything here is a pure, vectorised function of (stage config, seed, step), with
no sampler state, so the sampler can compute many steps at once and a restored
sampler recomputes exactly the same rows. Formulas are in `rewarm.data.mixture`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from rewarm.data.hashing import golden_uniform, mix_array


def bounds(weights: np.ndarray) -> np.ndarray:
    """Cumulative normalised weights without the final 1.0 (for searchsorted)."""
    cum = np.cumsum(weights / weights.sum())
    return cum[:-1]


@dataclass
class MixPlan:
    """Everything about one stage's draws that is fixed by the config."""

    index: int
    steps: int
    """ceil(stage tokens / batch_tokens)."""
    rows: int
    """B: rows of the global batch."""
    mix: list[int]
    """Global domain indices with weight > 0, sorted."""
    mix_bounds: np.ndarray
    keys: dict[str, int]
    fraction: float = 0.0
    recall_interval: int = 0
    """Steps between a replayed sequence's two showings (`Policy.recall`); 0 = once."""
    source: str = "seen"
    replay: list[int] = field(default_factory=list)
    replay_bounds: np.ndarray = field(default_factory=lambda: np.zeros(0))

    def cum_replay(self, s: np.ndarray | int) -> np.ndarray:
        """Replay rows in steps [0, s): floor(s f B)."""
        return np.floor(np.asarray(s, dtype=np.float64) * (self.fraction * self.rows)).astype(
            np.int64
        )

    def cum_fresh(self, s: np.ndarray | int) -> np.ndarray:
        """Rows of the stage's own data in steps [0, s)."""
        return np.asarray(s, dtype=np.int64) * self.rows - self.cum_replay(s)

    def fresh_domains(self, n: np.ndarray) -> np.ndarray:
        """Domain of the n-th own-data row of the stage (low-discrepancy, see hashing)."""
        local = np.searchsorted(self.mix_bounds, golden_uniform(n, self.keys["fresh"]), "right")
        return np.asarray(self.mix, dtype=np.int64)[local]

    def replay_draws(self, s: np.ndarray, k: np.ndarray) -> np.ndarray:
        """Draw index m shown in replay row k of step s (arrays of equal shape).

        Draw m is the m-th replay draw of the stage; its domain and window are hashes
        of m. With a recall interval I (recall-interval): in odd blocks of I steps, row k
        re-presents the draw of row k of step s - I (when that step had a row k), so each
        replayed sequence is seen twice, I steps apart (Kang et al. 2025).
        """
        q = s
        interval = self.recall_interval
        if interval > 0:
            prev = s - interval
            n_prev = self.cum_replay(prev + 1) - self.cum_replay(prev)
            q = np.where(((s // interval) % 2 == 1) & (k < n_prev), prev, s)
        return self.cum_replay(q) + k

    def replay_domains(self, m: np.ndarray) -> np.ndarray:
        local = np.searchsorted(self.replay_bounds, golden_uniform(m, self.keys["replay"]), "right")
        return np.asarray(self.replay, dtype=np.int64)[local]

    def replay_picks(self, m: np.ndarray) -> np.ndarray:
        """A 64-bit hash per draw; the window is pick mod (pool size)."""
        return mix_array(m.astype(np.uint64), self.keys["pick"])

    def row_order(self, s: np.ndarray) -> np.ndarray:
        """(len(s), B): the keyed shuffle of each step's rows (argsort of hashes)."""
        ids = s.astype(np.uint64)[:, None] * np.uint64(self.rows) + np.arange(
            self.rows, dtype=np.uint64
        )
        return np.argsort(mix_array(ids, self.keys["order"]), axis=1, kind="stable")

    def layout(self, s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For steps s (consecutive): the number of replay rows per step and a
        (len(s), B) bool mask that is True on replay slots (the last R(s) slots)."""
        n_rep = self.cum_replay(s + 1) - self.cum_replay(s)
        is_rep = np.arange(self.rows)[None, :] >= (self.rows - n_rep)[:, None]
        return n_rep, is_rep

    def count_rows(self, n_domains: int, chunk: int = 1 << 16) -> tuple[np.ndarray, np.ndarray]:
        """Rows per domain over the whole stage: (own-data rows, replay rows)."""
        fresh = np.zeros(n_domains, dtype=np.int64)
        rep = np.zeros(n_domains, dtype=np.int64)
        for lo in range(0, self.steps, chunk):
            s = np.arange(lo, min(self.steps, lo + chunk), dtype=np.int64)
            n = np.arange(int(self.cum_fresh(s[0])), int(self.cum_fresh(s[-1] + 1)))
            fresh += np.bincount(self.fresh_domains(n), minlength=n_domains)
            if self.fraction > 0:
                _, is_rep = self.layout(s)
                ss, cols = np.nonzero(is_rep)
                k = cols - (self.rows - is_rep.sum(axis=1))[ss]
                m = self.replay_draws(s[ss], k)
                rep += np.bincount(self.replay_domains(m), minlength=n_domains)
        return fresh, rep
