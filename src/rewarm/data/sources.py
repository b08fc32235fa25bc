"""Domain sources: resolve a `domains.NAME.source` to files and read their documents.

Source kinds (a source is one string or an array of them, read in the given order):

- a path to a text file of any extension: the whole file is one document;
- a directory: every file below it, recursively, in sorted path order (hidden
  entries and `__pycache__` are not visited); `.jsonl` and `.parquet` files are read
  as such, any other file as text; a directory saved by `datasets`
  (`save_to_disk`) is read as a dataset;
- a glob (`data/**/*.md`), expanded in sorted order;
- `.jsonl`: one JSON object per line, the document in `field`;
- `.parquet`: the column `field` (via pyarrow);
- built-ins `python-docs` and `python-code` (see `rewarm.data.builtin`).

Nothing is dropped without a count: per file, the manifest records documents,
bytes, undecodable bytes (replaced by U+FFFD), empty documents, records whose
field is null, and files skipped as binary (they contain NUL bytes) or as
unparseable Python (built-ins). Missing files, a jsonl line that is not JSON or
lacks the field, and unreadable parquet or dataset directories are `UserError`s.
"""

from __future__ import annotations

import glob
import hashlib
import importlib
import json
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import rewarm.data.builtin as builtin
from rewarm.errors import UserError

_SURROGATE = re.compile("[\udc80-\udcff]")
_GLOB_CHARS = set("*?[")
_DATASET_MARKERS = ("dataset_info.json", "dataset_dict.json", "state.json")


@dataclass(frozen=True)
class SourceFile:
    path: Path
    kind: str  # text | jsonl | parquet | datasets | pydoc-topics | docstrings
    start: int = 0
    """A part of the file only (`rewarm.data.parts`): for .jsonl the lines that start at
    byte offsets [start, stop), for .parquet the row groups [start, stop)."""
    stop: int = -1
    """-1: to the end. A part's record leaves `size` and `sha256` to the whole file's."""

    @property
    def whole(self) -> bool:
        return self.start == 0 and self.stop < 0


@dataclass
class FileRecord:
    """What was read from one file; one entry of the manifest's `files`."""

    path: str
    kind: str
    size: int = 0
    sha256: str = ""
    documents: int = 0
    bytes: int = 0
    undecodable_bytes: int = 0
    empty_documents: int = 0
    missing_field: int = 0
    skipped: str = ""
    truncated: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _kind_of(path: Path) -> str:
    if path.is_dir():
        return "datasets"
    suffix = path.suffix.lower()
    return {".jsonl": "jsonl", ".parquet": "parquet"}.get(suffix, "text")


def _walk(root: Path) -> list[Path]:
    if any((root / m).exists() for m in _DATASET_MARKERS):
        return [root]
    out: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and d != "__pycache__")
        out.extend(Path(dirpath) / f for f in sorted(filenames) if not f.startswith("."))
    return sorted(out, key=lambda p: p.as_posix())


def resolve(source: str | list[str], where: str) -> list[SourceFile]:
    """Files of a source spec in deterministic order; `where` names the config key."""
    specs = [source] if isinstance(source, str) else list(source)
    files: list[SourceFile] = []
    seen: set[Path] = set()
    for spec in specs:
        if spec in builtin.CORPORA:
            for p, kind in builtin.files(spec):
                if p not in seen:
                    seen.add(p)
                    files.append(SourceFile(p, kind))
            continue
        if _GLOB_CHARS & set(spec):
            matches = sorted(glob.glob(spec, recursive=True))
            if not matches:
                raise UserError(f"{where}: {spec!r} matches no file")
            paths = [
                q for m in matches for q in (_walk(Path(m)) if Path(m).is_dir() else [Path(m)])
            ]
        else:
            p = Path(spec)
            if not p.exists():
                raise UserError(f"{where}: {spec!r}: no such file or directory")
            paths = _walk(p) if p.is_dir() else [p]
        for p in paths:
            if p not in seen:
                seen.add(p)
                files.append(SourceFile(p, _kind_of(p)))
    if not files:
        raise UserError(f"{where}: no files found in {specs}")
    return files


