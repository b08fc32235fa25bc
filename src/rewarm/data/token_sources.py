"""Token datasets another tool wrote, read as a domain's source without re-tokenizing.

`domains.NAME.format` picks the reader; `domains.NAME.tokenizer` declares the
tokenizer the ids came from:

- "megatron": Megatron-LM / GPT-NeoX indexed datasets (`rewarm.data.megatron`); a
  source names PREFIX, PREFIX.bin or PREFIX.idx, a glob of them, or a directory
  (every *.idx below it). Documents come from the index.
- "flat": raw arrays of `domains.NAME.dtype` (nanoGPT's `train.bin` is uint16); a
  document ends at each end-of-document id, and a file boundary ends one too.
- "hf-tokens": a `datasets` directory (`save_to_disk`; every split, in sorted order)
  or .parquet files, whose column `field` ("input_ids" by default) holds one list of
  ids per document.

`build_token_shards` checks that the declared tokenizer is the run's `[tokenizer]`
or one it extends (same id for every token), streams the ids through the held-out
split (`rewarm.data.splitter`) into the domain's ordinary shards, appending the
end-of-document id to any document that does not end with it, and refuses ids
outside the declared vocabulary, naming the key. Memory holds a few integers per
document, never the ids. Text bytes are not in the data: bits per byte use the
bytes per token of a decoded sample of the held-out documents.
"""

from __future__ import annotations

import glob
import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from rewarm.config import Config
from rewarm.data import megatron, sources, splitter
from rewarm.data import tokenizer as tok_mod
from rewarm.errors import UserError

CHUNK_TOKENS = 1 << 22  # ids read, checked and written at a time
BATCH_ROWS = 4096  # documents per batch from an arrow table
SAMPLE_TOKENS = 1 << 20  # held-out ids decoded to measure bytes per token
_DATASET_MARKERS = ("dataset_info.json", "dataset_dict.json", "state.json")


@dataclass
class TokenFile:
    """One token dataset of a source: what the manifest names and the files it reads."""

    path: Path
    kind: str
    """"megatron", "flat" or "hf-tokens"."""

    def members(self) -> list[Path]:
        if self.kind == "megatron":
            return [self.path.with_name(self.path.name + s) for s in (".idx", ".bin")]
        if self.path.is_dir():
            return sorted(p for p in self.path.rglob("*") if p.is_file())
        return [self.path]

    def stat(self) -> list[Any]:
        """[path, kind, size, mtime_ns]: the cheap fingerprint of `sources.stat_list`."""
        size = mtime = 0
        for p in self.members():
            st = p.stat()
            size, mtime = size + st.st_size, max(mtime, st.st_mtime_ns)
        return [self.path.as_posix(), self.kind, size, mtime]

    def record(self) -> sources.FileRecord:
        """The manifest entry, with the size and SHA-256 of its files (streamed)."""
        rec = sources.FileRecord(path=self.path.as_posix(), kind=self.kind)
        digest = hashlib.sha256()
        for p in self.members():
            if self.path.is_dir():
                digest.update(p.relative_to(self.path).as_posix().encode() + b"\0")
            with p.open("rb") as f:
                while block := f.read(1 << 23):
                    digest.update(block)
                    rec.size += len(block)
        rec.sha256 = digest.hexdigest()
        return rec


# -- resolving a source ------------------------------------------------------------------


def _expand(spec: str, where: str) -> list[Path]:
    if set("*?[") & set(spec):
        found = sorted(glob.glob(spec, recursive=True))
        if not found:
            raise UserError(f"{where}: {spec!r} matches no file")
        return [Path(m) for m in found]
    return [Path(spec)]


def _files_of(p: Path, kind: str, spec: str, where: str) -> list[Path]:
    if kind == "megatron":
        if p.is_dir():
            return sorted(megatron.prefix_of(q) for q in p.rglob("*.idx"))
        prefix = megatron.prefix_of(p)
        if prefix.with_name(prefix.name + ".idx").exists():
            return [prefix]
    elif p.is_dir() and not (kind == "hf-tokens" and _is_dataset(p)):
        pattern = "*.parquet" if kind == "hf-tokens" else "*"
        return sorted(
            (q for q in p.rglob(pattern) if q.is_file() and not q.name.startswith(".")),
            key=lambda q: q.as_posix(),
        )
    elif p.exists():
        return [p]
    raise UserError(f"{where}: {spec!r}: no such file or directory")


def _is_dataset(p: Path) -> bool:
    return any((p / m).exists() for m in _DATASET_MARKERS)


