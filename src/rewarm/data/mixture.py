"""Stage mixtures with replay: a seeded stream of token windows that resumes exactly.

Layout. A domain's training array of N tokens is cut into W = (N - 1) // seq_len
windows of seq_len + 1 tokens; window w covers tokens [w * seq_len, w * seq_len +
seq_len] (consecutive windows share one token, so every token is a target once).
Each domain has a stream position (a cursor) that only fresh, non-replay draws
advance: position p reads window perm_e(p mod W) with e = p // W the epoch and
perm_e a keyed permutation of [0, W) (so sampling is without replacement within an
epoch, and a later stage that trains the same domain continues where the last one
stopped instead of repeating it).

Batches. The global batch has B = train.batch_tokens // seq_len rows. At step s of
a stage with replay fraction f, R(s) = floor((s+1) f B) - floor(s f B) rows are
replay and B - R(s) are the stage's own data, so the realised replay share is f up
to one row over the whole stage; replay replaces rows, it never grows the batch.
Row domains follow the stage weights through a low-discrepancy sequence (see
`hashing.golden_uniform`), so realised shares match the weights within a fraction
of a row per batch. Rows are shuffled by a keyed permutation per step; rank r of
`world_size` takes rows [r B / world_size, (r + 1) B / world_size).

Replay (`source = "seen"`, the default) draws uniformly from the stream positions
a domain had consumed before the stage started, i.e. exactly the windows the model
was trained on; `source = "all"` draws from every window. Policies weight the
replay domains; see `rewarm.data.replay`.

Determinism. Every choice is a hash of (run.seed, stage, step, row); the state is
a few integers (stage, step, cursors), so `load_state_dict(state_dict())` resumes
the exact stream, also across a stage boundary and under another world size.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

import rewarm.data.replay as replay_mod
from rewarm.config import Config
from rewarm.config.derived import batch_rows, rows_per_rank, stage_steps
from rewarm.data import recency
from rewarm.data.hashing import Permutation, derive
from rewarm.data.mix_plan import MixPlan, bounds
from rewarm.data.shards import DomainData
from rewarm.errors import UserError

__all__ = ["Batch", "MixtureSampler"]

_BLOCK_ROWS = 1 << 14  # global rows planned at once (a block of steps)


@dataclass
class Batch:
    """This rank's rows of one global batch."""

    tokens: np.ndarray
    """int64 (sequences_per_rank, seq_len + 1); inputs are [:, :-1], targets [:, 1:]."""
    domains: list[str]
    """Domain of each row."""
    replay: np.ndarray
    """bool (sequences_per_rank,): True where the row is replay."""
    stage: int = 0
    step: int = 0
    """Step within the stage at which this batch was drawn."""


@dataclass
class _Block:
    """Precomputed draws of steps [first, first + len) of one stage, for this rank."""

    stage: int
    first: int
    dom: np.ndarray  # (steps, per_rank) domain index of each of this rank's rows
    win: np.ndarray  # (steps, per_rank) window index
    rep: np.ndarray  # (steps, per_rank) bool
    advance: np.ndarray  # (steps, n_domains) own-data rows per domain (cursor advance)
    counts: np.ndarray  # (steps, n_domains) global rows per domain