def stat_list(files: list[SourceFile]) -> list[list[Any]]:
    """Source stamps: (path, kind, size, mtime_ns) per file, cheap to take; a changed
    file changes them and so the inputs digest of its domain's shards."""
    out = []
    for f in files:
        paths = sorted(f.path.rglob("*")) if f.path.is_dir() else [f.path]
        size = mtime = 0
        for p in paths:
            if p.is_file():
                st = p.stat()
                size += st.st_size
                mtime = max(mtime, st.st_mtime_ns)
        out.append([f.path.as_posix(), f.kind, size, mtime])
    return out


def decode(data: bytes) -> tuple[str, int]:
    """UTF-8 text and the number of undecodable bytes (each replaced by U+FFFD)."""
    try:
        return data.decode("utf-8"), 0
    except UnicodeDecodeError:
        text = data.decode("utf-8", "surrogateescape")
        bad = len(_SURROGATE.findall(text))
        return _SURROGATE.sub("\ufffd", text), bad


def _read_text(f: SourceFile, rec: FileRecord) -> Iterator[str]:
    data = f.path.read_bytes()
    rec.size, rec.sha256 = len(data), hashlib.sha256(data).hexdigest()
    if b"\x00" in data:
        rec.skipped = "binary (contains NUL bytes)"
        return
    text, rec.undecodable_bytes = decode(data)
    yield text


def _read_builtin(f: SourceFile, rec: FileRecord) -> Iterator[str]:
    """A built-in corpus file (`rewarm.data.builtin`): the documentation topics, or the
    docstrings of one standard-library module joined as one document."""
    data = f.path.read_bytes()
    rec.size, rec.sha256 = len(data), hashlib.sha256(data).hexdigest()
    if f.kind == "pydoc-topics":
        yield from builtin.topics()
        return
    text, rec.undecodable_bytes = decode(data)
    try:
        docs = builtin.docstrings(text)
    except (SyntaxError, ValueError):
        rec.skipped = "not parseable Python"
        return
    if not docs:
        rec.empty_documents += 1
        return
    yield "\n\n".join(docs)


def _jsonl_range(f: SourceFile) -> tuple[bytes, int]:
    """The bytes of the lines of `f` that start in [start, stop), and the offset of the
    first of them."""
    with f.path.open("rb") as fh:
        if f.start > 0:
            fh.seek(f.start - 1)
            if fh.read(1) != b"\n":
                fh.readline()  # mid-line: that line belongs to the previous part
        first = fh.tell()
        if 0 <= f.stop <= first:
            return b"", first
        data = fh.read(-1 if f.stop < 0 else f.stop - first)
        if data and not data.endswith(b"\n"):
            data += fh.readline()  # the last line started before `stop`
    return data, first


def _line_of(path: Path, offset: int) -> int:
    """1-based number of the line starting at byte `offset` (read only for a message)."""
    with path.open("rb") as fh:
        return 1 + fh.read(offset).count(b"\n")


def _jsonl_lines(f: SourceFile, rec: FileRecord) -> Iterator[tuple[bytes, int]]:
    """(line, byte offset) of `f`'s lines; a whole file is streamed in 8 MiB blocks and
    hashed on the way (its `size` and `sha256` are set once it has been read to the end)."""
    if not f.whole:
        data, offset = _jsonl_range(f)
        for raw in data.split(b"\n"):
            yield raw, offset
            offset += len(raw) + 1
        return
    digest, size, offset, rest = hashlib.sha256(), 0, 0, b""
    with f.path.open("rb") as fh:
        while block := fh.read(1 << 23):
            digest.update(block)
            size += len(block)
            lines = (rest + block).split(b"\n")
            rest = lines.pop()
            for raw in lines:
                yield raw, offset
                offset += len(raw) + 1
    yield rest, offset
    rec.size, rec.sha256 = size, digest.hexdigest()


def _read_jsonl(f: SourceFile, rec: FileRecord, field: str) -> Iterator[str]:
    for raw, start in _jsonl_lines(f, rec):
        if not raw.strip():
            continue
        line, bad = decode(raw)
        rec.undecodable_bytes += bad
        try:
            obj = json.loads(line)
        except ValueError:
            lineno = _line_of(f.path, start)
            raise UserError(f"{f.path}:{lineno}: not a valid JSON line") from None
        if not isinstance(obj, dict) or field not in obj:
            lineno = _line_of(f.path, start)
            raise UserError(f"{f.path}:{lineno}: record has no field {field!r}")
        value = obj[field]
        if value is None:
            rec.missing_field += 1
            continue
        if not isinstance(value, str):
            lineno = _line_of(f.path, start)
            raise UserError(f"{f.path}:{lineno}: field {field!r} is not a string")
        yield value


