"""The held-out split of one domain, written as its token stream goes by.

`plan_split` decides from the documents' lengths alone which documents are held out
(`choose_heldout`, or the tail of a single document); `SplitWriter` then takes the
domain's tokens as consecutive chunks of any size, in document order, and appends
each stretch to `train.bin` or `heldout.bin`. Neither ever holds the token stream:
memory is a few integers per document, so a corpus larger than memory splits in one
sequential pass.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rewarm.data import shards
from rewarm.data.hashing import derive, mix_array


def choose_heldout(
    doc_tokens: np.ndarray, fraction: float, min_tokens: int, key: int
) -> np.ndarray:
    """Boolean mask of held-out documents.

    Documents are visited in a keyed pseudo-random order and added while the
    held-out set has fewer than max(ceil(fraction * total), min_tokens) tokens;
    a document that would push it past half of all tokens is passed over, so
    training keeps at least half of the data.
    """
    total = int(doc_tokens.sum())
    target = max(math.ceil(fraction * total), min_tokens)
    cap = total // 2
    order = np.argsort(mix_array(np.arange(doc_tokens.size, dtype=np.uint64), key), kind="stable")
    mask = np.zeros(doc_tokens.size, dtype=bool)
    have = 0
    for i in order:
        if have >= target:
            break
        if have + doc_tokens[i] <= cap:
            mask[i] = True
            have += int(doc_tokens[i])
    return mask


@dataclass
class SplitPlan:
    """Which stretches of the token stream go where."""

    method: str
    """"documents" (whole documents held out) or "tail" (one document: its end)."""
    mask: np.ndarray
    """bool (documents,): held out (all False for "tail")."""
    starts: np.ndarray
    """int64 (runs,): first token of each run of the stream that goes to one side."""
    ends: np.ndarray
    held: np.ndarray
    """bool (runs,): the run goes to heldout.bin."""
    tail_tokens: int = 0
    """Tokens held out by the "tail" method."""


def plan_split(lengths: np.ndarray, fraction: float, min_tokens: int, domain: str) -> SplitPlan:
    """The split of documents of `lengths` tokens (eos included), keyed by the domain."""
    total = int(lengths.sum())
    if lengths.size >= 2:
        mask = choose_heldout(lengths, fraction, min_tokens, derive("heldout", domain))
        ends = np.cumsum(lengths)
        starts = ends - lengths
        # Maximal runs of consecutive documents on the same side of the split.
        change = np.nonzero(np.diff(mask.astype(np.int8)))[0] + 1
        first = np.concatenate([[0], change]).astype(np.int64)
        last = np.concatenate([change, [lengths.size]]).astype(np.int64)
        return SplitPlan("documents", mask, starts[first], ends[last - 1], mask[first])
    n_held = min(max(math.ceil(fraction * total), min_tokens), total // 2)
    starts = np.array([0, total - n_held], dtype=np.int64)
    ends = np.array([total - n_held, total], dtype=np.int64)
    return SplitPlan(
        "tail", np.zeros(lengths.size, dtype=bool), starts, ends, np.array([False, True]), n_held
    )


class SplitWriter:
    """Appends consecutive chunks of a domain's token stream to its train and held-out
    shards following a `SplitPlan`; `commit()` renames both into place."""

    def __init__(self, directory: Path, dtype: np.dtype, plan: SplitPlan) -> None:
        self.plan = plan
        self.train = shards.TokenWriter(directory / shards.TRAIN, dtype)
        self.heldout = shards.TokenWriter(directory / shards.HELDOUT, dtype)
        self.position = 0
        self._run = 0

    def write(self, chunk: np.ndarray) -> None:
        """The next `chunk.size` tokens of the stream."""
        lo, hi = self.position, self.position + int(chunk.size)
        p = self.plan
        while self._run < p.starts.size and p.starts[self._run] < hi:
            a, b = max(int(p.starts[self._run]), lo), min(int(p.ends[self._run]), hi)
            if a < b:
                (self.heldout if p.held[self._run] else self.train).write(chunk[a - lo : b - lo])
            if p.ends[self._run] > hi:
                break
            self._run += 1
        self.position = hi

    def commit(self) -> None:
        self.train.commit()
        self.heldout.commit()

    def abort(self) -> None:
        self.train.abort()
        self.heldout.abort()
