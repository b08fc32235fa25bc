"""Corpora -> token shards: `prepare(cfg)` builds or reuses every domain's shards.

For each domain, under `cfg.data_dir/NAME/`: `train.bin` and `heldout.bin` (flat
token arrays, documents separated by the end-of-document token) and
`manifest.json` (see docs/data.md for every field). The BPE tokenizer, when
configured, is trained once and saved under `cfg.data_dir/tokenizer/`.

Reuse rule: a domain is rebuilt when the inputs digest (SHA-256 of its inputs: shard
format, source spec, field, max_bytes, the source stamps (size and mtime of every
source file), tokenizer identity, held-out settings) differs from the one in its
manifest (stored under the key `fingerprint`); a one-line notice names the reason.
With `rebuild=False` such shards are refused instead.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from rewarm import atomic
from rewarm.config import Config
from rewarm.data import shards, sources
from rewarm.data import tokenizer as tok_mod
from rewarm.data.hashing import derive, mix_array
from rewarm.data.shards import DomainData
from rewarm.errors import UserError

logger = logging.getLogger(__name__)
_BATCH_BYTES = 1 << 20  # text per tokenizer call


def _digest(obj: Any) -> str:
    """SHA-256 of canonical JSON: the inputs digest of a domain's shards."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()


def _bar(total: int, desc: str, progress: bool, unit: str = "file") -> Any:
    from tqdm.auto import tqdm

    return tqdm(
        total=total, desc=desc, unit=unit, disable=not progress, file=sys.stderr, leave=True
    )


# -- tokenizer -------------------------------------------------------------------------


