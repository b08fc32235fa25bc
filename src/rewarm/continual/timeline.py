"""One run's evaluations as a grid: evaluation points x domains, plus its stages.

Every continual-evaluation metric (`rewarm.continual.metrics`) reads this
grid. It is built from the `eval` and `stage` records of `metrics.jsonl` (and
the stage mixes of the config in the `run` start record), so the metrics stay
pure functions of what the trainer logged.

Conventions (see docs/metrics.md):

- Positions are training tokens. Stage k covers the tokens (s_k, e_k]; an
  evaluation exactly at a boundary e_k = s_{k+1} belongs to the stage that
  ends there and is also the start value of the next stage.
- Evaluations at the same token position are one evaluation point; if a
  domain was evaluated twice there (a resume, or the end of one stage and the
  start of the next), the later record wins.
- A domain's "own" stages are those whose configured mix gives it a positive
  weight. Replay is not training a domain as its own: it is a way of keeping
  an old one. Without a config, `tokens_by_domain` of the stage's end record
  is used instead (replay included, so an old domain may look "own").
- The starting model is stage 0 when it was trained before the run (`model.init`
  "hf:..." or "checkpoint:..."): a zero-length stage `start` at the first stage's
  start position whose "own" domains are every domain evaluated there. Its row
  R[0] is the evaluation before the first update, so forgetting, BWT, the
  stability gap and WC-loss of every domain are measured against the model the
  run started from. A run from scratch has no such stage (a random model is no
  reference); `Timeline.number(k)` numbers stages from 0 or 1 accordingly.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from rewarm.runlog import EvalRecord, RunLog, StageRecord


@dataclass(frozen=True, kw_only=True)
class Stage:
    """Stage k: tokens (start, end], the domains it trains, whether it ended."""

    index: int
    name: str
    start: int
    end: int
    start_step: int
    end_step: int
    domains: tuple[str, ...]
    complete: bool
    tokens_by_domain: Mapping[str, float]
    epochs_by_domain: Mapping[str, float] = field(default_factory=dict)
    """Epochs of each domain's training tokens the stage drew (empty in older logs)."""
    initial: bool = False
    """Stage 0 of a run that started from a trained model: the starting model itself
    (zero length; no training)."""


@dataclass(frozen=True, kw_only=True)
class Lookup:
    """A loss read at a boundary: `tokens` is where it was read, `exact` if at the boundary."""

    value: float
    tokens: int
    exact: bool


@dataclass(frozen=True, kw_only=True)
class Timeline:
    """Evaluation points of one run; `loss[j, i]` is NaN where domain i was not evaluated."""

    tokens: np.ndarray  # (n,) int64, strictly increasing
    steps: np.ndarray  # (n,) int64
    domains: tuple[str, ...]
    loss: np.ndarray  # (n, D) float64, nats per token
    bpb: np.ndarray  # (n, D) float64, bits per byte (NaN where not logged)
    stages: tuple[Stage, ...]

    @property
    def has_initial(self) -> bool:
        """Is stages[0] the starting model (see the module docstring)?"""
        return bool(self.stages) and self.stages[0].initial

    @property
    def trained_stages(self) -> tuple[Stage, ...]:
        """The stages that train (all but an initial one)."""
        return self.stages[1:] if self.has_initial else self.stages

    def number(self, k: int) -> int:
        """The number shown for stage index k: 0 for the starting model, else from 1."""
        return k if self.has_initial else k + 1

    def column(self, domain: str, field: str = "loss") -> np.ndarray:
        grid = self.loss if field == "loss" else self.bpb
        return grid[:, self.domains.index(domain)]

    def first_stage(self, domain: str) -> int | None:
        """Index of the first stage that trains `domain`; None if none does."""
        return next((s.index for s in self.stages if domain in s.domains), None)

    def old_domains(self, k: int) -> tuple[str, ...]:
        """Domains trained in a stage before k and not in stage k's own mix."""
        current = self.stages[k].domains
        return tuple(
            d
            for d in self.domains
            if d not in current and any(d in s.domains for s in self.stages[:k])
        )

    def own_end(self, domain: str, k: int) -> int | None:
        """End (tokens) of the last stage before k that trained `domain`."""
        ends = [s.end for s in self.stages[:k] if domain in s.domains]
        return ends[-1] if ends else None

    def stage_of(self, tokens: int) -> int:
        """Stage whose (start, end] holds `tokens`; positions before stage 0 map to 0."""
        for s in self.stages:
            if tokens <= s.end:
                return s.index
        return self.stages[-1].index

    def at_or_before(
        self, tokens: int, domain: str, *, after: int | None = None, field: str = "loss"
    ) -> Lookup | None:
        """Latest evaluation of `domain` at tokens <= `tokens` (and > `after`, if given)."""
        col = self.column(domain, field)
        ok = (self.tokens <= tokens) & ~np.isnan(col)
        if after is not None:
            ok &= self.tokens > after
        idx = np.flatnonzero(ok)
        if idx.size == 0:
            return None
        j = int(idx[-1])
        return Lookup(
            value=float(col[j]), tokens=int(self.tokens[j]), exact=self.tokens[j] == tokens
        )

    def start_value(self, k: int, domain: str, field: str = "loss") -> Lookup | None:
        """L_domain(s_k): at s_k, else the nearest earlier evaluation inside stage k-1
        (its one point, for the zero-length initial stage)."""
        s = self.stages[k]
        after = None
        if k > 0:
            prev = self.stages[k - 1]
            after = prev.start if prev.end > prev.start else prev.start - 1
        return self.at_or_before(s.start, domain, after=after, field=field)

    def end_value(self, k: int, domain: str, field: str = "loss") -> Lookup | None:
        """L_domain(e_k): at e_k, else the nearest earlier evaluation inside stage k."""
        s = self.stages[k]
        after = s.start if s.end > s.start else None
        return self.at_or_before(s.end, domain, after=after, field=field)

    def in_stage(self, k: int) -> np.ndarray:
        """Indices of the evaluation points in stage k's (s_k, e_k]."""
        s = self.stages[k]
        return np.flatnonzero((self.tokens > s.start) & (self.tokens <= s.end))