def resolve(source: str | list[str], kind: str, where: str) -> list[TokenFile]:
    """The token datasets of a source spec, in order; `where` names the config key."""
    out: list[TokenFile] = []
    seen: set[Path] = set()
    for spec in [source] if isinstance(source, str) else source:
        for match in _expand(spec, where):
            for p in _files_of(match, kind, spec, where):
                if p not in seen:
                    seen.add(p)
                    out.append(TokenFile(p, kind))
    if not out:
        raise UserError(f"{where}: no {kind} token files found in {source}")
    return out


# -- readers -----------------------------------------------------------------------------

Check = Callable[[np.ndarray], None]


@dataclass
class Scan:
    """A dataset's documents: ids per document, the end-of-document id included (one is
    appended where a document lacks it); empty documents are left out and counted."""

    lengths: np.ndarray
    empty: int = 0
    missing: int = 0


def _append_eos(ids: np.ndarray, ends: np.ndarray, need: np.ndarray, eos: int) -> np.ndarray:
    """`ids` with `eos` inserted after position ends[k] - 1 wherever need[k]."""
    return np.insert(np.asarray(ids), ends[need], eos) if need.any() else ids


class _Megatron:
    def __init__(self, f: TokenFile, dom: Any, where: str) -> None:
        self.ds = megatron.open_indexed(f.path)
        if dom.dtype and np.dtype(dom.dtype) != self.ds.dtype:
            raise UserError(
                f"{where}.dtype = {dom.dtype!r}, but {f.path}.idx declares "
                f"{self.ds.dtype.name}; leave dtype out or set it to {self.ds.dtype.name!r}"
            )
        raw = self.ds.document_lengths()
        self.keep = raw > 0
        self.raw = raw[self.keep]
        self.start = self.ds.first_id()
        self.ends = np.cumsum(self.raw)  # end of each kept document in the id stream

    def scan(self, eos: int, check: Check) -> Scan:
        self.need = np.zeros(self.raw.size, dtype=bool)
        for a in range(0, self.raw.size, CHUNK_TOKENS):
            last = np.asarray(self.ds.ids[self.start + self.ends[a : a + CHUNK_TOKENS] - 1])
            self.need[a : a + CHUNK_TOKENS] = last != eos
        return Scan(self.raw + self.need, empty=int((~self.keep).sum()))

    def chunks(self, eos: int, check: Check) -> Iterator[np.ndarray]:
        total, a, done = int(self.ends[-1]) if self.ends.size else 0, 0, 0
        while done < total:
            # Whole documents [a, b) of about CHUNK_TOKENS ids (at least one).
            b = max(a + 1, int(np.searchsorted(self.ends, done + CHUNK_TOKENS, "right")))
            ids = self.ds.ids[self.start + done : self.start + int(self.ends[b - 1])]
            check(ids)
            local = self.ends[a:b] - done
            if ids.size > CHUNK_TOKENS:  # one long document: no copy, its eos after it
                yield ids
                if self.need[a]:
                    yield np.array([eos], dtype=np.int64)
            else:
                yield _append_eos(ids, local, self.need[a:b], eos)
            a, done = b, int(self.ends[b - 1])


class _Flat:
    def __init__(self, f: TokenFile, dom: Any, where: str) -> None:
        self.path, self.dtype, self.where = f.path, np.dtype(dom.dtype), where
        size = f.path.stat().st_size
        if size % self.dtype.itemsize:
            raise UserError(
                f"{where}.dtype = {dom.dtype!r}: {f.path} has {size} bytes, not a whole "
                f"number of {self.dtype.itemsize}-byte ids; is the dtype right?"
            )
        self.ids = np.memmap(f.path, dtype=self.dtype, mode="r") if size else np.zeros(0)
        head = np.asarray(self.ids[: 1 << 20])
        if self.dtype.itemsize == 2 and head.size >= 64 and not head[1::2].any():
            raise UserError(
                f"{where}.dtype = {dom.dtype!r}: every other id of {f.path} is 0, as when "
                "32-bit ids are read as 16-bit ones; is the dtype right?"
            )

    def scan(self, eos: int, check: Check) -> Scan:
        ends = []
        for a in range(0, self.ids.size, CHUNK_TOKENS):
            chunk = np.asarray(self.ids[a : a + CHUNK_TOKENS])
            check(chunk)
            ends.append(np.flatnonzero(chunk == eos) + (a + 1))
        cut = np.concatenate([np.zeros(1, dtype=np.int64), *ends])
        self.tail = self.ids.size > int(cut[-1])  # a last document without its eos
        if self.tail:
            cut = np.append(cut, self.ids.size)
        lengths = np.diff(cut)
        if self.tail:
            lengths[-1] += 1
        return Scan(lengths)

    def chunks(self, eos: int, check: Check) -> Iterator[np.ndarray]:
        for a in range(0, self.ids.size, CHUNK_TOKENS):
            yield self.ids[a : a + CHUNK_TOKENS]
        if self.tail:
            yield np.array([eos], dtype=np.int64)


