"""prepare: round trips per tokenizer, manifests, stale detection, built-in corpora."""

from __future__ import annotations

import json
import logging
import os

import numpy as np
import pytest

from rewarm.data import shards
from rewarm.data.prepare import choose_heldout, prepare
from rewarm.data.tokenizer import load_tokenizer
from rewarm.errors import UserError
from tests.data.datahelpers import make_config

DOCS = {
    f"doc{i:02d}.txt": f"Document {i}: the quick brown fox — naïve café 日本語 {i * 7}.\n"
    * (3 + i % 5)
    for i in range(40)
}
STAGES = [{"name": "s0", "tokens": 64, "mix": {"a": 1.0}}]


def _cfg(tmp_path, root, kind="byte", **extra):
    data = {"heldout_fraction": 0.1, "heldout_min_tokens": 10, **extra.pop("data", {})}
    tok = {"kind": kind, "vocab_size": 300, "sample_bytes": 100_000}
    return make_config(
        tmp_path, {"a": {"source": str(root), **extra}}, STAGES, tokenizer=tok, data=data
    )


def _decode_docs(tok, tokens: np.ndarray) -> list[str]:
    ids = np.asarray(tokens, dtype=np.int64)
    cuts = np.nonzero(ids == tok.eos_id)[0]
    assert cuts.size and cuts[-1] == ids.size - 1, "every document ends with eos"
    return [tok.decode(p) for p in np.split(ids, cuts + 1)[:-1]]


def _hf_tokenizer_dir(tmp_path) -> str:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=320,
        special_tokens=["</s>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(["some other text to learn merges from"] * 20, trainer=trainer)
    path = tmp_path / "hf-tok"
    PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="</s>").save_pretrained(str(path))
    return f"hf:{path}"


@pytest.mark.parametrize("kind", ["byte", "bpe", "hf"])
def test_round_trip_text_to_shards_to_text(tmp_path, write_texts, kind):
    root = write_texts(DOCS)
    tok_kind = _hf_tokenizer_dir(tmp_path) if kind == "hf" else kind
    cfg = _cfg(tmp_path, root, tok_kind)
    data = prepare(cfg, progress=False)["a"]
    tok = load_tokenizer(cfg)
    got = _decode_docs(tok, data.train) + _decode_docs(tok, data.heldout)
    assert sorted(got) == sorted(DOCS.values())
    assert data.train.dtype == np.uint16
    assert data.manifest["tokenizer"] == tok.identity()
    assert data.manifest["eos_id"] == tok.eos_id
    # The held-out split is whole documents, disjoint from training.
    held = set(_decode_docs(tok, data.heldout))
    assert held and held.isdisjoint(_decode_docs(tok, data.train))
    if kind == "bpe":
        assert (cfg.data_dir / "tokenizer" / "tokenizer.json").exists()
        assert data.train.size < sum(len(t.encode()) for t in DOCS.values())  # merges used
    # to_hf() encodes like the tokenizer itself (export relies on it).
    text = DOCS["doc03.txt"]
    assert tok.to_hf()(text, add_special_tokens=False)["input_ids"] == tok.encode(text)


def test_manifest_contents(tmp_path, write_texts):
    root = write_texts(
        {
            "a.md": "# Title\nSome prose.\n",
            "b.py": "def f():\n    return 1\n",
            "bad.txt": b"caf\xe9 and \xff\xfe bytes\n",
            "empty.txt": "",
            "blank.txt": "  \n\n",
            "blob.bin": b"\x00\x01\x02binary",
            "sub/c.txt": "nested file\n" * 50,
        }
    )
    data = prepare(_cfg(tmp_path, root), progress=False)["a"]
    m = json.loads((data.path / "manifest.json").read_text())
    files = {os.path.relpath(f["path"], root): f for f in m["files"]}
    assert sorted(files) == sorted(
        ["a.md", "b.py", "bad.txt", "empty.txt", "blank.txt", "blob.bin", "sub/c.txt"]
    )
    assert files["bad.txt"]["undecodable_bytes"] == 3
    assert files["empty.txt"]["empty_documents"] == 1 and files["blank.txt"]["empty_documents"] == 1
    assert files["blob.bin"]["skipped"].startswith("binary")
    assert files["a.md"]["size"] == len(b"# Title\nSome prose.\n")
    import hashlib

    assert files["b.py"]["sha256"] == hashlib.sha256(b"def f():\n    return 1\n").hexdigest()
    c = m["counts"]
    assert c["empty_files"] == 2
    assert (c["documents"], c["skipped_files"], c["empty_documents"], c["undecodable_bytes"]) == (
        4,
        1,
        2,
        3,
    )
    s = m["split"]
    assert (
        s["train_tokens"] + s["heldout_tokens"]
        == c["tokens"]
        == data.train.size + data.heldout.size
    )
    assert s["train_bytes"] + s["heldout_bytes"] == c["bytes"]
    assert s["train_documents"] + s["heldout_documents"] == 4
    assert data.bytes_per_token_heldout == pytest.approx(s["heldout_bytes"] / s["heldout_tokens"])
    assert m["dtype"] == "uint16" and m["tokenizer"]["kind"] == "byte"
    # Files are recorded in sorted path order.
    assert [f["path"] for f in m["files"]] == sorted(f["path"] for f in m["files"])


