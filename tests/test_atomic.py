"""`rewarm.atomic`: the file mode a user expects, old contents kept on failure, fsync."""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from rewarm import atomic


@contextlib.contextmanager
def umask(mask: int) -> Iterator[None]:
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize("mask", [0o022, 0o002, 0o077])
def test_files_and_directories_get_the_mode_of_a_plain_open(tmp_path: Path, mask: int) -> None:
    with umask(mask):
        plain = tmp_path / "plain"
        plain.write_bytes(b"x")
        plain_dir = tmp_path / "plain_dir"
        plain_dir.mkdir()
        written = atomic.write_bytes(tmp_path / "a" / "b.bin", b"data")
        with atomic.AtomicFile(tmp_path / "stream.bin") as f:
            f.write(b"data")
        with atomic.directory(tmp_path / "dir") as d:
            (d / "inside").write_text("x")
    assert mode(written) == mode(plain) == 0o666 & ~mask
    assert mode(tmp_path / "stream.bin") == 0o666 & ~mask
    assert mode(tmp_path / "dir") == mode(plain_dir) == 0o777 & ~mask


def test_text_and_json(tmp_path: Path) -> None:
    assert atomic.write_text(tmp_path / "t.txt", "é\n").read_bytes() == "é\n".encode()
    path = atomic.write_json(tmp_path / "j.json", {"b": 1, "a": [1, 2]}, indent=1, sort_keys=True)
    assert path.read_text() == '{\n "a": [\n  1,\n  2\n ],\n "b": 1\n}\n'


def test_replaces_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    target = tmp_path / "f.txt"
    atomic.write_text(target, "old")
    atomic.write_text(target, "new")
    assert target.read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.txt"]


def test_an_error_mid_write_keeps_the_old_file(tmp_path: Path) -> None:
    target = tmp_path / "f.bin"
    atomic.write_bytes(target, b"old contents")
    with pytest.raises(RuntimeError), atomic.AtomicFile(target) as f:
        f.write(b"half of the new")
        raise RuntimeError("killed")
    assert target.read_bytes() == b"old contents"
    assert [p.name for p in tmp_path.iterdir()] == ["f.bin"]


def test_a_failed_rename_or_fsync_keeps_the_old_file(tmp_path: Path, monkeypatch) -> None:
    target = tmp_path / "f.bin"
    atomic.write_bytes(target, b"old")
    for name in ("replace", "fsync"):
        with monkeypatch.context() as m:

            def fail(*args: object, _name: str = name) -> None:
                raise OSError(28, f"No space left on device ({_name})")

            m.setattr(os, name, fail)
            with pytest.raises(OSError, match="No space"):
                atomic.write_bytes(target, b"new")
        assert target.read_bytes() == b"old"
        assert [p.name for p in tmp_path.iterdir()] == ["f.bin"]


def test_file_and_directory_are_fsynced_before_and_after_the_rename(
    tmp_path: Path, monkeypatch
) -> None:
    events: list[str] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        is_dir = stat.S_ISDIR(os.fstat(fd).st_mode)
        events.append("fsync dir" if is_dir else "fsync file")
        real_fsync(fd)

    def replace(src: object, dst: object) -> None:
        events.append("rename")
        real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    atomic.write_bytes(tmp_path / "f", b"x")
    assert events == ["fsync file", "rename", "fsync dir"]

    events.clear()
    with atomic.directory(tmp_path / "d") as d:
        (d / "one").write_bytes(b"1")
        (d / "sub").mkdir()
        (d / "sub" / "two").write_bytes(b"2")
    # every file and directory inside, then the rename, then the parent
    assert events.count("fsync file") == 2 and events[-2:] == ["rename", "fsync dir"]
    assert events.index("rename") == len(events) - 2


def test_directory_swap_and_failure(tmp_path: Path) -> None:
    target = tmp_path / "out"
    with atomic.directory(target) as d:
        (d / "a").write_text("1")
    with atomic.directory(target) as d:  # replaces the whole directory
        (d / "b").write_text("2")
    assert [p.name for p in target.iterdir()] == ["b"]
    with pytest.raises(RuntimeError), atomic.directory(target) as d:
        (d / "c").write_text("3")
        raise RuntimeError("failed half way")
    assert [p.name for p in target.iterdir()] == ["b"]
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_remove_stale_deletes_only_what_other_processes_left(tmp_path: Path) -> None:
    mine = os.getpid()
    stale = [".tmp-step_00000003-999", ".old-step_00000002-999", ".latest.999-0badc0de.tmp"]
    kept = [f".tmp-step_00000004-{mine}", f".x.{mine}-00ff00ff.tmp", "step_00000001", "notes.tmp"]
    for name in stale + kept:
        if name.endswith(".tmp"):
            (tmp_path / name).write_text("x")
        else:
            (tmp_path / name).mkdir()
    atomic.remove_stale(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(kept)
