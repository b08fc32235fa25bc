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
    views: int = 1
    """Copies of each replayed window within its step (`Policy.recall`, Kang et al.
    2025's V); 1 = every replay row is its own draw."""
    source: str = "seen"
    replay: list[int] = field(default_factory=list)
    replay_bounds: np.ndarray = field(default_factory=lambda: np.zeros(0))
    draw_domains: np.ndarray | None = None
    """Domain of every replay draw of the stage, when a policy's weights change from
    step to step (`Policy.age_weight`, see `rewarm.data.recency`); None: `replay_bounds`."""

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

    def draws_before(self, s: np.ndarray | int) -> np.ndarray:
        """Replay draws in steps [0, s). With V views a step's R(s) replay rows hold
        ceil(R(s) / V) draws; R(s) is floor(f B) or one more (see `cum_replay`)."""
        s = np.asarray(s, dtype=np.int64)
        if self.views <= 1:
            return self.cum_replay(s)
        r0 = int(np.floor(self.fraction * self.rows))
        g0, g1 = -(-r0 // self.views), -(-(r0 + 1) // self.views)
        longer = self.cum_replay(s) - s * r0  # steps with r0 + 1 replay rows
        return s * g0 + longer * (g1 - g0)

    def replay_draws(self, s: np.ndarray, k: np.ndarray) -> np.ndarray:
        """Draw index m shown in replay row k of step s (arrays of equal shape).

        Draw m is the m-th replay draw of the stage; its domain and window are hashes
        of m. With V views (recall-interval, Kang et al. 2025) rows k = 0..V-1 of a step
        show one draw, rows V..2V-1 the next, and so on: each replayed window is trained
        V times within its step, a step holds R(s) / V distinct windows, and the steps
        between two showings of the same window grow V-fold at equal compute.
        """
        return self.draws_before(s) + k // max(self.views, 1)

    def replay_domains(self, m: np.ndarray) -> np.ndarray:
        if self.draw_domains is not None:
            # a block of steps may run past the stage's end; those rows are never used
            m = np.minimum(m, self.draw_domains.size - 1)
            return np.asarray(self.replay, dtype=np.int64)[self.draw_domains[m]]
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
        scan = self.scan(n_domains, chunk)
        return scan.fresh, scan.replay

    def fresh_seen(self, s: np.ndarray, n_domains: int) -> np.ndarray:
        """(len(s), n_domains) bool: the domains among the own-data rows of steps s
        (consecutive)."""
        n = np.arange(int(self.cum_fresh(s[0])), int(self.cum_fresh(s[-1] + 1)))
        step = np.repeat(s - s[0], self.rows - (self.cum_replay(s + 1) - self.cum_replay(s)))
        out = np.zeros((s.size, n_domains), dtype=bool)
        out[step, self.fresh_domains(n)] = True
        return out

    def scan(self, n_domains: int, chunk: int = 1 << 16) -> StageScan:
        """Rows per domain over the whole stage, and the last step that showed each."""
        fresh = np.zeros(n_domains, dtype=np.int64)
        rep = np.zeros(n_domains, dtype=np.int64)
        last = np.full(n_domains, -1, dtype=np.int64)
        for lo in range(0, self.steps, chunk):
            s = np.arange(lo, min(self.steps, lo + chunk), dtype=np.int64)
            n = np.arange(int(self.cum_fresh(s[0])), int(self.cum_fresh(s[-1] + 1)))
            doms = self.fresh_domains(n)
            fresh += np.bincount(doms, minlength=n_domains)
            own = self.rows - (self.cum_replay(s + 1) - self.cum_replay(s))
            np.maximum.at(last, doms, np.repeat(s, own))
            if self.fraction > 0:
                _, is_rep = self.layout(s)
                ss, cols = np.nonzero(is_rep)
                k = cols - (self.rows - is_rep.sum(axis=1))[ss]
                rdom = self.replay_domains(self.replay_draws(s[ss], k))
                rep += np.bincount(rdom, minlength=n_domains)
                np.maximum.at(last, rdom, s[ss])
        return StageScan(fresh=fresh, replay=rep, last_step=last)


@dataclass(frozen=True)
class StageScan:
    """What a whole stage draws, per global domain index."""

    fresh: np.ndarray
    """Own-data rows."""
    replay: np.ndarray
    """Replay rows."""
    last_step: np.ndarray
    """The last step of the stage with a row of the domain; -1 if none."""
