"""Memory-mapped token shards of one domain: `train.bin`, `heldout.bin`, `manifest.json`.

A shard is a flat array of token ids (uint16 when the vocabulary fits in 16 bits,
else uint32), documents separated by the end-of-document token. Training only
reads them; `rewarm.data.prepare` writes them. Every file is written atomically
(`rewarm.atomic`), the manifest last, so a directory with a manifest always holds
complete shards.
"""

from __future__ import annotations

import contextlib
import json
import mmap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rewarm import atomic
from rewarm.errors import UserError

MANIFEST = "manifest.json"
TRAIN = "train.bin"
HELDOUT = "heldout.bin"
FORMAT_VERSION = 1
_WRITE_TOKENS = 1 << 22  # tokens converted and written at a time


def token_dtype(vocab_size: int) -> np.dtype:
    """uint16 when every id fits in 16 bits (vocab_size <= 65536), else uint32."""
    return np.dtype(np.uint16) if vocab_size <= 2**16 else np.dtype(np.uint32)


@dataclass
class DomainData:
    """One prepared domain: read-only token arrays plus its manifest."""

    name: str
    train: np.ndarray
    """Training tokens, a read-only `np.memmap` (uint16 or uint32)."""
    heldout: np.ndarray
    """Held-out tokens (whole documents never seen in training), read-only memmap."""
    manifest: dict[str, Any]

    @property
    def bytes_per_token_heldout(self) -> float:
        """UTF-8 bytes of held-out text per held-out token (eos tokens included).

        Bits per byte = loss_nats / ln(2) / bytes_per_token_heldout, which compares
        runs with different tokenizers.
        """
        split = self.manifest["split"]
        return split["heldout_bytes"] / max(1, split["heldout_tokens"])

    @property
    def path(self) -> Path:
        return Path(self.manifest.get("_dir", "."))


def _memmap(path: Path, dtype: np.dtype, expected: int) -> np.ndarray:
    size = path.stat().st_size if path.exists() else -1
    if expected == 0 and size <= 0:  # an empty split: no file, or an empty one
        return np.zeros(0, dtype=dtype)
    if size != expected * dtype.itemsize:
        raise UserError(
            f"{path}: expected {expected} tokens ({expected * dtype.itemsize} bytes), "
            f"found {size} bytes; run `rewarm prepare --force`"
        )
    arr = np.memmap(path, dtype=dtype, mode="r", shape=(expected,))
    # Training reads short windows at random offsets: tell the kernel not to read
    # ahead (or map) neighbouring pages, so resident memory follows what is read.
    mm = getattr(arr, "_mmap", None)
    if mm is not None and hasattr(mmap, "MADV_RANDOM"):
        with contextlib.suppress(OSError):  # advice only; some filesystems refuse it
            mm.madvise(mmap.MADV_RANDOM)
    return arr


def read_manifest(directory: str | Path) -> dict[str, Any] | None:
    """The manifest of a domain directory, or None when absent or unreadable."""
    path = Path(directory) / MANIFEST
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def open_domain(directory: str | Path) -> DomainData:
    """Open a prepared domain directory (see module docstring) without reading tokens."""
    directory = Path(directory)
    manifest = read_manifest(directory)
    if manifest is None:
        raise UserError(f"{directory}: no valid {MANIFEST}; run `rewarm prepare CONFIG`")
    if manifest.get("format") != FORMAT_VERSION:
        raise UserError(f"{directory / MANIFEST}: unknown shard format; run `rewarm prepare`")
    try:
        dtype = np.dtype(manifest["dtype"])
        split = manifest["split"]
        counts = int(split["train_tokens"]), int(split["heldout_tokens"])
        name = str(manifest["domain"])
        if dtype not in (np.dtype(np.uint16), np.dtype(np.uint32)) or min(counts) < 0:
            raise ValueError(f"dtype {dtype.name}, token counts {counts}")
    except (KeyError, TypeError, ValueError) as err:
        raise UserError(
            f"{directory / MANIFEST}: malformed manifest ({type(err).__name__}: {err}); "
            "run `rewarm prepare --force`"
        ) from None
    train = _memmap(directory / TRAIN, dtype, counts[0])
    heldout = _memmap(directory / HELDOUT, dtype, counts[1])
    manifest["_dir"] = str(directory)
    return DomainData(name=name, train=train, heldout=heldout, manifest=manifest)


def write_manifest(directory: Path, manifest: dict[str, Any]) -> None:
    clean = {k: v for k, v in manifest.items() if not k.startswith("_")}
    atomic.write_json(directory / MANIFEST, clean, indent=1)


class TokenWriter:
    """Append token arrays to a temporary file; `commit()` renames it into place."""

    def __init__(self, path: Path, dtype: np.dtype) -> None:
        self.path = path
        self.dtype = dtype
        self._out = atomic.AtomicFile(path)
        self.count = 0

    def write(self, tokens: np.ndarray) -> None:
        """Append `tokens` (any integer array, a memmap slice included), converted a
        few million at a time so that a long slice is never copied whole."""
        n = len(tokens)
        for i in range(0, n, _WRITE_TOKENS):
            piece = np.ascontiguousarray(tokens[i : i + _WRITE_TOKENS], dtype=self.dtype)
            self._out.write(piece.data.cast("B"))
        self.count += n

    def commit(self) -> None:
        self._out.commit()

    def abort(self) -> None:
        self._out.abort()
