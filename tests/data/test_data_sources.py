"""Each source kind on small files the test writes; bad input exits 2 naming the culprit."""

from __future__ import annotations

import json

import numpy as np
import pytest

from rewarm.cli import main
from rewarm.data import sources
from rewarm.errors import UserError


def _read(files, field="text", max_bytes=0):
    records: list[sources.FileRecord] = []
    docs = list(sources.read_documents(files, field, max_bytes, records))
    return docs, records


def test_text_files_directories_and_globs(write_texts):
    root = write_texts({"b.md": "bee", "a.txt": "ay", "sub/c.py": "x = 1", ".hidden": "no"})
    docs, _ = _read(sources.resolve(str(root), "src"))
    assert docs == ["ay", "bee", "x = 1"]  # sorted paths, hidden files not visited
    docs, _ = _read(sources.resolve(str(root / "**" / "*.py"), "src"))
    assert docs == ["x = 1"]
    docs, _ = _read(sources.resolve([str(root / "b.md"), str(root / "a.txt")], "src"))
    assert docs == ["bee", "ay"]  # a list keeps its order
    with pytest.raises(UserError, match=r"src: '.*nope\*\.txt' matches no file"):
        sources.resolve(str(root / "nope*.txt"), "src")


def test_a_file_named_twice_is_read_once(write_texts):
    """Built-in corpora too (they used to be checked against the wrong set, so a corpus
    listed twice, or a file of one named again by path, was read twice)."""
    once = sources.resolve("python-docs", "src")
    assert sources.resolve(["python-docs", "python-docs"], "src") == once
    first = str(once[0].path)
    assert sources.resolve(["python-docs", first], "src") == once
    root = write_texts({"a.txt": "ay"})
    assert len(sources.resolve([str(root), str(root / "a.txt")], "src")) == 1


def test_jsonl_field_and_null_values(write_texts):
    lines = [{"text": "one"}, {"text": None}, {"text": ""}, {"text": "two", "id": 3}]
    root = write_texts({"d.jsonl": "\n".join(json.dumps(x) for x in lines) + "\n\n"})
    docs, (rec,) = _read(sources.resolve(str(root / "d.jsonl"), "src"))
    assert docs == ["one", "two"]
    assert (rec.documents, rec.missing_field, rec.empty_documents) == (2, 1, 1)


def test_parquet_column(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "t.parquet"
    pq.write_table(
        pa.table({"body": ["alpha", None, "beta"], "n": [1, 2, 3]}), path, row_group_size=2
    )
    docs, (rec,) = _read(sources.resolve(str(path), "src"), field="body")
    assert docs == ["alpha", "beta"] and rec.missing_field == 1
    with pytest.raises(UserError, match="no column 'text'"):
        _read(sources.resolve(str(path), "src"))


def test_datasets_directory(tmp_path):
    import datasets

    ds = datasets.Dataset.from_dict({"text": ["first doc", "second doc", None]})
    ds.save_to_disk(str(tmp_path / "ds"))
    files = sources.resolve(str(tmp_path / "ds"), "src")
    assert [f.kind for f in files] == ["datasets"]
    docs, (rec,) = _read(files)
    assert docs == ["first doc", "second doc"] and rec.missing_field == 1 and rec.sha256


def test_max_bytes_cuts_the_stream(write_texts):
    root = write_texts({"a.txt": "x" * 60, "b.txt": "y" * 60, "c.txt": "z" * 60})
    docs, records = _read(sources.resolve(str(root), "src"), max_bytes=100)
    assert docs == ["x" * 60, "y" * 40]
    assert len(records) == 2 and records[1].truncated  # c.txt is never read


def test_undecodable_bytes_are_counted():
    text, bad = sources.decode(b"ok \xff\xfe and \xe9t\xc3\xa9")
    assert bad == 3 and text == "ok \ufffd\ufffd and \ufffdt\u00e9"


# -- bad input through the CLI: exit code 2 and one line naming the culprit -------------


def _write_config(tmp_path, source: str, mix: str = "a = 1.0", field: str = "text") -> str:
    cfg = tmp_path / "run.toml"
    cfg.write_text(
        f"""
[run]
name = "t"
out_dir = "{tmp_path / "runs"}"
[domains.a]
source = "{source}"
field = "{field}"
[train]
seq_len = 8
batch_tokens = 64
[eval]
tokens_per_domain = 64
[[stages]]
name = "s0"
tokens = 64
mix = {{ {mix} }}
"""
    )
    return str(cfg)


def _fails_naming(capsys, argv, *names):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    for name in names:
        assert name in err, err
    return err


def test_missing_file_exits_2(tmp_path, capsys):
    missing = tmp_path / "absent.txt"
    _fails_naming(
        capsys,
        ["prepare", _write_config(tmp_path, str(missing)), "--quiet"],
        "absent.txt",
        "domains.a.source",
    )


def test_jsonl_line_without_field_exits_2(tmp_path, capsys):
    path = tmp_path / "d.jsonl"
    path.write_text('{"text": "fine"}\n{"body": "no text here"}\n')
    _fails_naming(
        capsys, ["prepare", _write_config(tmp_path, str(path)), "--quiet"], "d.jsonl:2", "'text'"
    )
    assert not (tmp_path / "runs" / "data" / "a" / "manifest.json").exists()


def test_corrupt_parquet_exits_2(tmp_path, capsys):
    path = tmp_path / "bad.parquet"
    path.write_bytes(b"PAR1 this is not really parquet")
    _fails_naming(capsys, ["prepare", _write_config(tmp_path, str(path)), "--quiet"], "bad.parquet")


def test_undeclared_domain_in_mix_exits_2(tmp_path, capsys):
    path = tmp_path / "a.txt"
    path.write_text("hello")
    _fails_naming(
        capsys,
        ["prepare", _write_config(tmp_path, str(path), mix="a = 0.5, zzz = 0.5"), "--quiet"],
        "stages[0].mix.zzz",
    )


def test_cli_prepare_prints_a_table_and_check_mode(tmp_path, capsys):
    path = tmp_path / "a.txt"
    path.write_text("hello world " * 100)
    cfg = _write_config(tmp_path, str(path))
    _fails_naming(capsys, ["prepare", cfg, "--check", "--quiet"], "shards are missing")
    assert main(["prepare", cfg, "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "train tokens" in out and "uint16" in out
    assert main(["prepare", cfg, "--check", "--quiet"]) == 0
    train = np.fromfile(tmp_path / "runs" / "data" / "a" / "train.bin", dtype=np.uint16)
    assert train.size > 0
