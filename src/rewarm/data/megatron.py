"""Megatron-LM / GPT-NeoX indexed datasets (`PREFIX.idx` + `PREFIX.bin`), read-only.

The format as Megatron-LM's `megatron/core/datasets/indexed_dataset.py` documents and
writes it (GPT-NeoX and older Megatron write the same bytes); all numbers little-endian:

    9 bytes  magic b"MMIDIDX\\x00\\x00"
    u64      version, 1
    u8       dtype code of the ids in .bin: 1 uint8, 2 int8, 3 int16, 4 int32,
             5 int64, 8 uint16 (6 and 7 are floating point: not token ids)
    u64      S, the number of sequences
    u64      D, the number of entries of the document index (documents + 1)
    i32[S]   sequence lengths, in ids
    i64[S]   sequence pointers: byte offset of each sequence in .bin
    i64[D]   document index: document d is sequences [doc[d], doc[d + 1]), doc[0] = 0
    i8[S]    sequence modes (multimodal datasets only; ignored)

A document is what training must not look across (one source document; Megatron's
`--split-sentences` makes each sentence a sequence of it). Both files are memory
mapped; nothing is read until asked for. Every writer lays the sequences out back
to back, so the ids of documents [i, j) are one slice of .bin; a dataset whose
pointers leave gaps is refused rather than read slowly.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rewarm.errors import UserError

MAGIC = b"MMIDIDX\x00\x00"
HEADER = struct.Struct("<9sQBQQ")  # magic, version, dtype code, S, D: 34 bytes
DTYPES: dict[int, np.dtype] = {
    1: np.dtype(np.uint8),
    2: np.dtype(np.int8),
    3: np.dtype(np.int16),
    4: np.dtype(np.int32),
    5: np.dtype(np.int64),
    8: np.dtype(np.uint16),
}


def prefix_of(path: Path) -> Path:
    """`data/x` for `data/x`, `data/x.bin` or `data/x.idx`."""
    return path.with_suffix("") if path.suffix in (".bin", ".idx") else path


@dataclass
class IndexedDataset:
    """One dataset: `ids` (the whole .bin as a read-only memmap) and its index."""

    prefix: Path
    dtype: np.dtype
    sequence_lengths: np.ndarray
    """int32 (S,): ids per sequence."""
    sequence_pointers: np.ndarray
    """int64 (S,): byte offset of each sequence in .bin."""
    document_index: np.ndarray
    """int64 (documents + 1,): document d is sequences [doc[d], doc[d + 1])."""
    ids: np.ndarray

    @property
    def documents(self) -> int:
        return int(self.document_index.size - 1)

    def document_lengths(self) -> np.ndarray:
        """int64 (documents,): ids per document (the sum of its sequences)."""
        cum = np.zeros(self.sequence_lengths.size + 1, dtype=np.int64)
        np.cumsum(self.sequence_lengths, out=cum[1:])
        return cum[self.document_index[1:]] - cum[self.document_index[:-1]]

    def first_id(self) -> int:
        """Position in `ids` of the first sequence's first id."""
        if self.sequence_pointers.size == 0:
            return 0
        return int(self.sequence_pointers[0]) // self.dtype.itemsize

    def document(self, d: int) -> np.ndarray:
        """The ids of document d (a view into .bin)."""
        lengths = self.document_lengths()
        start = self.first_id() + int(lengths[:d].sum())
        return self.ids[start : start + int(lengths[d])]


def _fail(path: Path, what: str) -> UserError:
    return UserError(f"{path}: not a Megatron indexed dataset ({what})")


def open_indexed(prefix: Path) -> IndexedDataset:
    """Open PREFIX.idx and PREFIX.bin; `UserError` naming the file on any inconsistency."""
    idx, bin_path = prefix.with_name(prefix.name + ".idx"), prefix.with_name(prefix.name + ".bin")
    for p in (idx, bin_path):
        if not p.is_file():
            raise UserError(f"{p}: no such file (a Megatron dataset is PREFIX.idx + PREFIX.bin)")
    size = idx.stat().st_size
    with idx.open("rb") as f:
        head = f.read(HEADER.size)
    if len(head) < HEADER.size:
        raise _fail(idx, f"{size} bytes, shorter than its header")
    magic, version, code, n_seq, n_doc = HEADER.unpack(head)
    if magic != MAGIC:
        raise _fail(idx, f"magic {magic!r}, expected {MAGIC!r}")
    if version != 1:
        raise _fail(idx, f"version {version}, only 1 is known")
    if code not in DTYPES:
        kind = "floating point" if code in (6, 7) else "unknown"
        raise _fail(idx, f"dtype code {code} is {kind}, not integer token ids")
    body = 12 * n_seq + 8 * n_doc  # lengths (i32) + pointers (i64) + document index (i64)
    if size not in (HEADER.size + body, HEADER.size + body + n_seq):
        raise _fail(
            idx,
            f"{size} bytes, but {n_seq} sequences and {n_doc} index entries need "
            f"{HEADER.size + body}",
        )
    raw = np.memmap(idx, dtype=np.uint8, mode="r")
    off = HEADER.size
    lengths = raw[off : off + 4 * n_seq].view(np.int32)
    off += 4 * n_seq
    pointers = raw[off : off + 8 * n_seq].view(np.int64)
    off += 8 * n_seq
    doc_index = raw[off : off + 8 * n_doc].view(np.int64)
    dtype = DTYPES[code]
    raw_ids = np.memmap(bin_path, dtype=np.uint8, mode="r")
    ids = raw_ids[: raw_ids.size - raw_ids.size % dtype.itemsize].view(dtype)
    data = IndexedDataset(prefix, dtype, lengths, pointers, doc_index, ids)
    _check(data, idx, bin_path)
    return data


def _check(data: IndexedDataset, idx: Path, bin_path: Path) -> None:
    doc, lengths, pointers = data.document_index, data.sequence_lengths, data.sequence_pointers
    n_seq = lengths.size
    if doc.size == 0 or doc[0] != 0 or doc[-1] != n_seq or np.any(np.diff(doc) < 0):
        raise _fail(idx, f"the document index must rise from 0 to {n_seq} sequences")
    if n_seq and (lengths.min() < 0):
        raise _fail(idx, "a sequence length is negative")
    item = data.dtype.itemsize
    expected = pointers[0] + item * (np.cumsum(lengths, dtype=np.int64) - lengths) if n_seq else 0
    if n_seq and (pointers[0] % item or not np.array_equal(pointers, expected)):
        raise UserError(
            f"{idx}: sequences are not stored back to back in {bin_path.name}; "
            "only contiguous datasets (as every Megatron and GPT-NeoX writer makes) are read"
        )
    end = data.first_id() + int(lengths.sum(dtype=np.int64))
    if end > data.ids.size:
        raise UserError(
            f"{bin_path}: holds {data.ids.size} ids of {data.dtype.name}, but {idx.name} "
            f"indexes {end}; the two files do not belong together"
        )
