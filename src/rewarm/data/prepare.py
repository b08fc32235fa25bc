"""Corpora -> token shards: `prepare(cfg)` builds or reuses every domain's shards.

For each domain, under `cfg.data_dir/NAME/`: `train.bin` and `heldout.bin` (flat
token arrays, documents separated by the end-of-document token) and
`manifest.json` (see docs/data.md for every field). The BPE tokenizer, when
configured, is trained once and saved under `cfg.data_dir/tokenizer/`.

A text domain is tokenized in resumable units by worker processes
(`rewarm.data.parts`), then its held-out split is written in one streaming pass
(`rewarm.data.splitter`); a token domain (`domains.NAME.format`) is copied from
its token files (`rewarm.data.token_sources`) through the same split.

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
from rewarm.data import parts, shards, sources, splitter, token_sources
from rewarm.data import tokenizer as tok_mod
from rewarm.data.shards import DomainData
from rewarm.data.splitter import choose_heldout
from rewarm.errors import UserError

__all__ = ["build_domain", "choose_heldout", "ensure_tokenizer", "prepare"]

logger = logging.getLogger(__name__)
_CHUNK_TOKENS = 1 << 22  # ids copied from the part files at a time
Files = list[sources.SourceFile] | list[token_sources.TokenFile]


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
    cfg: Config, files: dict[str, Files], progress: bool, rebuild: bool = True
) -> tok_mod.Tokenizer:
    """Load the configured tokenizer, training and saving the BPE one when needed (on a
    sample of the text domains: token domains bring their own ids)."""
    if cfg.tokenizer.kind != "bpe":
        return tok_mod.load_tokenizer(cfg)
    texts = {name: dom for name, dom in cfg.domains.items() if dom.format == "text"}
    if not texts:
        raise UserError(
            f'{cfg.source}: tokenizer.kind = "bpe" is trained on the text domains, and '
            'there is none; use the tokenizer the token ids came from ("byte" or "hf:PATH")'
        )
    meta = {
        "vocab_size": cfg.tokenizer.vocab_size,
        "sample_bytes": cfg.tokenizer.sample_bytes,
        "domains": {
            name: [dom.source, dom.field, dom.max_bytes, _digest(_stats(files[name]))]
            for name, dom in texts.items()
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
    per_domain = max(1, cfg.tokenizer.sample_bytes // len(texts))

    bar = _bar(0, "train bpe tokenizer on a sample", progress, unit="doc")

    def sample() -> Iterator[str]:
        for name, dom in texts.items():
            budget = min(per_domain, dom.max_bytes) if dom.max_bytes else per_domain
            text_files: list[sources.SourceFile] = files[name]  # type: ignore[assignment]
            for text in sources.read_documents(text_files, dom.field, budget, []):
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


def _stats(files: Files) -> list[list[Any]]:
    """(path, kind, size, mtime) per file: what the inputs fingerprint records."""
    if files and isinstance(files[0], token_sources.TokenFile):
        return [f.stat() for f in files]
    return sources.stat_list(files)  # type: ignore[arg-type]


def _resolve(cfg: Config, name: str) -> Files:
    dom, where = cfg.domains[name], f"{cfg.source}: domains.{name}.source"
    if dom.format == "text":
        return sources.resolve(dom.source, where)
    return token_sources.resolve(dom.source, dom.format, where)


def _inputs(cfg: Config, name: str, files: Files, identity: dict) -> dict:
    dom = cfg.domains[name]
    inputs: dict[str, Any] = {
        "format": shards.FORMAT_VERSION,
        "source": dom.source,
        "field": dom.field,
        "max_bytes": dom.max_bytes,
        "files": _digest(_stats(files)),
        "tokenizer": identity,
        "heldout_fraction": cfg.data.heldout_fraction,
        "heldout_min_tokens": cfg.data.heldout_min_tokens,
    }
    if dom.format != "text":  # (text domains keep the inputs older shards recorded)
        inputs["source_format"] = {
            "format": dom.format,
            "dtype": dom.dtype,
            "tokenizer": dom.tokenizer,
        }
    return inputs


_REASONS = {
    "format": "shard format changed",
    "source": "source changed",
    "field": "field changed",
    "max_bytes": "max_bytes changed",
    "files": "source files changed",
    "tokenizer": "tokenizer changed",
    "heldout_fraction": "held-out settings changed",
    "heldout_min_tokens": "held-out settings changed",
    "source_format": "format, dtype or declared tokenizer changed",
}


def _stale_reason(old: dict | None, new: dict) -> str:
    if old is None:
        return "no manifest"
    prev = old.get("inputs", {})
    for key, reason in _REASONS.items():
        if prev.get(key) != new.get(key):
            return reason
    return "shards incomplete"


def prepare(
    cfg: Config, progress: bool = True, rebuild: bool = True, force: bool = False
) -> dict[str, DomainData]:
    """Build (or reuse) every domain's shards; return {name: DomainData}.

    rebuild: rebuild stale shards (with a notice); False refuses them with a UserError.
    force: rebuild every domain (and retrain the BPE tokenizer) regardless, reusing no
    unit an interrupted prepare left (`rewarm.data.parts`).
    """
    if cfg.data.workers > 0:
        # The tokenizers library sizes its thread pool from this on first use.
        os.environ.setdefault("RAYON_NUM_THREADS", str(cfg.data.workers))
    files = {name: _resolve(cfg, name) for name in cfg.domains}
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
        if force:  # nothing of an interrupted prepare is reused either
            shutil.rmtree(directory / parts.PARTS, ignore_errors=True)
        out[name] = build_domain(cfg, name, files[name], tok, inputs, progress)
    return out


def build_domain(
    cfg: Config,
    name: str,
    files: Files,
    tok: tok_mod.Tokenizer,
    inputs: dict[str, Any],
    progress: bool,
) -> DomainData:
    """Tokenize (or copy) one domain and write its shards and manifest (manifest last)."""
    dom = cfg.domains[name]
    directory = Path(cfg.data_dir) / name
    directory.mkdir(parents=True, exist_ok=True)
    (directory / shards.MANIFEST).unlink(missing_ok=True)  # incomplete until rewritten
    atomic.remove_stale(directory, only_dead=True)  # what a killed prepare left
    dtype = shards.token_dtype(tok.vocab_size)
    if dom.format == "text":
        text_files: list[sources.SourceFile] = files  # type: ignore[assignment]
        records, total, split = _build_text(cfg, name, text_files, tok, inputs, dtype, progress)
    else:
        bar = _bar(len(files), f"prepare {name}", progress)
        token_files: list[token_sources.TokenFile] = files  # type: ignore[assignment]
        try:
            records, total, split = token_sources.build_token_shards(
                cfg, name, token_files, directory, tok, dtype, bar
            )
        finally:
            bar.close()
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
        "counts": _counts(records, total),
        "split": split,
        "files": [r.to_dict() for r in records],
    }
    if dom.format != "text":
        manifest["source_format"] = inputs["source_format"]
    shards.write_manifest(directory, manifest)
    return shards.open_domain(directory)


def _build_text(
    cfg: Config,
    name: str,
    files: list[sources.SourceFile],
    tok: tok_mod.Tokenizer,
    inputs: dict[str, Any],
    dtype: np.dtype,
    progress: bool,
) -> tuple[list[sources.FileRecord], int, dict[str, Any]]:
    """Tokenize a text domain into part files (resumable), then split them into the
    shards in one pass; the part files are removed once the shards are in place."""
    dom = cfg.domains[name]
    directory = Path(cfg.data_dir) / name
    part_dir = directory / parts.PARTS
    bar = _bar(parts.source_bytes(files), f"prepare {name}", progress, unit="B")
    bar.unit_scale = True

    def on_unit(done: parts.Done, size: int) -> None:
        bar.update(size)
        bar.set_postfix(tokens=f"{done.tokens:,}", refresh=False)

    try:
        used, reused = parts.tokenize(
            files=files,
            field=dom.field,
            max_bytes=dom.max_bytes,
            directory=part_dir,
            tok=tok,
            dtype=dtype,
            fingerprint=_digest(inputs),
            workers=cfg.data.workers,
            on_unit=on_unit,
        )
    finally:
        bar.close()
    if reused:
        logger.info("rewarm: %s: resumed: %d tokenized part(s) reused", directory, reused)
    docs = parts.documents(part_dir, used)
    if docs.shape[0] == 0:
        raise UserError(f"{cfg.source}: domains.{name}.source yielded no documents")
    lengths, sizes = docs[:, 0], docs[:, 1]
    plan = splitter.plan_split(
        lengths, cfg.data.heldout_fraction, cfg.data.heldout_min_tokens, name
    )
    out = splitter.SplitWriter(directory, dtype, plan)
    try:
        for chunk in parts.token_chunks(part_dir, used, dtype, _CHUNK_TOKENS):
            out.write(chunk)
        out.commit()
    except BaseException:
        out.abort()
        raise
    if plan.method == "documents":
        held_docs, held_bytes = int(plan.mask.sum()), int(sizes[plan.mask].sum())
        train_docs = int(lengths.size - held_docs)
    else:  # one document: its tail is held out, its bytes counted by decoding it
        held = np.memmap(directory / shards.HELDOUT, dtype=dtype, mode="r")
        held_docs, train_docs = (1 if out.heldout.count else 0), 1
        held_bytes = len(tok.decode(np.asarray(held)).encode("utf-8")) if held.size else 0
        del held
    records = _merge_records([r for d in used for r in d.records])
    shutil.rmtree(part_dir, ignore_errors=True)
    split = {
        "method": plan.method,
        "heldout_fraction": cfg.data.heldout_fraction,
        "heldout_min_tokens": cfg.data.heldout_min_tokens,
        "train_documents": train_docs,
        "heldout_documents": held_docs,
        "train_tokens": out.train.count,
        "heldout_tokens": out.heldout.count,
        "train_bytes": int(sizes.sum()) - held_bytes,
        "heldout_bytes": held_bytes,
    }
    return records, int(lengths.sum()), split


def _merge_records(dicts: list[dict[str, Any]]) -> list[sources.FileRecord]:
    """One record per file: the records of a file's parts (consecutive, same path) summed,
    with the size and SHA-256 of the whole file."""
    out: list[sources.FileRecord] = []
    cut: set[int] = set()
    for d in dicts:
        rec = sources.FileRecord(**d)
        if out and out[-1].path == rec.path:
            last = out[-1]
            for key in ("documents", "bytes", "undecodable_bytes", "empty_documents"):
                setattr(last, key, getattr(last, key) + getattr(rec, key))
            last.missing_field += rec.missing_field
            last.truncated = last.truncated or rec.truncated
            cut.add(len(out) - 1)
        else:
            out.append(rec)
    for i, rec in enumerate(out):
        if i in cut or (not rec.sha256 and not rec.skipped and Path(rec.path).is_file()):
            rec.size, rec.sha256 = _hash_file(Path(rec.path))
    return out


def _hash_file(path: Path) -> tuple[int, str]:
    digest, size = hashlib.sha256(), 0
    with path.open("rb") as f:
        while block := f.read(1 << 23):
            digest.update(block)
            size += len(block)
    return size, digest.hexdigest()


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