def ensure_tokenizer(
    cfg: Config, files: dict[str, list[sources.SourceFile]], progress: bool, rebuild: bool = True
) -> tok_mod.Tokenizer:
    """Load the configured tokenizer, training and saving the BPE one when needed."""
    if cfg.tokenizer.kind != "bpe":
        return tok_mod.load_tokenizer(cfg)
    meta = {
        "vocab_size": cfg.tokenizer.vocab_size,
        "sample_bytes": cfg.tokenizer.sample_bytes,
        "domains": {
            name: [dom.source, dom.field, dom.max_bytes, _digest(sources.stat_list(files[name]))]
            for name, dom in cfg.domains.items()
        },
    }
    directory = tok_mod.bpe_dir(cfg)
    if tok_mod.tokenizer_meta_matches(directory, meta):
        return tok_mod.load_bpe(directory)
    if not rebuild:
        what = "was trained with other settings or data" if directory.exists() else "is missing"
        raise UserError(f"{directory}: the BPE tokenizer {what}; run `rewarm prepare CONFIG`")
    if directory.exists():
        logger.warning("rewarm: %s: tokenizer settings or data changed; retraining", directory)
    per_domain = max(1, cfg.tokenizer.sample_bytes // len(cfg.domains))

    bar = _bar(0, "train bpe tokenizer on a sample", progress, unit="doc")

    def sample() -> Iterator[str]:
        for name, dom in cfg.domains.items():
            budget = min(per_domain, dom.max_bytes) if dom.max_bytes else per_domain
            for text in sources.read_documents(files[name], dom.field, budget, []):
                bar.update(1)
                yield text

    tok = tok_mod.train_bpe(sample(), cfg.tokenizer.vocab_size)
    bar.close()
    directory.parent.mkdir(parents=True, exist_ok=True)
    with atomic.directory(directory) as tmp:
        tok.backend.save(str(tmp / tok_mod.TOKENIZER_JSON))
        (tmp / "rewarm_tokenizer.json").write_text(json.dumps(meta, sort_keys=True))
    return tok_mod.load_bpe(directory)


# -- domains ---------------------------------------------------------------------------


def _inputs(cfg: Config, name: str, files: list[sources.SourceFile], identity: dict) -> dict:
    dom = cfg.domains[name]
    return {
        "format": shards.FORMAT_VERSION,
        "source": dom.source,
        "field": dom.field,
        "max_bytes": dom.max_bytes,
        "files": _digest(sources.stat_list(files)),
        "tokenizer": identity,
        "heldout_fraction": cfg.data.heldout_fraction,
        "heldout_min_tokens": cfg.data.heldout_min_tokens,
    }


_REASONS = {
    "format": "shard format changed",
    "source": "source changed",
    "field": "field changed",
    "max_bytes": "max_bytes changed",
    "files": "source files changed",
    "tokenizer": "tokenizer changed",
    "heldout_fraction": "held-out settings changed",
    "heldout_min_tokens": "held-out settings changed",
}


def _stale_reason(old: dict | None, new: dict) -> str:
    if old is None:
        return "no manifest"
    prev = old.get("inputs", {})
    for key, reason in _REASONS.items():
        if prev.get(key) != new[key]:
            return reason
    return "shards incomplete"


def prepare(
    cfg: Config, progress: bool = True, rebuild: bool = True, force: bool = False
) -> dict[str, DomainData]:
    """Build (or reuse) every domain's shards; return {name: DomainData}.

    rebuild: rebuild stale shards (with a notice); False refuses them with a UserError.
    force: rebuild every domain (and retrain the BPE tokenizer) regardless.
    """
    if cfg.data.workers > 0:
        # The tokenizers library sizes its thread pool from this on first use.
        os.environ.setdefault("RAYON_NUM_THREADS", str(cfg.data.workers))
    files = {
        name: sources.resolve(dom.source, f"{cfg.source}: domains.{name}.source")
        for name, dom in cfg.domains.items()
    }
    if force and cfg.tokenizer.kind == "bpe":
        shutil.rmtree(tok_mod.bpe_dir(cfg), ignore_errors=True)
    tok = ensure_tokenizer(cfg, files, progress, rebuild)
    identity = tok.identity()
    out: dict[str, DomainData] = {}
    for name in cfg.domains:
        directory = Path(cfg.data_dir) / name
        inputs = _inputs(cfg, name, files[name], identity)
        inputs_digest = _digest(inputs)
        manifest = shards.read_manifest(directory)
        if not force and manifest and manifest.get("fingerprint") == inputs_digest:
            try:
                out[name] = shards.open_domain(directory)
                continue
            except UserError:
                pass
        if not rebuild:
            reason = _stale_reason(manifest, inputs)
            what = "missing" if manifest is None else f"stale ({reason})"
            raise UserError(f"{directory}: shards are {what}; run `rewarm prepare CONFIG`")
        if manifest is not None and not force:
            reason = _stale_reason(manifest, inputs)
            logger.warning("rewarm: %s: shards are stale (%s); rebuilding", directory, reason)
        out[name] = build_domain(cfg, name, files[name], tok, inputs, progress)
    return out


def build_domain(
    cfg: Config,
    name: str,
    files: list[sources.SourceFile],
    tok: tok_mod.Tokenizer,
    inputs: dict[str, Any],
    progress: bool,
) -> DomainData:
    """Tokenize one domain and write its shards and manifest (manifest last)."""
    dom = cfg.domains[name]
    directory = Path(cfg.data_dir) / name
    directory.mkdir(parents=True, exist_ok=True)
    (directory / shards.MANIFEST).unlink(missing_ok=True)  # incomplete until rewritten
    dtype = shards.token_dtype(tok.vocab_size)
    records: list[sources.FileRecord] = []
    doc_tokens: list[int] = []
    doc_bytes: list[int] = []
    everything = shards.TokenWriter(directory / "all.bin", dtype)
    bar = _bar(len(files), f"prepare {name}", progress)
    eos = np.array([tok.eos_id], dtype=np.int64)

    def flush(batch: list[str]) -> None:
        pieces = []
        for ids in tok.encode_batch(batch):
            pieces += [np.asarray(ids, dtype=np.int64), eos]
            doc_tokens.append(len(ids) + 1)
        everything.write(np.concatenate(pieces))
        doc_bytes.extend(len(t.encode("utf-8")) for t in batch)
        bar.set_postfix(tokens=f"{everything.count:,}", refresh=False)

    try:
        batch: list[str] = []
        size = 0
        for text in sources.read_documents(
            files, dom.field, dom.max_bytes, records, on_file=lambda _: bar.update(1)
        ):
            batch.append(text)
            size += len(text)
            if size >= _BATCH_BYTES:
                flush(batch)
                batch, size = [], 0
        if batch:
            flush(batch)
        everything.commit()
    except BaseException:
        everything.abort()
        bar.close()
        raise
    bar.total = bar.n  # files after the max_bytes budget are not read
    bar.close()
    if not doc_tokens:
        (directory / "all.bin").unlink(missing_ok=True)
        raise UserError(f"{cfg.source}: domains.{name}.source yielded no documents")
    try:
        split = _split(cfg, name, directory, dtype, doc_tokens, doc_bytes, tok)
    finally:
        (directory / "all.bin").unlink(missing_ok=True)
    manifest = {
        "format": shards.FORMAT_VERSION,
        "domain": name,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "fingerprint": _digest(inputs),  # the inputs digest (key name kept for old shards)
        "inputs": inputs,
        "source": dom.source,
        "field": dom.field,
        "max_bytes": dom.max_bytes,
        "tokenizer": inputs["tokenizer"],
        "vocab_size": tok.vocab_size,
        "eos_id": tok.eos_id,
        "dtype": dtype.name,
        "counts": _counts(records, sum(doc_tokens)),
        "split": split,
        "files": [r.to_dict() for r in records],
    }
    shards.write_manifest(directory, manifest)
    return shards.open_domain(directory)


def _counts(records: list[sources.FileRecord], tokens: int) -> dict[str, Any]:
    return {
        "files": len(records),
        "documents": sum(r.documents for r in records),
        "bytes": sum(r.bytes for r in records),
        "tokens": tokens,
        "skipped_files": sum(1 for r in records if r.skipped),
        "empty_files": sum(1 for r in records if r.empty_documents and not r.documents),
        "empty_documents": sum(r.empty_documents for r in records),
        "undecodable_bytes": sum(r.undecodable_bytes for r in records),
        "files_with_undecodable_bytes": sum(1 for r in records if r.undecodable_bytes),
        "missing_field": sum(r.missing_field for r in records),
        "truncated_at_max_bytes": any(r.truncated for r in records),
    }


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


def _split(
    cfg: Config,
    name: str,
    directory: Path,
    dtype: np.dtype,
    doc_tokens: list[int],
    doc_bytes: list[int],
    tok: tok_mod.Tokenizer,
) -> dict[str, Any]:
    lengths = np.asarray(doc_tokens, dtype=np.int64)
    sizes = np.asarray(doc_bytes, dtype=np.int64)
    total = int(lengths.sum())
    src = np.memmap(directory / "all.bin", dtype=dtype, mode="r", shape=(total,))
    train = shards.TokenWriter(directory / shards.TRAIN, dtype)
    held = shards.TokenWriter(directory / shards.HELDOUT, dtype)
    frac, min_tokens = cfg.data.heldout_fraction, cfg.data.heldout_min_tokens
    try:
        if lengths.size >= 2:
            method = "documents"
            mask = choose_heldout(lengths, frac, min_tokens, derive("heldout", name))
            ends = np.cumsum(lengths)
            starts = ends - lengths
            # Copy maximal runs of consecutive documents with the same side of the split.
            change = np.nonzero(np.diff(mask.astype(np.int8)))[0] + 1
            run_starts = np.concatenate([[0], change])
            run_ends = np.concatenate([change, [lengths.size]])
            for a, b in zip(run_starts, run_ends, strict=True):
                (held if mask[a] else train).write(src[starts[a] : ends[b - 1]])
            held_docs, held_bytes = int(mask.sum()), int(sizes[mask].sum())
        else:
            # One document: hold out its tail (the only split that keeps both sides).
            method = "tail"
            n_held = min(max(math.ceil(frac * total), min_tokens), total // 2)
            train.write(src[: total - n_held])
            held.write(src[total - n_held :])
            held_docs = 1 if n_held else 0
            held_bytes = len(tok.decode(np.asarray(src[total - n_held :])).encode("utf-8"))
        train.commit()
        held.commit()
    except BaseException:
        train.abort()
        held.abort()
        raise
    finally:
        del src
    return {
        "method": method,
        "heldout_fraction": frac,
        "heldout_min_tokens": min_tokens,
        "train_documents": int(lengths.size - held_docs) if method == "documents" else 1,
        "heldout_documents": held_docs,
        "train_tokens": train.count,
        "heldout_tokens": held.count,
        "train_bytes": int(sizes.sum()) - held_bytes,
        "heldout_bytes": held_bytes,
    }