def test_heldout_split_reaches_min_tokens_and_fraction():
    lengths = np.full(100, 50)
    mask = choose_heldout(lengths, 0.05, 400, key=1)
    assert lengths[mask].sum() >= 400 and lengths[mask].sum() < 450
    mask = choose_heldout(lengths, 0.2, 10, key=1)
    assert lengths[mask].sum() == 1000
    # Never more than half the data.
    assert choose_heldout(np.full(4, 10), 0.02, 10**6, key=1).sum() == 2


def test_stale_shards_are_rebuilt_or_refused(tmp_path, write_texts, caplog):
    root = write_texts(DOCS)
    cfg = _cfg(tmp_path, root)
    first = prepare(cfg, progress=False)["a"].manifest["fingerprint"]
    mtime = (cfg.data_dir / "a" / "train.bin").stat().st_mtime_ns
    assert prepare(cfg, progress=False)["a"].manifest["fingerprint"] == first
    assert (cfg.data_dir / "a" / "train.bin").stat().st_mtime_ns == mtime  # reused, not rebuilt
    (root / "doc00.txt").write_text("changed text\n")
    with pytest.raises(UserError, match=r"shards are stale \(source files changed\)"):
        prepare(cfg, progress=False, rebuild=False)
    with caplog.at_level(logging.WARNING, logger="rewarm.data"):
        data = prepare(cfg, progress=False)["a"]
    assert "stale (source files changed); rebuilding" in caplog.text
    assert data.manifest["fingerprint"] != first
    other = _cfg(tmp_path, root, "bpe")
    with pytest.raises(UserError, match="stale|tokenizer"):
        prepare(other, progress=False, rebuild=False)
    assert prepare(other, progress=False)["a"].manifest["tokenizer"]["kind"] == "bpe"
    # Damaged shard files are detected on open.
    (other.data_dir / "a" / "train.bin").write_bytes(b"\x00\x01\x02")
    with pytest.raises(UserError, match="expected .* tokens"):
        shards.open_domain(other.data_dir / "a")
    assert prepare(other, progress=False)["a"].train.size > 0


def test_single_document_holds_out_its_tail(tmp_path, write_texts):
    root = write_texts({"one.txt": "word " * 1000})
    data = prepare(_cfg(tmp_path, root / "one.txt"), progress=False)["a"]
    assert data.manifest["split"]["method"] == "tail"
    # 5,000 bytes + eos; the tail is ceil(0.1 * 5001) tokens, eos included.
    assert data.heldout.size == 501 and data.train.size == 4500
    assert data.manifest["split"]["heldout_bytes"] == 500


@pytest.mark.parametrize("corpus", ["python-docs", "python-code"])
def test_builtin_corpora_on_a_small_sample(tmp_path, corpus):
    cfg = make_config(
        tmp_path,
        {"a": {"source": corpus, "max_bytes": 60_000}},
        STAGES,
        data={"heldout_min_tokens": 1000},
    )
    data = prepare(cfg, progress=False)["a"]
    m = data.manifest
    assert m["counts"]["bytes"] == 60_000 and m["counts"]["truncated_at_max_bytes"]
    assert all("/test/" not in f["path"] and "site-packages" not in f["path"] for f in m["files"])
    text = bytes(
        np.asarray(data.train[:20_000], dtype=np.uint8)[np.asarray(data.train[:20_000]) < 256]
    ).decode(errors="replace")
    if corpus == "python-docs":
        assert m["files"][0]["kind"] == "pydoc-topics" and " the " in text
    else:
        assert "def " in text and "import " in text


def test_python_docs_are_docstrings_not_code(tmp_path):
    from rewarm.data.builtin import docstrings

    src = '"""Module doc."""\nimport os\n\ndef f():\n    """Function doc."""\n    return os.sep\n'
    assert docstrings(src) == ["Module doc.", "Function doc."]


def test_token_dtype_widens_past_16_bits(tmp_path):
    assert shards.token_dtype(65_536) == np.uint16
    assert shards.token_dtype(65_537) == np.uint32
    d = tmp_path / "dom"
    w = shards.TokenWriter(d / shards.TRAIN, np.dtype(np.uint32))
    w.write(np.array([70_000, 1, 2**31], dtype=np.int64))
    w.commit()
    shards.TokenWriter(d / shards.HELDOUT, np.dtype(np.uint32)).commit()
    split = {"train_tokens": 3, "heldout_tokens": 0, "heldout_bytes": 0}
    shards.write_manifest(d, {"format": 1, "domain": "dom", "dtype": "uint32", "split": split})
    data = shards.open_domain(d)
    assert data.train.tolist() == [70_000, 1, 2**31] and data.heldout.size == 0
    assert not list(d.glob(".*.tmp"))  # temporaries renamed into place