def _stage_mixes(config: Mapping[str, Any]) -> list[tuple[str, ...]]:
    stages = config.get("stages") if isinstance(config, Mapping) else None
    if not isinstance(stages, list):
        return []
    out = []
    for st in stages:
        mix = st.get("mix", {}) if isinstance(st, Mapping) else {}
        out.append(tuple(d for d, w in mix.items() if isinstance(w, int | float) and w > 0))
    return out


def _domain_order(evals: Sequence[EvalRecord], config: Mapping[str, Any]) -> tuple[str, ...]:
    seen: dict[str, None] = {}
    declared = config.get("domains") if isinstance(config, Mapping) else None
    if isinstance(declared, Mapping):
        for d in declared:
            seen[str(d)] = None
    present = {e.domain for e in evals}
    order = [d for d in seen if d in present]
    for e in evals:
        if e.domain not in order:
            order.append(e.domain)
    return tuple(order)


def _build_stages(
    stage_records: Iterable[StageRecord],
    config: Mapping[str, Any],
    last_tokens: int,
    last_step: int,
    first_tokens: int,
) -> tuple[Stage, ...]:
    starts: dict[int, StageRecord] = {}
    ends: dict[int, StageRecord] = {}
    for r in stage_records:
        if r.event == "start":
            starts.setdefault(r.index, r)  # a resume may log the start again
        else:
            ends[r.index] = r
    mixes = _stage_mixes(config)
    indices = sorted(set(starts) | set(ends))
    if not indices:
        # No stage records: the whole run is one stage training every configured domain.
        domains = tuple(dict.fromkeys(d for m in mixes for d in m))
        return (
            Stage(
                index=0,
                name="run",
                start=first_tokens,
                end=last_tokens,
                start_step=0,
                end_step=last_step,
                domains=domains,
                complete=True,
                tokens_by_domain={},
            ),
        )
    stages: list[Stage] = []
    for pos, i in enumerate(indices):
        st, en = starts.get(i), ends.get(i)
        if st is None:
            start_tokens = stages[-1].end if stages else first_tokens
            start_step = stages[-1].end_step if stages else 0
        else:
            start_tokens, start_step = st.tokens, st.step
        if en is not None:
            end_tokens, end_step, complete = en.tokens, en.step, True
        else:
            # Unfinished (or crashed) stage: it ends at the last logged position so far.
            nxt = starts.get(indices[pos + 1]) if pos + 1 < len(indices) else None
            end_tokens = nxt.tokens if nxt is not None else max(last_tokens, start_tokens)
            end_step = nxt.step if nxt is not None else max(last_step, start_step)
            complete = False
        by_domain = (en.tokens_by_domain or {}) if en is not None else {}
        domains = mixes[i] if i < len(mixes) else tuple(d for d, n in by_domain.items() if n > 0)
        name = (st if st is not None else en).stage  # type: ignore[union-attr]  # one exists
        stages.append(
            Stage(
                index=pos,
                name=name or f"stage {i}",
                start=start_tokens,
                end=end_tokens,
                start_step=start_step,
                end_step=end_step,
                domains=domains,
                complete=complete,
                tokens_by_domain=dict(by_domain),
                epochs_by_domain=dict((en.epochs_by_domain or {}) if en is not None else {}),
            )
        )
    return tuple(stages)


