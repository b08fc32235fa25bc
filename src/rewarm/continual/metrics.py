"""Continual-evaluation metrics of one run, from its evaluation grid.

Every function is pure: it reads a `Timeline` (built from the `eval` and
`stage` records of `metrics.jsonl` by `rewarm.continual.timeline`) and
returns numbers. Notation as in `SCIENCE.md` section 4: L_i(t) is the held-out
loss (nats per token) of domain i after t training tokens; stage k covers
(s_k, e_k]; R[k][i] = L_i(e_k); K stages. Lower loss is better, so the
accuracy-based formulas of the continual-learning literature flip sign.

Missing evaluations at a boundary: the value used is the nearest evaluation
at or before the boundary that still lies inside the stage (for R) or inside
the previous stage (for a stage's start value). Where there is none the value
is missing (NaN / None), never guessed. `LossMatrix.substituted` lists every
cell that was read off the boundary so the report can say so.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from rewarm.continual.timeline import Timeline

LN2 = math.log(2.0)


@dataclass(frozen=True, kw_only=True)
class LossMatrix:
    """R[k][i] = L_i(e_k), shape (K, D); NaN where no evaluation could be used."""

    values: np.ndarray
    domains: tuple[str, ...]
    stages: tuple[str, ...]
    substituted: tuple[tuple[int, str, int], ...] = ()
    """(stage index, domain, tokens actually read) for cells read before the boundary."""


def loss_matrix(tl: Timeline, field: str = "loss") -> LossMatrix:
    """Stage-by-domain matrix R[k][i] = L_i(e_k) (loss at the end of stage k).

    SCIENCE.md section 4; the accuracy matrix of Lopez-Paz & Ranzato 2017
    (GEM) with loss in place of accuracy. `field` is "loss" or "bits_per_byte".
    """
    k_n, d_n = len(tl.stages), len(tl.domains)
    values = np.full((k_n, d_n), np.nan)
    subst: list[tuple[int, str, int]] = []
    for k in range(k_n):
        for i, d in enumerate(tl.domains):
            hit = tl.end_value(k, d, field)
            if hit is None:
                continue
            values[k, i] = hit.value
            if not hit.exact:
                subst.append((k, d, hit.tokens))
    return LossMatrix(
        values=values,
        domains=tl.domains,
        stages=tuple(s.name for s in tl.stages),
        substituted=tuple(subst),
    )


def seen_domains(tl: Timeline, k: int) -> tuple[str, ...]:
    """Domains trained by stage k or earlier (the literature's "tasks i <= k")."""
    return tuple(d for d in tl.domains if any(d in s.domains for s in tl.stages[: k + 1]))


def average_seen_loss(tl: Timeline, r: LossMatrix) -> list[float]:
    """Average loss over seen domains after each stage: mean_{i seen by k} R[k][i].

    SCIENCE.md section 4 (the loss analog of average accuracy, Chaudhry et al.
    2018). NaN for a stage with no seen domain evaluated.
    """
    out = []
    for k in range(len(tl.stages)):
        cols = [tl.domains.index(d) for d in seen_domains(tl, k)]
        vals = r.values[k, cols] if cols else np.array([])
        vals = vals[~np.isnan(vals)]
        out.append(float(vals.mean()) if vals.size else math.nan)
    return out


def forgetting(tl: Timeline, r: LossMatrix) -> list[dict[str, float]]:
    """Forgetting of domain i after stage k: F[k][i] = R[k][i] - min_{l<k} R[l][i].

    SCIENCE.md section 4 (Chaudhry et al. 2018, "Riemannian Walk", with loss in
    place of accuracy): the rise from the domain's best boundary value; > 0
    means forgotten. Given for domains trained before stage k (the min runs
    over every earlier boundary, as in the formula); stage 0 has none.
    """
    out: list[dict[str, float]] = []
    for k in range(len(tl.stages)):
        row: dict[str, float] = {}
        for d in tl.domains:
            first = tl.first_stage(d)
            if first is None or first >= k:
                continue
            i = tl.domains.index(d)
            earlier = r.values[:k, i]
            earlier = earlier[~np.isnan(earlier)]
            if earlier.size and not math.isnan(r.values[k, i]):
                row[d] = float(r.values[k, i] - earlier.min())
        out.append(row)
    return out


def backward_transfer(tl: Timeline, r: LossMatrix) -> tuple[float | None, dict[str, float]]:
    """BWT = 1/(K-1) * sum_{i<K} (R[i][i] - R[K][i]); negative means forgetting.

    SCIENCE.md section 4 (Lopez-Paz & Ranzato 2017, sign flipped for loss so
    that negative still means forgetting). With several domains per stage the
    mean runs over the old domains of the last stage (trained before it and not
    in its mix), R[i][i] being the domain's loss at the end of the last stage
    that trained it. Returns (BWT, per-domain terms); (None, {}) for one stage.
    """
    last = len(tl.stages) - 1
    if last < 1:
        return None, {}
    terms: dict[str, float] = {}
    for d in tl.old_domains(last):
        own = max(s.index for s in tl.stages[:last] if d in s.domains)
        i = tl.domains.index(d)
        own_v, last_v = r.values[own, i], r.values[last, i]
        if not (math.isnan(own_v) or math.isnan(last_v)):
            terms[d] = float(own_v - last_v)
    if not terms:
        return None, {}
    return float(np.mean(list(terms.values()))), terms


def forward_transfer(
    tl: Timeline, reference: dict[str, float] | None = None
) -> dict[int, dict[str, float]]:
    """Forward transfer to each domain new in stage k >= 1: FT = L_ref,i - L_i(s_k).

    SCIENCE.md section 4 (Lopez-Paz & Ranzato 2017: R[k-1][i] against the
    accuracy b_i of a reference model). The reference loss L_ref,i is, by
    default, the run's first evaluation of domain i (the initial model of a
    run from scratch); pass `reference` (domain -> loss, e.g. another run's
    first evaluation or a from-scratch model's loss) to compare against
    something else. Positive means earlier stages already lowered the new
    domain's loss; the same sign convention as BWT (negative = harm).
    """
    if reference is None:
        reference = {}
        for d in tl.domains:
            col = tl.column(d)
            ok = np.flatnonzero(~np.isnan(col))
            if ok.size:
                reference[d] = float(col[ok[0]])
    out: dict[int, dict[str, float]] = {}
    for k in range(1, len(tl.stages)):
        row: dict[str, float] = {}
        for d in tl.stages[k].domains:
            if tl.first_stage(d) != k or d not in reference or d not in tl.domains:
                continue
            hit = tl.start_value(k, d)
            if hit is not None:
                row[d] = reference[d] - hit.value
        out[k] = row
    return out


@dataclass(frozen=True, kw_only=True)
class StabilityGap:
    """The transient loss rise of an old domain after stage `stage` begins."""

    stage: int
    domain: str
    start_loss: float
    """L_i(s_k), read at or just before the stage start."""
    peak_loss: float
    gap: float
    """max_{t in (s_k, e_k]} L_i(t) - L_i(s_k); negative if the loss never rose."""
    peak_tokens: int
    evals_to_peak: int
    """Evaluations of the stage up to and including the peak."""
    recovered: bool
    recover_evals: int | None
    """Evaluations after the peak until L_i <= L_i(s_k) + eps (0 when gap <= eps)."""
    recover_tokens: int | None
    """Tokens from s_k to the recovering evaluation (0 when gap <= eps)."""
    recover_steps: int | None
    """Optimizer steps from the stage start to the recovering evaluation."""


def stability_gaps(tl: Timeline, eps: float = 0.01) -> list[StabilityGap]:
    """Stability gap of every old domain in every stage k >= 1.

    SCIENCE.md section 4 (De Lange et al. 2023, "Continual evaluation for
    lifelong learning"; Guo et al. 2024 for LLMs): gap = max over evaluations
    in stage k of L_i(t) - L_i(s_k); recovery is the first evaluation after the
    peak with L_i(t) <= L_i(s_k) + eps, or "not recovered" by the stage's end.
    `eps` is in nats. Old domains: trained before stage k, not in its mix.
    """
    out: list[StabilityGap] = []
    for k in range(1, len(tl.stages)):
        s = tl.stages[k]
        idx = tl.in_stage(k)
        for d in tl.old_domains(k):
            base = tl.start_value(k, d)
            col = tl.column(d)
            pts = idx[~np.isnan(col[idx])]
            if base is None or pts.size == 0:
                continue
            vals = col[pts]
            p = int(np.argmax(vals))  # first peak on ties
            gap = float(vals[p] - base.value)
            if gap <= eps:
                rec_j: int | None = p
                rec_evals: int | None = 0
            else:
                after = np.flatnonzero(vals[p + 1 :] <= base.value + eps)
                rec_j = p + 1 + int(after[0]) if after.size else None
                rec_evals = None if rec_j is None else rec_j - p
            recovered = rec_j is not None
            rec_tok = rec_step = None
            if recovered and gap <= eps:
                rec_tok = rec_step = 0
            elif recovered:
                rec_tok = int(tl.tokens[pts[rec_j]] - s.start)
                rec_step = int(tl.steps[pts[rec_j]] - s.start_step)
            out.append(
                StabilityGap(
                    stage=k,
                    domain=d,
                    start_loss=base.value,
                    peak_loss=float(vals[p]),
                    gap=gap,
                    peak_tokens=int(tl.tokens[pts[p]]),
                    evals_to_peak=p + 1,
                    recovered=recovered,
                    recover_evals=rec_evals,
                    recover_tokens=rec_tok,
                    recover_steps=rec_step,
                )
            )
    return out


WC_DEFINITIONS = ("tasks", "stages")
"""`worst_case` definitions: De Lange et al.'s mean over tasks (default), or weighted
by stage number."""


@dataclass(frozen=True, kw_only=True)
class WorstCase:
    """WC-loss at every evaluation point, and each domain's worst-case loss by the end."""

    tokens: np.ndarray  # (n,)
    wc_loss: np.ndarray  # (n,) NaN where undefined
    final_worst: dict[str, float] = field(default_factory=dict)
    definition: str = "tasks"
    """Which WC-loss `wc_loss` holds (`WC_DEFINITIONS`)."""


def worst_case(tl: Timeline, definition: str = "tasks") -> WorstCase:
    """Worst-case loss per old domain and WC-loss(t), the analogs of min-ACC and WC-ACC.

    SCIENCE.md section 4 (De Lange et al. 2023, "Continual evaluation for lifelong
    learning"). For an old domain i at time t in stage k, worst_i(t) = max of L_i over
    the evaluations after its own stage ended (tokens > e_own) up to t.

    `definition="tasks"` (the default, De Lange et al.'s reference): WC-ACC_k =
    1/k A(T_k) + (1 - 1/k) min-ACC, with k tasks so far, is the mean over the tasks
    of each task's value, so with domains as tasks WC-loss(t) is the mean over every
    domain trained so far of L_i(t) for the current stage's domains and worst_i(t) for
    the old ones (those with an evaluation after their stage).

    `definition="stages"`: with k the 1-based stage number, WC-loss(t) = 1/k * L_k(t)
    + (1 - 1/k) * mean_i worst_i(t), L_k(t) being the mean loss over stage k's own
    domains. The two agree when every stage trains one domain; with two domains in a
    stage they weigh them differently, so numbers are comparable only under one
    definition.

    With no old domain evaluated yet, WC-loss(t) = L_k(t) under both.
    """
    if definition not in WC_DEFINITIONS:
        raise ValueError(f"definition must be one of {WC_DEFINITIONS}, got {definition!r}")
    n = tl.tokens.size
    wc = np.full(n, np.nan)
    final: dict[str, float] = {}
    for j in range(n):
        k = tl.stage_of(int(tl.tokens[j]))
        own = [tl.domains.index(d) for d in tl.stages[k].domains if d in tl.domains]
        cur = tl.loss[j, own] if own else np.array([])
        cur = cur[~np.isnan(cur)]
        worst: dict[str, float] = {}
        for d in tl.old_domains(k):
            end = tl.own_end(d, k)
            col = tl.column(d)
            sel = (tl.tokens > end) & (tl.tokens <= tl.tokens[j]) & ~np.isnan(col)
            if sel.any():
                worst[d] = float(col[sel].max())
        if j == n - 1:
            final = worst
        if not cur.size:
            continue
        if not worst:
            wc[j] = float(cur.mean())
        elif definition == "tasks":
            wc[j] = float(np.mean([*cur.tolist(), *worst.values()]))
        else:
            w = 1.0 / (k + 1)
            wc[j] = w * float(cur.mean()) + (1 - w) * float(np.mean(list(worst.values())))
    return WorstCase(tokens=tl.tokens.copy(), wc_loss=wc, final_worst=final, definition=definition)


def max_rise(values: np.ndarray, window: int) -> float:
    """Largest L_n - L_m with m < n and n - m < window (0 if the loss never rises)."""
    v = np.asarray(values, dtype=float)
    best = 0.0
    for lag in range(1, min(window, v.size)):
        best = max(best, float(np.max(v[lag:] - v[:-lag])))
    return best


def windowed_forgetting(tl: Timeline, window: int) -> dict[str, float]:
    """Windowed forgetting WF^w per domain: max_{m<n, n-m<w} L_n - L_m.

    SCIENCE.md section 4 (De Lange et al. 2023, w = 10 and 100 evaluations):
    the largest loss rise within any w consecutive evaluations of the domain,
    over the evaluations from the end of its first own stage on (inclusive).
    Only rises count (0 if the loss never rises); domains never trained, or
    with fewer than two evaluations in that range, are left out.
    """
    out: dict[str, float] = {}
    for d in tl.domains:
        first = tl.first_stage(d)
        if first is None:
            continue
        col = tl.column(d)
        sel = (tl.tokens >= tl.stages[first].end) & ~np.isnan(col)
        if sel.sum() >= 2:
            out[d] = max_rise(col[sel], window)
    return out


def bits_per_byte(loss_nats: float, bytes_per_token: float) -> float:
    """Bits per byte = loss / ln 2 / (bytes per token): tokenizer-independent loss."""
    return loss_nats / LN2 / bytes_per_token


@dataclass(frozen=True, kw_only=True)
class Compute:
    """Training (and evaluation) compute of one run."""

    tokens: int
    """Training tokens over all stages: sum of e_k - s_k."""
    tokens_by_stage: tuple[int, ...]
    flops_per_token: float | None
    flops: float | None
    """tokens * flops_per_token (training)."""
    eval_tokens: int
    eval_flops: float | None
    """eval_tokens * flops_per_token / 3 (a forward pass, SCIENCE.md section 6)."""
    flops_source: str


def compute(
    tl: Timeline,
    *,
    flops_per_token: float | None = None,
    non_embedding_params: int | None = None,
    eval_tokens_per_domain: int | None = None,
) -> Compute:
    """Tokens and FLOPs of a run (SCIENCE.md section 6).

    FLOPs per training token come from the `run` start record's
    `flops_per_token` (6N + attention, as the trainer computes it); without it,
    6 * non-embedding parameters (a slight under-estimate: no attention term).
    Evaluation tokens are the evaluation points times domains times the
    configured `eval.tokens_per_domain` (counted from the records).
    """
    by_stage = tuple(max(0, s.end - s.start) for s in tl.stages)
    tokens = int(sum(by_stage))
    source = "run record flops_per_token"
    if flops_per_token is None and non_embedding_params:
        flops_per_token = 6.0 * non_embedding_params
        source = "6 x non-embedding parameters"
    elif flops_per_token is None:
        source = "unknown (no flops_per_token or parameter count logged)"
    n_evals = int((~np.isnan(tl.loss)).sum())
    eval_tokens = n_evals * (eval_tokens_per_domain or 0)
    return Compute(
        tokens=tokens,
        tokens_by_stage=by_stage,
        flops_per_token=flops_per_token,
        flops=None if flops_per_token is None else tokens * flops_per_token,
        eval_tokens=eval_tokens,
        eval_flops=None if flops_per_token is None else eval_tokens * flops_per_token / 3.0,
        flops_source=source,
    )
