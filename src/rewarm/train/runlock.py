"""One training process per run directory: `runs/NAME/run.lock`.

The lock is an advisory `fcntl.flock` on `run.lock`, held for the whole run by
the process that writes checkpoints (rank 0). The kernel drops a flock when its
holder dies, however it dies (SIGKILL, OOM, power loss of a local disk), so a
lock file left behind by a dead process is simply taken over: there is no stale
state to clean up and no pid guessing. The file's content, `{"pid", "host"}` of
the holder, only serves the refusal message of a second process.

Two processes on one run directory would interleave `metrics.jsonl` records and
race on `checkpoints/latest`; the second one is refused with a `UserError`
naming the holder. Network filesystems without flock support fall back to
running unlocked (the `flock` call fails with ENOLCK/EOPNOTSUPP).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import socket
from collections.abc import Iterator
from pathlib import Path

from rewarm.errors import UserError

LOCK = "run.lock"


@contextlib.contextmanager
def hold(run_dir: Path, enabled: bool = True) -> Iterator[None]:
    """Hold `run_dir/run.lock` for the duration of the block (no-op when not `enabled`)."""
    if not enabled:
        yield
        return
    import fcntl

    created = not run_dir.exists()
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / LOCK
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            if err.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise UserError(
                    f"{run_dir}: another rewarm process is training this run "
                    f"({_holder(path)}); wait for it or stop it first"
                ) from None
            if err.errno not in (errno.ENOLCK, errno.EOPNOTSUPP):
                raise
        me = json.dumps({"pid": os.getpid(), "host": socket.gethostname()}) + "\n"
        os.ftruncate(fd, 0)
        os.pwrite(fd, me.encode(), 0)
        yield
    finally:
        if created and [p.name for p in run_dir.iterdir()] == [LOCK]:
            # A run that failed before writing anything leaves no directory behind.
            path.unlink(missing_ok=True)
            with contextlib.suppress(OSError):
                run_dir.rmdir()
        os.close(fd)  # releases the flock


def _holder(path: Path) -> str:
    """`pid N on HOST` from the lock file (best effort: it may be mid-write)."""
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
        return f"pid {int(info['pid'])} on {info['host']}"
    except (OSError, ValueError, KeyError, TypeError):
        return f"holder unknown, see {path}"
