"""`prepare` of a text domain in resumable units: worker processes give the same shards
as one process, a byte budget cuts at the same place, and a prepare killed with
SIGKILL half-way resumes without redoing finished units and writes the same bytes."""

from __future__ import annotations

import json
import logging
import os
import random
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from rewarm import runconfig
from rewarm.data import parts, sources
from rewarm.data.prepare import prepare
from rewarm.data.tokenizer import ByteTokenizer

WORDS = [
    "the",
    "a",
    "river",
    "flows",
    "under",
    "old",
    "stone",
    "bridges",
    "while",
    "people",
    "walk",
    "home",
    "def",
    "return",
]


def write_jsonl(root: Path, files: int = 6, lines: int = 150, seed: int = 0) -> Path:
    rng = random.Random(seed)
    root.mkdir(parents=True, exist_ok=True)
    for i in range(files):
        with open(root / f"{i:02d}.jsonl", "w", encoding="utf-8") as f:
            for _ in range(lines):
                text = " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 120)))
                f.write(json.dumps({"text": text + " é"}) + "\n")
    return root


def raw_config(out: Path, corpus: Path, workers: int, kind: str = "byte", max_bytes: int = 0):
    return {
        "run": {"name": "t", "out_dir": str(out)},
        "tokenizer": {"kind": kind, "vocab_size": 300, "sample_bytes": 50_000},
        "data": {"workers": workers},
        "domains": {"web": {"source": str(corpus), "max_bytes": max_bytes}},
        "stages": [{"name": "s", "tokens": 8192, "mix": {"web": 1}}],
    }


def shards_of(out: Path) -> dict[str, object]:
    d = out / "data" / "web"
    manifest = json.loads((d / "manifest.json").read_text())
    return {
        "train": (d / "train.bin").read_bytes(),
        "heldout": (d / "heldout.bin").read_bytes(),
        **{k: manifest[k] for k in ("counts", "split", "files", "fingerprint")},
        "parts_left": (d / parts.PARTS).exists(),
    }


@pytest.mark.parametrize(("kind", "max_bytes"), [("byte", 0), ("bpe", 0), ("bpe", 60_000)])
def test_workers_and_one_process_write_the_same_shards(tmp_path, monkeypatch, kind, max_bytes):
    corpus = write_jsonl(tmp_path / "corpus")
    monkeypatch.setattr(parts, "UNIT_BYTES", 8_000)  # many units, jsonl files cut in parts
    got = []
    for workers in (1, 2):
        out = tmp_path / f"w{workers}"
        cfg = runconfig.from_dict(raw_config(out, corpus, workers, kind, max_bytes), "t.toml")
        prepare(cfg, progress=False)
        got.append(shards_of(out))
    assert got[0] == got[1]
    assert not got[0]["parts_left"]
    if max_bytes:  # the budget is cut where a single pass over the files cuts it
        files = sources.resolve(str(corpus), "x")
        records: list[sources.FileRecord] = []
        one_pass = "".join(sources.read_documents(files, "text", max_bytes, records))
        assert got[0]["counts"]["bytes"] == len(one_pass.encode()) <= max_bytes
        assert [r["documents"] for r in got[0]["files"]] == [r.documents for r in records]
        assert got[0]["files"][-1]["truncated"]
    else:  # a file cut into parts is one record with the whole file's size and hash
        whole = sources.resolve(str(corpus), "x")
        records = []
        list(sources.read_documents(whole, "text", 0, records))
        assert got[0]["files"] == [r.to_dict() for r in records]


def test_units_cut_large_jsonl_at_line_starts(tmp_path):
    corpus = write_jsonl(tmp_path / "c", files=2, lines=200)
    files = sources.resolve(str(corpus), "x")
    units = parts.plan_units(files, 5_000)
    assert len(units) > 4
    pieces = [
        sources.SourceFile(files[i].path, "jsonl", a, b) for u in units for i, a, b in u.pieces
    ]
    texts = [t for p in pieces for t in sources.read_documents([p], "text", 0, [])]
    assert texts == list(sources.read_documents(files, "text", 0, []))


def test_only_records_of_the_same_inputs_are_reused(tmp_path, monkeypatch):
    corpus = write_jsonl(tmp_path / "corpus", files=3)
    calls = []
    real = parts.run_unit
    monkeypatch.setattr(parts, "run_unit", lambda *a: calls.append(1) or real(*a))
    kw = dict(
        files=sources.resolve(str(corpus), "x"),
        field="text",
        max_bytes=0,
        directory=tmp_path / "parts",
        tok=ByteTokenizer(),
        dtype=np.dtype(np.uint16),
        workers=1,
        unit_bytes=8_000,
    )
    used, reused = parts.tokenize(fingerprint="a", **kw)
    assert reused == 0 and len(calls) == len(used) > 1
    again, reused = parts.tokenize(fingerprint="a", **kw)
    assert reused == len(used) and len(calls) == len(used) and again == used
    _, reused = parts.tokenize(fingerprint="b", **kw)  # other inputs: all redone
    assert reused == 0 and len(calls) == 2 * len(used)


CHILD = textwrap.dedent(
    """
    import os, signal, sys, threading, time
    from pathlib import Path
    from rewarm import runconfig
    from rewarm.data import parts, prepare

    raw, kill_after = eval(sys.argv[1]), int(sys.argv[2])
    parts.UNIT_BYTES = 8_000
    real = parts._load
    def slow(*args):  # the main process looks each unit up: workers stay a few units ahead
        time.sleep(0.05)
        return real(*args)
    parts._load = slow
    records = Path(raw["run"]["out_dir"]) / "data" / "web" / "parts"
    def killer():
        while len(list(records.glob("*.json"))) < kill_after:
            time.sleep(0.002)
        os.killpg(os.getpgid(0), signal.SIGKILL)  # this process and its workers
    threading.Thread(target=killer, daemon=True).start()
    prepare.prepare(runconfig.from_dict(raw, "t.toml"), progress=False)
    print("FINISHED")
    """
)


def test_prepare_killed_half_way_resumes_to_the_same_bytes(tmp_path, monkeypatch, caplog):
    corpus = write_jsonl(tmp_path / "corpus", files=8, lines=150)
    monkeypatch.setattr(parts, "UNIT_BYTES", 8_000)
    whole = tmp_path / "whole"
    prepare(runconfig.from_dict(raw_config(whole, corpus, 2, "bpe"), "t.toml"), progress=False)
    n_units = len(parts.plan_units(sources.resolve(str(corpus), "x"), 8_000))
    assert n_units >= 20

    killed = tmp_path / "killed"
    raw = raw_config(killed, corpus, 2, "bpe")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, repr(raw), "5"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        start_new_session=True,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    assert "FINISHED" not in proc.stdout
    done_before = len(list((killed / "data" / "web" / parts.PARTS).glob("*.json")))
    assert 5 <= done_before < n_units
    assert not (killed / "data" / "web" / "manifest.json").exists()

    with caplog.at_level(logging.INFO, logger="rewarm"):
        prepare(runconfig.from_dict(raw, "t.toml"), progress=False)
    reused = [r.getMessage() for r in caplog.records if "reused" in r.getMessage()]
    assert reused and int(reused[0].split("resumed: ")[1].split()[0]) == done_before
    a, b = shards_of(whole), shards_of(killed)
    assert a["train"] == b["train"] and a["heldout"] == b["heldout"]
    assert {k: a[k] for k in ("counts", "split", "files")} == {
        k: b[k] for k in ("counts", "split", "files")
    }
    leftovers = [p.name for p in (killed / "data" / "web").iterdir() if p.name.startswith(".")]
    assert leftovers == []