def _column_values(values: list[Any], rec: FileRecord, where: str) -> Iterator[str]:
    for v in values:
        if v is None:
            rec.missing_field += 1
        elif isinstance(v, str):
            yield v
        else:
            raise UserError(f"{where}: column values must be strings, got {type(v).__name__}")


def _optional(module: str, path: Path) -> ModuleType:
    """Import an optional reader, or say in one line how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise UserError(
            f"{path}: reading this source needs the {module.split('.')[0]!r} package "
            "(pip install 'rewarm[data]')"
        ) from None


def _read_parquet(f: SourceFile, rec: FileRecord, field: str) -> Iterator[str]:
    pq = _optional("pyarrow.parquet", f.path)

    if f.whole:
        data = f.path.read_bytes()
        rec.size, rec.sha256 = len(data), hashlib.sha256(data).hexdigest()
    try:
        pf = pq.ParquetFile(str(f.path))
    except Exception as err:  # pyarrow raises ArrowInvalid, OSError, ...
        raise UserError(f"{f.path}: not a readable parquet file ({err})") from None
    if field not in pf.schema_arrow.names:
        raise UserError(f"{f.path}: no column {field!r} (columns: {pf.schema_arrow.names})")
    stop = pf.num_row_groups if f.stop < 0 else min(f.stop, pf.num_row_groups)
    for i in range(f.start, stop):
        try:
            values = pf.read_row_group(i, columns=[field]).column(field).to_pylist()
        except Exception as err:
            raise UserError(f"{f.path}: row group {i} is unreadable ({err})") from None
        yield from _column_values(values, rec, f"{f.path}: column {field!r}")


def _read_datasets(f: SourceFile, rec: FileRecord, field: str) -> Iterator[str]:
    datasets = _optional("datasets", f.path)

    digest = hashlib.sha256()
    for p in sorted(f.path.rglob("*")):
        if p.is_file():
            data = p.read_bytes()
            rec.size += len(data)
            digest.update(p.relative_to(f.path).as_posix().encode() + b"\0" + data)
    rec.sha256 = digest.hexdigest()
    try:
        loaded = datasets.load_from_disk(str(f.path))
    except Exception as err:
        raise UserError(f"{f.path}: not a readable `datasets` directory ({err})") from None
    parts = (
        [loaded[k] for k in sorted(loaded)]
        if isinstance(loaded, datasets.DatasetDict)
        else [loaded]
    )
    for ds in parts:
        if field not in ds.column_names:
            raise UserError(f"{f.path}: no column {field!r} (columns: {ds.column_names})")
        for batch in ds.select_columns([field]).iter(batch_size=1024):
            yield from _column_values(batch[field], rec, f"{f.path}: column {field!r}")


def _documents_of(f: SourceFile, rec: FileRecord, field: str) -> Iterator[str]:
    if f.kind == "text":
        return _read_text(f, rec)
    if f.kind == "jsonl":
        return _read_jsonl(f, rec, field)
    if f.kind == "parquet":
        return _read_parquet(f, rec, field)
    if f.kind == "datasets":
        return _read_datasets(f, rec, field)
    return _read_builtin(f, rec)


def read_documents(
    files: list[SourceFile],
    field: str,
    max_bytes: int,
    records: list[FileRecord],
    on_file: Callable[[FileRecord], None] | None = None,
) -> Iterator[str]:
    """Yield the non-empty documents of `files`, at most `max_bytes` UTF-8 bytes in all.

    Appends one FileRecord per file read to `records` (files after the byte budget
    is spent are not read). The last document is cut at the budget (`truncated`).
    """
    total = 0
    for f in files:
        if max_bytes and total >= max_bytes:
            break
        rec = FileRecord(path=f.path.as_posix(), kind=f.kind)
        records.append(rec)
        for text in _documents_of(f, rec, field):
            if not text.strip():
                rec.empty_documents += 1
                continue
            size = len(text.encode("utf-8"))
            if max_bytes and total + size > max_bytes:
                cut = text.encode("utf-8")[: max_bytes - total]
                text = cut.decode("utf-8", "ignore")
                size = len(text.encode("utf-8"))
                rec.truncated = True
            if text:
                rec.documents += 1
                rec.bytes += size
                total += size
                yield text
            if max_bytes and total >= max_bytes:
                rec.truncated = True
                break
        if on_file is not None:
            on_file(rec)
