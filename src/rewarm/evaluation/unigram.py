"""The unigram reference: what a model that knows only token frequencies scores.

A language model that has learned nothing beyond how often each token occurs ends
at the unigram model's loss; a model that learned context is below it. So every
held-out loss is read against it (STYLE.md, "evidence before claims").

Model: p(v) = (c_v + alpha) / (N + alpha V), with c_v the count of token id v in
the domain's training split (every token, end-of-document tokens included), N the
training tokens and V the tokenizer's vocabulary. alpha = 1 is add-one (Laplace)
smoothing: every id the tokenizer can emit gets a probability > 0, so a held-out
token never seen in training costs log(N + V) nats instead of infinity.

Scored like a model: the mean of -ln p(target) over the predicted tokens
(`windows[:, 1:]`) of the evaluator's fixed held-out windows
(`rewarm.evaluation.evaluator.eval_windows`), in nats per token, and in bits per
byte with the evaluator's conversion (nats / ln 2 / held-out bytes per token).

Pure: numpy arrays in, numbers out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

ALPHA = 1.0
"""Add-one smoothing."""


@dataclass(frozen=True, kw_only=True)
class UnigramScore:
    nats: float
    """Mean nats per predicted held-out token."""
    bits_per_byte: float
    tokens: int
    """Predicted tokens the mean is over."""


def log_probs(train: np.ndarray, vocab_size: int, alpha: float = ALPHA) -> np.ndarray:
    """ln p(v) for every id v < vocab_size: add-alpha smoothed training counts."""
    ids = np.asarray(train, dtype=np.int64)
    if ids.size and (ids.min() < 0 or ids.max() >= vocab_size):
        raise ValueError(f"token ids outside [0, {vocab_size})")
    counts = np.bincount(ids, minlength=vocab_size).astype(np.float64)
    return np.log((counts + alpha) / (counts.sum() + alpha * vocab_size))


def score(logp: np.ndarray, windows: np.ndarray, bytes_per_token: float) -> UnigramScore:
    """The unigram model `logp` on the predicted tokens of `windows` (n, seq_len + 1)."""
    targets = np.asarray(windows, dtype=np.int64)[:, 1:]
    nats = float(-logp[targets].mean())
    bpb = nats / math.log(2) / bytes_per_token if bytes_per_token > 0 else math.nan
    return UnigramScore(nats=nats, bits_per_byte=bpb, tokens=int(targets.size))
