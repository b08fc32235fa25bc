"""Resumable, parallel tokenization of a text domain into part files.

A domain's files are cut into units of about a quarter of a worker's share of the
domain, between `MIN_UNIT_BYTES` and `UNIT_BYTES` (so that the last units leave
little idle time, and a unit's overhead stays small): consecutive small files
together, a large .jsonl file by byte ranges (whole lines), a large .parquet file by
row groups; a text file, a `datasets` directory and a built-in corpus file are never
cut. Worker processes (`data.workers`) read a unit's documents, encode them in
batches with the fast tokenizer's batch API (`tokenizer.BackendTokenizer.encode_batch`,
one thread each) and write, under
`data_dir/NAME/parts/`, each file atomically:

    u000007-0.bin   the unit's ids, every document followed by the end-of-document id
    u000007-0.npy   int64 (documents, 2): ids (eos included) and UTF-8 bytes of each
    u000007-0.json  last, so its presence means the unit is complete: the unit, the
                    byte limit it was read with, its file records, totals and the
                    fingerprint of the domain's inputs

(the number after the dash is the byte limit; 0 = the whole unit). A prepare that was
interrupted, even by SIGKILL, finds the units whose record names the same fingerprint
and does not redo them. Units are used in order and each is a pure function of its
files, so the result is the same bytes whatever the number of processes and wherever
an interruption fell.

`domains.NAME.max_bytes` is applied in order: units are tokenized whole ahead of
time; the unit at which the budget runs out is read again with what is left of the
budget as its limit, and later units are not used (`sources.read_documents` applies
the budget the same way to one unit as to the whole file list).

Memory: a unit's text and ids in each worker; the main process keeps a summary per
unit, never the documents.
"""

from __future__ import annotations

import io
import json
import multiprocessing
import os
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from rewarm import atomic
from rewarm.data import shards, sources
from rewarm.data import tokenizer as tok_mod

UNIT_BYTES = 4 << 20  # text per unit, at most
MIN_UNIT_BYTES = 1 << 20  # ... and at least, unless UNIT_BYTES is smaller
BATCH_BYTES = 1 << 20  # text per batch encode call
PARTS = "parts"


@dataclass(frozen=True)
class Unit:
    """Pieces of the domain's file list: (file index, start, stop) as in `SourceFile`."""

    index: int
    pieces: tuple[tuple[int, int, int], ...]
    size: int
    """Bytes on disk it covers (for progress)."""

    @property
    def stem(self) -> str:
        return f"u{self.index:06d}"


@dataclass(frozen=True)
class Done:
    """A tokenized unit, as its record describes it."""

    unit: int
    limit: int
    stem: str
    documents: int
    tokens: int
    bytes: int
    records: list[dict[str, Any]]


def source_bytes(files: list[sources.SourceFile]) -> int:
    """Bytes on disk of a domain's files (what the units cover)."""
    return sum(_size(f) for f in files)


def _size(f: sources.SourceFile) -> int:
    if f.path.is_dir():
        return sum(p.stat().st_size for p in f.path.rglob("*") if p.is_file())
    return f.path.stat().st_size


def _parquet_cuts(path: Path, unit_bytes: int) -> list[tuple[int, int]]:
    """Row-group ranges of about `unit_bytes` (uncompressed) each."""
    pq = sources._optional("pyarrow.parquet", path)
    meta = pq.ParquetFile(str(path)).metadata
    cuts, first, size = [], 0, 0
    for i in range(meta.num_row_groups):
        size += meta.row_group(i).total_byte_size
        if size >= unit_bytes:
            cuts.append((first, i + 1))
            first, size = i + 1, 0
    if first < meta.num_row_groups or not cuts:
        cuts.append((first, meta.num_row_groups))
    return cuts