class MixtureSampler:
    """Per-stage mixture of domains with replay; see the module docstring.

    `domains` maps domain names to `DomainData` (from `prepare.prepare` or
    `shards.open_domain`); only `.train` is read.
    """

    def __init__(
        self, cfg: Config, domains: Mapping[str, DomainData], rank: int = 0, world_size: int = 1
    ) -> None:
        self.cfg = cfg
        self.seq_len = cfg.train.seq_len
        self.rows = batch_rows(cfg.train)
        if world_size < 1 or not 0 <= rank < world_size:
            raise ValueError(f"bad rank {rank} for world_size {world_size}")
        self.per_rank = rows_per_rank(cfg, world_size)
        self.rank, self.world_size = rank, world_size
        self.seed = cfg.run.seed
        self.names = list(cfg.domains)
        specs = [self._replay_spec(i) for i in range(len(cfg.stages))]
        used = {d for st in cfg.stages for d, w in st.mix.items() if w > 0}
        used |= {d for spec in specs for d in spec["domains"]}
        self.arrays: dict[int, np.ndarray] = {}
        self.windows: dict[int, int] = {}
        for d in sorted(used):
            if d not in domains:
                raise UserError(f"{cfg.source}: domain {d!r} has no prepared data")
            arr = np.asarray(domains[d].train)
            n_win = (arr.size - 1) // self.seq_len if arr.size > self.seq_len else 0
            if n_win == 0:
                raise UserError(
                    f"{cfg.source}: domains.{d} has {arr.size} training tokens, fewer than "
                    f"one window of train.seq_len + 1 = {self.seq_len + 1}"
                )
            i = self.names.index(d)
            self.arrays[i], self.windows[i] = arr, n_win
        self._offsets = np.arange(self.seq_len + 1, dtype=np.int64)
        self._perms: dict[tuple[int, int], Permutation] = {}
        self._block: _Block | None = None
        n = len(self.names)
        self.plans: list[MixPlan] = []
        self.planned: list[tuple[np.ndarray, np.ndarray]] = []  # (own rows, replay rows)
        # Global step at which each domain was last shown, before the next stage (-1:
        # never, so pre-run data counts as seen just before the run).
        self._last_seen = np.full(n, -1, dtype=np.int64)
        first_step = 0
        for i in range(len(cfg.stages)):
            plan = self._make_plan(i, specs[i], first_step)
            scan = plan.scan(n)
            self.plans.append(plan)
            self.planned.append((scan.fresh, scan.replay))
            shown = scan.last_step >= 0
            self._last_seen[shown] = first_step + scan.last_step[shown]
            first_step += plan.steps
        self._check_epochs()
        self.stage = -1
        self.step = 0
        self.cursor = np.zeros(n, dtype=np.int64)
        self.stage_start = np.zeros(n, dtype=np.int64)
        self.tokens = np.zeros((len(cfg.stages), n), dtype=np.int64)

    # -- plans --------------------------------------------------------------------------

    def _replay_spec(self, i: int) -> dict[str, Any]:
        st = self.cfg.stages[i]
        if not st.replay:
            return {**replay_mod.DEFAULTS, "domains": []}
        return replay_mod.resolve(st.replay, self.cfg, i)

    def _make_plan(self, i: int, spec: dict[str, Any], first_step: int) -> MixPlan:
        mix = sorted((self.names.index(d), w) for d, w in self.cfg.stages[i].mix.items() if w > 0)
        plan = MixPlan(
            index=i,
            steps=stage_steps(self.cfg, i),
            rows=self.rows,
            mix=[d for d, _ in mix],
            mix_bounds=bounds(np.array([w for _, w in mix], dtype=np.float64)),
            keys={k: derive(self.seed, k, i) for k in ("fresh", "replay", "pick", "order")},
        )
        if spec["fraction"] > 0 and spec["domains"]:
            policy = replay_mod.POLICIES[spec["policy"]]
            plan.fraction = spec["fraction"]
            if policy.recall:
                plan.views = int(spec["interval"])
            plan.source = spec["source"]
            plan.replay = sorted(self.names.index(d) for d in spec["domains"])
            history = self._history(i, plan.replay, first_step)
            plan.replay_bounds = bounds(policy.weights(spec, history))
            if policy.age_weight is not None:
                age_weight = policy.age_weight
                plan.draw_domains = recency.simulate(
                    plan,
                    lambda age: age_weight(spec, age),
                    self._last_seen[plan.replay],
                    first_step,
                    len(self.names),
                )
        return plan

    def _history(self, i: int, replay: list[int], first_step: int) -> replay_mod.History:
        """What the policies of stage i may weigh the replay domains by."""
        seen = np.zeros(len(self.names), dtype=np.float64)
        for own, rep in self.planned[:i]:
            seen += own + rep
        ages = [i - replay_mod.last_trained(self.cfg, i, self.names[d]) for d in replay]
        return replay_mod.History(
            ages=np.array(ages, dtype=np.int64),
            since_seen=first_step - self._last_seen[replay],
            seen_rows=seen[replay],
            windows=np.array([self.windows[d] for d in replay], dtype=np.int64),
        )

    def _check_epochs(self) -> None:
        """Refuse a run that would read some domain more than its max_epochs."""
        drawn = np.zeros(len(self.names), dtype=np.int64)
        for i, (own, rep) in enumerate(self.planned):
            drawn += own + rep
            for d, n_win in self.windows.items():
                cap = self.cfg.domains[self.names[d]].max_epochs
                if drawn[d] / n_win > cap:
                    name = self.names[d]
                    raise UserError(
                        f"{self.cfg.source}: stages[{i}] would read domain {name!r} "
                        f"{drawn[d] / n_win:.2f} times ({drawn[d]} windows drawn from its "
                        f"{n_win}), above domains.{name}.max_epochs = {cap:g}; "
                        "add data, shorten the stages or raise max_epochs"
                    )

    # -- stream -------------------------------------------------------------------------

    def start_stage(self, index: int) -> None:
        """Enter stage `index`. Idempotent for the current stage (so resume works).

        Stages between the current one and `index` that were never run are skipped as
        if run in full: cursors advance by their planned own-data rows, so a run that
        starts at a later stage (e.g. from a shared stage-end checkpoint) replays the
        windows the earlier stages would have shown.
        """
        if index == self.stage:
            return
        if not 0 <= index < len(self.plans) or index < self.stage:
            raise ValueError(f"cannot start stage {index} from stage {self.stage}")
        for j in range(self.stage + 1, index):
            own, rep = self.planned[j]
            self.cursor += own
            self.tokens[j] = (own + rep) * self.seq_len
        self.stage, self.step = index, 0
        self.stage_start = self.cursor.copy()
        self._block = None

    def _window(self, d: int, pos: np.ndarray) -> np.ndarray:
        """Window index read at stream positions `pos` of domain d: perm_e(pos mod W)."""
        n = self.windows[d]
        out = np.empty(pos.shape, dtype=np.int64)
        epoch = pos // n
        for e in np.unique(epoch).tolist():
            perm = self._perms.get((d, e))
            if perm is None:
                if len(self._perms) > 64:
                    self._perms.clear()
                perm = self._perms[(d, e)] = Permutation(n, derive(self.seed, "epoch", d, e))
            sel = epoch == e
            out[sel] = perm(pos[sel] - e * n)
        return out

    def _plan_block(self) -> _Block:
        """Draws of the next steps from the current state (cursors, stage start).

        All of it is a pure function of the state at the block's first step, so a
        block is only a cache: dropping it (resume, new stage) changes nothing.
        """
        plan, n_dom = self.plans[self.stage], len(self.names)
        steps = max(1, _BLOCK_ROWS // self.rows)
        s = np.arange(self.step, self.step + steps, dtype=np.int64)
        n_rep, is_rep = plan.layout(s)
        dom = np.empty((steps, self.rows), dtype=np.int64)
        win = np.empty((steps, self.rows), dtype=np.int64)
        # Own data: consecutive stream positions per domain, in row-major order.
        own = ~is_rep
        first, last = int(plan.cum_fresh(s[0])), int(plan.cum_fresh(s[-1] + 1))
        dom[own] = plan.fresh_domains(np.arange(first, last, dtype=np.int64))
        advance = np.zeros((steps, n_dom), dtype=np.int64)
        for d in plan.mix:
            sel = own & (dom == d)
            advance[:, d] = sel.sum(axis=1)
            pos = self.cursor[d] + np.arange(int(advance[:, d].sum()), dtype=np.int64)
            win[sel] = self._window(d, pos)
        # Replay: draws m, their domains and windows from the pool.
        if plan.fraction > 0:
            ss, cols = np.nonzero(is_rep)
            m = plan.replay_draws(s[ss], cols - (self.rows - n_rep)[ss])
            rdom = plan.replay_domains(m)
            picks = plan.replay_picks(m)
            rwin = np.empty(m.shape, dtype=np.int64)
            for d in plan.replay:
                sel = rdom == d
                pool = int(self.stage_start[d])
                if plan.source == "seen" and pool > 0:
                    rwin[sel] = self._window(d, (picks[sel] % np.uint64(pool)).astype(np.int64))
                else:
                    rwin[sel] = (picks[sel] % np.uint64(self.windows[d])).astype(np.int64)
            dom[is_rep], win[is_rep] = rdom, rwin
        counts = np.zeros((steps, n_dom), dtype=np.int64)
        np.add.at(counts, (np.repeat(np.arange(steps), self.rows), dom.ravel()), 1)
        order = plan.row_order(s)[:, self.rank * self.per_rank : (self.rank + 1) * self.per_rank]
        return _Block(
            stage=self.stage,
            first=self.step,
            dom=np.take_along_axis(dom, order, axis=1),
            win=np.take_along_axis(win, order, axis=1),
            rep=np.take_along_axis(is_rep, order, axis=1),
            advance=advance,
            counts=counts,
        )

    def next_batch(self) -> Batch:
        """This rank's rows of the next global batch (see the module docstring)."""
        if self.stage < 0:
            self.start_stage(0)
        blk = self._block
        if blk is None or blk.stage != self.stage or not 0 <= self.step - blk.first < len(blk.dom):
            blk = self._block = self._plan_block()
        k = self.step - blk.first
        dom, win = blk.dom[k], blk.win[k]
        self.cursor += blk.advance[k]
        self.tokens[self.stage] += blk.counts[k] * self.seq_len
        batch = Batch(
            tokens=self._gather(dom, win),
            domains=[self.names[d] for d in dom.tolist()],
            replay=blk.rep[k].copy(),
            stage=self.stage,
            step=self.step,
        )
        self.step += 1
        return batch

    def _gather(self, dom: np.ndarray, win: np.ndarray) -> np.ndarray:
        """Fancy-index whole windows out of the memmaps: (rows, seq_len + 1) int64."""
        starts = win * self.seq_len
        first = int(dom[0]) if dom.size else 0
        if dom.size and (dom == first).all():
            return self.arrays[first][starts[:, None] + self._offsets].astype(np.int64)
        out = np.empty((dom.size, self.seq_len + 1), dtype=np.int64)
        for d in np.unique(dom).tolist():
            sel = dom == d
            out[sel] = self.arrays[d][starts[sel, None] + self._offsets]
        return out

    # -- bookkeeping --------------------------------------------------------------------

    def tokens_by_domain(self, stage: int) -> dict[str, int]:
        """Training tokens (seq_len per row, all ranks, replay included) per domain so far."""
        return {self.names[d]: int(t) for d, t in enumerate(self.tokens[stage]) if t}

    def epochs_by_domain(self, stage: int) -> dict[str, float]:
        """Epochs of each domain's training tokens drawn in `stage` so far: rows drawn
        (replay included) / the domain's windows W. 1.0 means every training token was
        a target once in this stage; the stages' values add up to the run's repetition."""
        return {
            self.names[d]: round(int(t) / self.seq_len / self.windows[d], 6)
            for d, t in enumerate(self.tokens[stage])
            if t
        }

    def _layout(self) -> dict[str, Any]:
        return {
            "seed": self.seed,
            "seq_len": self.seq_len,
            "rows": self.rows,
            "windows": {self.names[d]: w for d, w in sorted(self.windows.items())},
        }

    def state_dict(self) -> dict[str, Any]:
        """JSON-serialisable state: integers only."""

        def named(values: np.ndarray) -> dict[str, int]:
            return {n: int(v) for n, v in zip(self.names, values, strict=True)}

        return {
            "version": 1,
            "layout": self._layout(),
            "stage": self.stage,
            "step": self.step,
            "cursor": named(self.cursor),
            "stage_start": named(self.stage_start),
            "tokens": [named(t) for t in self.tokens],
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        layout = state.get("layout")
        if layout != self._layout():
            raise UserError(
                "data sampler state does not match this config and data "
                f"(saved {layout}, now {self._layout()}); the shards or seq_len changed"
            )
        if len(state["tokens"]) != len(self.tokens):
            raise UserError("data sampler state has a different number of stages")

        def unnamed(values: dict[str, int]) -> np.ndarray:
            return np.array([int(values.get(n, 0)) for n in self.names], dtype=np.int64)

        self.stage, self.step = int(state["stage"]), int(state["step"])
        self.cursor = unnamed(state["cursor"])
        self.stage_start = unnamed(state["stage_start"])
        self.tokens = np.stack([unnamed(t) for t in state["tokens"]])
        self._block = None