def starts_trained(config: Mapping[str, Any]) -> bool:
    """Did the run start from a trained model (`model.init` "hf:..." or "checkpoint:...")?"""
    model = config.get("model") if isinstance(config, Mapping) else None
    init = model.get("init") if isinstance(model, Mapping) else None
    return isinstance(init, str) and init.startswith(("hf:", "checkpoint:"))


def _with_initial(
    built: tuple[Stage, ...],
    tokens: np.ndarray,
    steps: np.ndarray,
    loss: np.ndarray,
    domains: tuple[str, ...],
) -> tuple[Stage, ...]:
    """Prepend stage 0, the starting model, if the first stage's start was evaluated."""
    at = np.flatnonzero(tokens == built[0].start) if built else np.array([])
    if at.size == 0:
        return built
    j = int(at[0])
    evaluated = tuple(d for i, d in enumerate(domains) if not np.isnan(loss[j, i]))
    start = Stage(
        index=0,
        name="start",
        start=built[0].start,
        end=built[0].start,
        start_step=int(steps[j]),
        end_step=int(steps[j]),
        domains=evaluated,
        complete=True,
        tokens_by_domain={},
        initial=True,
    )
    return (start, *(replace(s, index=s.index + 1) for s in built))


def build_timeline(
    evals: Sequence[EvalRecord],
    stages: Sequence[StageRecord],
    config: Mapping[str, Any] | None = None,
    *,
    last_tokens: int | None = None,
    last_step: int | None = None,
    initial: bool | None = None,
) -> Timeline:
    """Group `eval` records into evaluation points and attach the run's stages.

    `last_tokens`/`last_step` (e.g. from the last `train` record) end an
    unfinished stage; by default the last evaluation does. `initial` adds stage 0,
    the starting model (by default when `starts_trained(config)`).
    """
    config = config or {}
    domains = _domain_order(evals, config)
    positions = sorted({e.tokens for e in evals})
    row = {t: j for j, t in enumerate(positions)}
    n, dn = len(positions), len(domains)
    loss = np.full((n, dn), np.nan)
    bpb = np.full((n, dn), np.nan)
    steps = np.zeros(n, dtype=np.int64)
    col = {d: i for i, d in enumerate(domains)}
    for e in evals:  # file order: later records overwrite earlier ones at the same position
        j = row[e.tokens]
        loss[j, col[e.domain]] = e.loss
        bpb[j, col[e.domain]] = np.nan if e.bits_per_byte is None else e.bits_per_byte
        steps[j] = e.step
    tokens = np.asarray(positions, dtype=np.int64)
    end_tokens = max([*positions, *([last_tokens] if last_tokens is not None else [])], default=0)
    end_step = max([int(steps.max()) if n else 0, *([last_step] if last_step is not None else [])])
    built = _build_stages(stages, config, end_tokens, end_step, positions[0] if positions else 0)
    if starts_trained(config) if initial is None else initial:
        built = _with_initial(built, tokens, steps, loss, domains)
    return Timeline(tokens=tokens, steps=steps, domains=domains, loss=loss, bpb=bpb, stages=built)


def timeline_of(log: RunLog) -> Timeline:
    """`build_timeline` for a run's log (`rewarm.runlog.read_run`)."""
    last = log.trains[-1] if log.trains else None
    return build_timeline(
        log.evals,
        log.stages,
        log.config,
        last_tokens=None if last is None else last.tokens,
        last_step=None if last is None else last.step,
    )