def plan_units(files: list[sources.SourceFile], unit_bytes: int) -> list[Unit]:
    """The units of a file list, in order (a pure function of the files and sizes)."""
    units: list[Unit] = []
    group: list[tuple[int, int, int]] = []
    group_size = 0

    def add(pieces: list[tuple[int, int, int]], size: int) -> None:
        units.append(Unit(len(units), tuple(pieces), size))

    for i, f in enumerate(files):
        size = _size(f)
        cuts: list[tuple[int, int]] = []
        if size > unit_bytes and f.kind == "jsonl":
            cuts = [(a, min(a + unit_bytes, size)) for a in range(0, size, unit_bytes)]
        elif size > unit_bytes and f.kind == "parquet":
            cuts = _parquet_cuts(f.path, unit_bytes)
        if len(cuts) > 1:
            if group:
                add(group, group_size)
                group, group_size = [], 0
            for a, b in cuts:
                add([(i, a, b)], size // len(cuts))
            continue
        if group and group_size + size > unit_bytes:
            add(group, group_size)
            group, group_size = [], 0
        group.append((i, 0, -1))
        group_size += size
    if group:
        add(group, group_size)
    return units


# -- one unit (runs in a worker process, or in the main one) ----------------------------

_WORKER_TOKENIZER: list[tok_mod.Tokenizer] = []


def _init_worker(spec: tuple[Any, ...]) -> None:
    # The processes are the parallelism: the fast tokenizer encodes on one thread each.
    os.environ["TOKENIZERS_PARALLELISM"] = "false"
    _WORKER_TOKENIZER[:] = [tok_mod.from_portable(spec)]


def _context() -> Any:
    """Workers forked from a fork server (spawned where there is none): not forked from
    the caller, so they share none of a training process's threads or torch pages, and
    start from the server, which imported the caller's `__main__` once. As for any
    multiprocessing that does not fork the caller, a script that calls `prepare` with
    more than one worker needs the `if __name__ == "__main__":` guard."""
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")


@dataclass(frozen=True)
class Task:
    """What a worker needs for one unit (only its own files travel)."""

    unit: Unit
    limit: int
    files: tuple[sources.SourceFile, ...]
    """The unit's pieces, each file with its `start` and `stop`."""
    field: str
    directory: Path
    dtype: str
    eos: int
    fingerprint: str


def run_unit(task: Task, tok: tok_mod.Tokenizer | None = None) -> Done:
    """Read, encode and write one unit; its record last."""
    tok = tok if tok is not None else _WORKER_TOKENIZER[0]
    unit, name = task.unit, f"{task.unit.stem}-{task.limit}"
    files = list(task.files)
    records: list[sources.FileRecord] = []
    sizes: list[np.ndarray] = []
    out = shards.TokenWriter(task.directory / f"{name}.bin", np.dtype(task.dtype))
    eos = np.array([task.eos], dtype=np.int64)

    def flush(batch: list[str]) -> None:
        encoded = tok.encode_batch(batch)
        pieces = [p for ids in encoded for p in (np.asarray(ids, dtype=np.int64), eos)]
        out.write(np.concatenate(pieces))
        lengths = np.fromiter((len(ids) + 1 for ids in encoded), np.int64, len(encoded))
        nbytes = np.fromiter((len(t.encode("utf-8")) for t in batch), np.int64, len(batch))
        sizes.append(np.stack([lengths, nbytes], axis=1))

    try:
        batch: list[str] = []
        size = 0
        for text in sources.read_documents(files, task.field, task.limit, records):
            batch.append(text)
            size += len(text)
            if size >= BATCH_BYTES:
                flush(batch)
                batch, size = [], 0
        if batch:
            flush(batch)
        out.commit()
    except BaseException:
        out.abort()
        raise
    docs = np.concatenate(sizes) if sizes else np.zeros((0, 2), dtype=np.int64)
    buf = io.BytesIO()
    np.save(buf, docs)
    atomic.write_bytes(task.directory / f"{name}.npy", buf.getvalue())
    done = Done(
        unit=unit.index,
        limit=task.limit,
        stem=name,
        documents=int(docs.shape[0]),
        tokens=int(docs[:, 0].sum()),
        bytes=int(docs[:, 1].sum()),
        records=[r.to_dict() for r in records],
    )
    record = {"fingerprint": task.fingerprint, "pieces": [list(p) for p in unit.pieces]}
    atomic.write_json(task.directory / f"{name}.json", {**record, **done.__dict__})
    return done


def _load(
    directory: Path, unit: Unit, limit: int, fingerprint: str, dtype: np.dtype
) -> Done | None:
    """The unit's record if it is complete and was made from the same inputs."""
    name = f"{unit.stem}-{limit}"
    try:
        rec = json.loads((directory / f"{name}.json").read_text())
        done = Done(**{k: rec[k] for k in Done.__dataclass_fields__})
        ok = (
            rec["fingerprint"] == fingerprint
            and [tuple(p) for p in rec["pieces"]] == list(unit.pieces)
            and (directory / f"{name}.bin").stat().st_size == done.tokens * dtype.itemsize
            and (directory / f"{name}.npy").is_file()
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return done if ok else None


# -- the domain ---------------------------------------------------------------------------


class _Later:
    """A unit that runs in this process when its result is asked for."""

    def __init__(self, run: Callable[[], Done]) -> None:
        self.run = run

    def result(self) -> Done:
        return self.run()

    def cancel(self) -> bool:
        return True


class _Inline:
    """The executor of one process (no workers to start)."""

    def __init__(self, tok: tok_mod.Tokenizer) -> None:
        self.tok = tok

    def submit(self, fn: Callable[[Task, tok_mod.Tokenizer], Done], task: Task) -> _Later:
        return _Later(lambda: fn(task, self.tok))

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        pass


def unit_size(files: list[sources.SourceFile], workers: int) -> int:
    """Bytes per unit: a quarter of each worker's share, within the bounds above. The
    shards do not depend on it (documents are encoded one by one, files cut at line
    starts), only which units an interrupted prepare can reuse."""
    share = source_bytes(files) // (4 * processes(workers, 1 << 30))
    return min(UNIT_BYTES, max(MIN_UNIT_BYTES, share))


def processes(workers: int, units: int) -> int:
    """Worker processes for `units` units: `data.workers` (0 = every core), at most one
    per unit; 1 means the main process tokenizes (with the tokenizer's own threads)."""
    cores = workers if workers > 0 else (os.cpu_count() or 1)
    return max(1, min(cores, units))


def tokenize(
    *,
    files: list[sources.SourceFile],
    field: str,
    max_bytes: int,
    directory: Path,
    tok: tok_mod.Tokenizer,
    dtype: np.dtype,
    fingerprint: str,
    workers: int,
    on_unit: Callable[[Done, int], None] = lambda done, size: None,
    unit_bytes: int | None = None,
) -> tuple[list[Done], int]:
    """Tokenize a domain's files into part files under `directory`; the units to use, in
    order, and how many were reused from an earlier, interrupted prepare."""
    directory.mkdir(parents=True, exist_ok=True)
    atomic.remove_stale(directory, only_dead=True)  # temporaries of killed writers
    units = plan_units(files, unit_bytes or unit_size(files, workers))

    def task(unit: Unit, limit: int) -> Task:
        pieces = tuple(replace(files[i], start=a, stop=b) for i, a, b in unit.pieces)
        return Task(unit, limit, pieces, field, directory, dtype.name, tok.eos_id, fingerprint)

    def load(unit: Unit, limit: int) -> Done | None:
        return _load(directory, unit, limit, fingerprint, dtype)

    todo = [u for u in units if load(u, 0) is None]
    n_proc = processes(workers, len(todo))
    executor: Any = _Inline(tok)
    if n_proc > 1:
        executor = ProcessPoolExecutor(
            n_proc, mp_context=_context(), initializer=_init_worker, initargs=(tok.portable(),)
        )
    return _run(units, executor, n_proc, task, load, max_bytes, tok, on_unit)


def _run(
    units: list[Unit],
    executor: Any,
    n_proc: int,
    task: Callable[[Unit, int], Task],
    load: Callable[[Unit, int], Done | None],
    max_bytes: int,
    tok: tok_mod.Tokenizer,
    on_unit: Callable[[Done, int], None],
) -> tuple[list[Done], int]:
    """Use the units in order. Without a byte budget every unit is queued at once, so
    that a worker never waits for a slower one's unit to be used before it gets more
    work; with one, up to 2 x n_proc units run ahead of the one being used (see the
    module docstring for the budget)."""
    window = 2 * n_proc if max_bytes else len(units)
    pending: dict[int, Future | _Later] = {}
    used: list[Done] = []
    reused, total, ahead = 0, 0, 0
    try:
        for unit in units:
            if max_bytes and total >= max_bytes:
                break
            while ahead < len(units) and ahead - unit.index < window:
                if load(units[ahead], 0) is None:
                    pending[ahead] = executor.submit(run_unit, task(units[ahead], 0))
                ahead += 1
            fut = pending.pop(unit.index, None)
            done = fut.result() if fut is not None else load(unit, 0)
            reused += fut is None
            assert done is not None
            if max_bytes and total + done.bytes >= max_bytes:
                limit = max_bytes - total
                cut = load(unit, limit)
                done = cut if cut is not None else run_unit(task(unit, limit), tok)
            used.append(done)
            total += done.bytes
            on_unit(done, unit.size)
    finally:
        for fut in pending.values():
            fut.cancel()
        executor.shutdown(wait=True, cancel_futures=True)
    return used, reused


def documents(directory: Path, used: list[Done]) -> np.ndarray:
    """int64 (documents, 2): ids and bytes of every document of the used units."""
    arrays = [np.load(directory / f"{d.stem}.npy") for d in used]
    return np.concatenate(arrays) if arrays else np.zeros((0, 2), dtype=np.int64)


def token_chunks(directory: Path, used: list[Done], dtype: np.dtype, chunk: int) -> Any:
    """The used units' ids in order, as memmap slices of at most `chunk` ids."""
    for d in used:
        if d.tokens == 0:
            continue
        ids = np.memmap(directory / f"{d.stem}.bin", dtype=dtype, mode="r", shape=(d.tokens,))
        for a in range(0, d.tokens, chunk):
            yield ids[a : a + chunk]
        del ids