class _Arrow:
    """A `datasets` directory or a parquet file with a column of id lists."""

    def __init__(self, f: TokenFile, dom: Any, where: str) -> None:
        self.path, self.where = f.path, where
        self.column = "input_ids" if dom.field == "text" else dom.field

    def _lists(self) -> Iterator[Any]:
        """pyarrow list arrays of the column, batch by batch."""
        pa = sources._optional("pyarrow", self.path)
        if self.path.is_dir():
            datasets = sources._optional("datasets", self.path)
            try:
                loaded = datasets.load_from_disk(str(self.path))
            except Exception as err:
                raise UserError(
                    f"{self.path}: not a readable `datasets` directory ({err})"
                ) from None
            parts = (
                [loaded[k] for k in sorted(loaded)]
                if isinstance(loaded, datasets.DatasetDict)
                else [loaded]
            )
            for ds in parts:
                self._has_column(ds.column_names)
                for table in (
                    ds.select_columns([self.column])
                    .with_format("arrow")
                    .iter(batch_size=BATCH_ROWS)
                ):
                    yield from self._typed(table.column(self.column).chunks, pa)
            return
        pq = sources._optional("pyarrow.parquet", self.path)
        try:
            pf = pq.ParquetFile(str(self.path))
        except Exception as err:
            raise UserError(f"{self.path}: not a readable parquet file ({err})") from None
        self._has_column(pf.schema_arrow.names)
        for batch in pf.iter_batches(batch_size=BATCH_ROWS, columns=[self.column]):
            yield from self._typed([batch.column(0)], pa)

    def _has_column(self, names: list[str]) -> None:
        if self.column not in names:
            raise UserError(
                f"{self.path}: no column {self.column!r} (columns: {names}); set {self.where}.field"
            )

    def _typed(self, arrays: list[Any], pa: Any) -> Iterator[Any]:
        for arr in arrays:
            t = arr.type
            if not (
                (pa.types.is_list(t) or pa.types.is_large_list(t))
                and pa.types.is_integer(t.value_type)
            ):
                raise UserError(
                    f"{self.path}: column {self.column!r} holds {t}, not lists of integer ids"
                )
            yield arr

    def _batches(self, check: Check) -> Iterator[tuple[np.ndarray, np.ndarray, int]]:
        """(ids, ids per kept document, null rows) per batch; empty lists are dropped."""
        for arr in self._lists():
            lengths = arr.value_lengths().fill_null(0).to_numpy(zero_copy_only=False)
            ids = arr.flatten().to_numpy(zero_copy_only=False)
            check(ids)
            yield ids, lengths.astype(np.int64), arr.null_count

    def scan(self, eos: int, check: Check) -> Scan:
        lengths, needs, empty, missing = [], [], 0, 0
        for ids, n, nulls in self._batches(check):
            kept = n[n > 0]
            ends = np.cumsum(kept)
            needs.append(ids[ends - 1] != eos if ends.size else np.zeros(0, dtype=bool))
            lengths.append(kept)
            empty += int((n == 0).sum()) - nulls
            missing += nulls
        self.need = np.concatenate(needs) if needs else np.zeros(0, dtype=bool)
        raw = np.concatenate(lengths) if lengths else np.zeros(0, dtype=np.int64)
        return Scan(raw + self.need, empty=empty, missing=missing)

    def chunks(self, eos: int, check: Check) -> Iterator[np.ndarray]:
        done = 0
        for ids, n, _ in self._batches(check):
            kept = n[n > 0]
            need = self.need[done : done + kept.size]
            done += kept.size
            yield _append_eos(ids, np.cumsum(kept), need, eos)


class Reader(Protocol):
    """One token dataset: `scan` its documents' lengths, then stream its ids."""

    def scan(self, eos: int, check: Check) -> Scan: ...

    def chunks(self, eos: int, check: Check) -> Iterator[np.ndarray]: ...


READERS: dict[str, Callable[[TokenFile, Any, str], Reader]] = {
    "megatron": _Megatron,
    "flat": _Flat,
    "hf-tokens": _Arrow,
}


# -- building a domain -------------------------------------------------------------------


