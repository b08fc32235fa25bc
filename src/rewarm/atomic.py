"""Atomic writes: a reader (or a process killed mid-write) sees the old file or the
new one, never a torn one.

Every writer in rewarm goes through this module. A file is written to a temporary
name in the same directory, flushed and fsynced, renamed over the target
(`os.replace`, atomic on POSIX), and the directory is fsynced so the rename itself
survives a power cut. The temporary file is created with `os.open(..., 0o666)`, so
the kernel applies the umask: the result has the mode a plain `open(path, "w")`
would give (0666 & ~umask), not `tempfile.mkstemp`'s 0600, which would hide shared
data shards and fitted laws from other users of a group directory.

`directory(path)` is the same for a whole directory: build it under a temporary
sibling, then swap it in (the previous one, if any, is renamed aside first and
removed after, so `path` is missing only between two renames).

Temporary names carry the writer's process id: `.NAME.PID-HEX.tmp` for files,
`.tmp-NAME-PID` and `.old-NAME-PID` for directories. `remove_stale(parent)` deletes
those another (dead) process left behind; callers that own a directory exclusively
(checkpoints, under the run lock) call it.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import IO, Any

_STALE = re.compile(r"^(?:\.tmp-.+-(\d+)|\.old-.+-(\d+)|\..+\.(\d+)-[0-9a-f]+\.tmp)$")


def _fsync_dir(path: Path) -> None:
    """Persist the entries of directory `path` (a rename is only durable after this)."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    except OSError:  # some filesystems (and platforms) refuse fsync on a directory
        pass
    finally:
        os.close(fd)


class AtomicFile:
    """A binary file that appears at `path` only on `commit()`.

    Usable as a context manager (commit on success, abort on an exception) or by
    hand (`write` ... `commit()` or `abort()`), for writers that stream.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = self.path.with_name(
            f".{self.path.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp"
        )
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
        fd = os.open(self.tmp, flags, 0o666)  # the umask applies, as for open(path, "w")
        self.file: IO[bytes] = os.fdopen(fd, "wb")

    def write(self, data: bytes | memoryview) -> int:
        return self.file.write(data)

    def commit(self) -> Path:
        """Flush, fsync, rename into place, fsync the directory; returns `path`."""
        try:
            self.file.flush()
            os.fsync(self.file.fileno())
            self.file.close()
            os.replace(self.tmp, self.path)
        except BaseException:
            self.abort()
            raise
        _fsync_dir(self.path.parent)
        return self.path

    def abort(self) -> None:
        """Drop the temporary file; `path` keeps whatever it held before."""
        if not self.file.closed:
            self.file.close()
        self.tmp.unlink(missing_ok=True)

    def __enter__(self) -> AtomicFile:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        err: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if kind is None:
            self.commit()
        else:
            self.abort()


def write_bytes(path: str | Path, data: bytes) -> Path:
    """Replace `path` with `data` atomically (creating parent directories); returns it."""
    with AtomicFile(path) as f:
        f.write(data)
    return Path(path)


def write_text(path: str | Path, text: str) -> Path:
    """`write_bytes` of `text` encoded as UTF-8."""
    return write_bytes(path, text.encode("utf-8"))


def write_json(
    path: str | Path, obj: Any, *, indent: int | None = None, sort_keys: bool = False
) -> Path:
    """`obj` as JSON (`json.dumps` with these options) plus a final newline."""
    return write_text(path, json.dumps(obj, indent=indent, sort_keys=sort_keys) + "\n")


def _sync_tree(root: Path) -> None:
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            fd = os.open(Path(dirpath) / name, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        _fsync_dir(Path(dirpath))


@contextlib.contextmanager
def directory(path: str | Path) -> Iterator[Path]:
    """Build a directory under a temporary sibling (yielded, empty); on success every
    file in it is fsynced and it replaces `path`. On an exception it is removed and
    `path` is left as it was."""
    path = Path(path)
    tmp = path.with_name(f".tmp-{path.name}-{os.getpid()}")
    if tmp.exists():
        shutil.rmtree(tmp)
    try:
        tmp.mkdir()  # 0777 & ~umask, like any directory the user creates
        yield tmp
        _sync_tree(tmp)
        if path.exists():
            old = path.with_name(f".old-{path.name}-{os.getpid()}")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _fsync_dir(path.parent)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def remove_stale(parent: str | Path, *, only_dead: bool = False) -> None:
    """Delete the temporary files and directories other processes left in `parent`;
    with `only_dead`, only those of processes that no longer run (for directories
    that writers share without a lock, such as prepared data)."""
    for entry in Path(parent).iterdir():
        found = _STALE.match(entry.name)
        if found is None:
            continue
        pid = int(next(g for g in found.groups() if g))
        if pid == os.getpid() or (only_dead and _alive(pid)):
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