def check_tokenizer(cfg: Config, name: str, tok: tok_mod.Tokenizer) -> tok_mod.Tokenizer:
    """The declared tokenizer of a token domain, refused unless `tok` keeps its ids."""
    dom, key = cfg.domains[name], f"{cfg.source}: domains.{name}.tokenizer"
    declared = tok_mod.load_declared(dom.tokenizer, key)
    conflict = tok_mod.extends(tok, declared)
    if conflict is not None:
        raise UserError(
            f"{key} = {dom.tokenizer!r} is not the run's tokenizer (tokenizer.kind = "
            f"{cfg.tokenizer.kind!r}) nor one it extends: {conflict}"
        )
    return declared


def _id_check(where: str, dom: Any, declared: tok_mod.Tokenizer, path: Path) -> Check:
    vocab = declared.vocab_size

    def check(ids: np.ndarray) -> None:
        if ids.size == 0:
            return
        low, high = int(ids.min()), int(ids.max())
        if low >= 0 and high < vocab:
            return
        bad = high if high >= vocab else low
        key = f"{where}.dtype = {dom.dtype!r}" if dom.format == "flat" else f"{where}.tokenizer"
        raise UserError(
            f"{key}: {path} holds id {bad}, outside the {vocab} ids of "
            f"{where}.tokenizer = {dom.tokenizer!r}; wrong dtype or tokenizer?"
        )

    return check


def build_token_shards(
    cfg: Config,
    name: str,
    files: list[TokenFile],
    directory: Path,
    tok: tok_mod.Tokenizer,
    dtype: np.dtype,
    progress: Any,
) -> tuple[list[sources.FileRecord], int, dict[str, Any]]:
    """Write a token domain's train.bin and heldout.bin from its resolved `files`;
    (file records, tokens, split)."""
    dom, where = cfg.domains[name], f"{cfg.source}: domains.{name}"
    declared = check_tokenizer(cfg, name, tok)
    eos = tok.eos_id
    readers, scans, records = [], [], []
    for f in files:
        reader = READERS[dom.format](f, dom, where)
        scan = reader.scan(eos, _id_check(where, dom, declared, f.path))
        rec = f.record()
        rec.documents, rec.empty_documents, rec.missing_field = (
            int(scan.lengths.size),
            scan.empty,
            scan.missing,
        )
        readers.append(reader)
        scans.append(scan)
        records.append(rec)
        progress.update(1)
    lengths = np.concatenate([s.lengths for s in scans])
    if lengths.size == 0:
        raise UserError(f"{where}.source yielded no documents")
    plan = splitter.plan_split(
        lengths, cfg.data.heldout_fraction, cfg.data.heldout_min_tokens, name
    )
    out = splitter.SplitWriter(directory, dtype, plan)
    try:
        for f, reader in zip(files, readers, strict=True):
            for chunk in reader.chunks(eos, _id_check(where, dom, declared, f.path)):
                out.write(chunk)
        out.commit()
    except BaseException:
        out.abort()
        raise
    total = int(lengths.sum())
    held_docs = int(plan.mask.sum()) if plan.method == "documents" else 1
    train_docs = int(lengths.size - plan.mask.sum()) if plan.method == "documents" else 1
    per_token, sampled = _bytes_per_token(directory, dtype, out.heldout.count, tok)
    split = {
        "method": plan.method,
        "heldout_fraction": cfg.data.heldout_fraction,
        "heldout_min_tokens": cfg.data.heldout_min_tokens,
        "train_documents": train_docs,
        "heldout_documents": held_docs if out.heldout.count else 0,
        "train_tokens": out.train.count,
        "heldout_tokens": out.heldout.count,
        "train_bytes": round(per_token * out.train.count),
        "heldout_bytes": round(per_token * out.heldout.count),
        "bytes_from_tokens": sampled,
    }
    return records, total, split


def _bytes_per_token(
    directory: Path, dtype: np.dtype, held: int, tok: tok_mod.Tokenizer
) -> tuple[float, int]:
    """UTF-8 bytes per id of the first SAMPLE_TOKENS held-out ids (whole documents where
    the sample holds one), decoded; and how many ids were decoded."""
    if held == 0:
        return 0.0, 0
    from rewarm.data import shards

    ids = np.memmap(directory / shards.HELDOUT, dtype=dtype, mode="r", shape=(held,))
    sample = np.asarray(ids[:SAMPLE_TOKENS])
    if sample.size < held:
        ends = np.flatnonzero(sample == tok.eos_id)
        if ends.size:
            sample = sample[: ends[-1] + 1]
    text = tok.decode(sample.tolist())
    return len(text.encode("utf-8")) / sample.size, int(sample.size)
