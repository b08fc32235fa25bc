"""Token datasets as domain sources: Megatron .bin/.idx, flat id files and `datasets`
directories of input_ids are read back exactly, split by whole documents, train, and
refuse a wrong dtype or a vocabulary that does not fit, naming the key."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest

from rewarm import runconfig
from rewarm.cli import main
from rewarm.data import megatron, shards
from rewarm.data.prepare import prepare
from rewarm.errors import UserError
from tests.runhelpers import one_thread, records

EOS = 256  # the byte tokenizer's end-of-document id


def documents(seed: int, n: int, eos_every: int = 2) -> list[list[int]]:
    """n distinct documents of byte ids; every `eos_every`-th already ends with EOS."""
    rng = np.random.default_rng(seed)
    docs = []
    for i in range(n):
        doc = [i % 256, i // 256] + rng.integers(0, 256, int(rng.integers(20, 120))).tolist()
        docs.append(doc + [EOS] if i % eos_every == 0 else doc)
    return docs


def write_megatron(prefix: Path, docs: list[list[list[int]]], dtype=np.uint16, code=8) -> None:
    """The Megatron index format, written here from its description: header, version,
    dtype code, counts, then sequence lengths, byte pointers and the document index."""
    seqs = [s for d in docs for s in d]
    lengths = np.array([len(s) for s in seqs], dtype=np.int32)
    item = np.dtype(dtype).itemsize
    pointers = (np.cumsum(lengths, dtype=np.int64) - lengths) * item
    doc_index = np.concatenate([[0], np.cumsum([len(d) for d in docs])]).astype(np.int64)
    ids = np.concatenate([np.asarray(s) for s in seqs]).astype(dtype)
    prefix.parent.mkdir(parents=True, exist_ok=True)
    prefix.with_name(prefix.name + ".bin").write_bytes(ids.tobytes())
    head = b"MMIDIDX\x00\x00" + struct.pack("<QBQQ", 1, code, len(seqs), len(doc_index))
    body = lengths.tobytes() + pointers.tobytes() + doc_index.tobytes()
    prefix.with_name(prefix.name + ".idx").write_bytes(head + body)


def split_docs(ids: np.ndarray) -> list[list[int]]:
    out, cur = [], []
    for t in ids.tolist():
        cur.append(t)
        if t == EOS:
            out.append(cur)
            cur = []
    assert not cur, "a shard must end with the end-of-document id"
    return out


def config(tmp_path: Path, domains: dict, stages: list | None = None, **extra):
    raw = {
        "run": {"name": "tok", "out_dir": str(tmp_path / "runs")},
        "model": {"preset": "llama-tiny"},
        "data": {"heldout_fraction": 0.1, "heldout_min_tokens": 128},
        "domains": domains,
        "train": {"seq_len": 32, "batch_tokens": 128, "device": "cpu"},
        "eval": {"tokens_per_domain": 64, "every_tokens": 0},
        "stages": stages or [{"name": "s", "tokens": 256, "mix": {n: 1 for n in domains}}],
        **extra,
    }
    return runconfig.from_dict(raw, source="t.toml")


def assert_exact_split(data: shards.DomainData, docs: list[list[int]]) -> None:
    """train + heldout hold every document once, each ending with EOS, in order."""
    expected = [d if d[-1] == EOS else d + [EOS] for d in docs if d]
    train, held = split_docs(np.asarray(data.train)), split_docs(np.asarray(data.heldout))
    held_set = {tuple(d) for d in held}
    assert held, "some whole documents are held out"
    assert train == [d for d in expected if tuple(d) not in held_set]
    assert held == [d for d in expected if tuple(d) in held_set]
    split = data.manifest["split"]
    assert split["train_documents"] + split["heldout_documents"] == len(expected)
    assert data.bytes_per_token_heldout > 0


def test_megatron_index_read_back_exactly(tmp_path):
    docs = documents(0, 30)
    # Documents of one, two and three sequences, and one empty document.
    layout = [[d] if i % 3 else [d[:10], d[10:20], d[20:]] for i, d in enumerate(docs)]
    layout.insert(5, [])
    write_megatron(tmp_path / "mega" / "pile_text_document", layout)
    ds = megatron.open_indexed(tmp_path / "mega" / "pile_text_document")
    assert ds.dtype == np.uint16 and ds.documents == 31
    kept = [d for d in [*docs[:5], [], *docs[5:]]]
    assert ds.document_lengths().tolist() == [len(d) for d in kept]
    for i, d in enumerate(kept):
        assert ds.document(i).tolist() == d
    # Through prepare: the source may name the prefix, the .bin or the .idx.
    for spec in ("pile_text_document", "pile_text_document.bin", "*.idx"):
        cfg = config(
            tmp_path / spec.replace("*", "x"),
            {
                "pile": {
                    "source": str(tmp_path / "mega" / spec),
                    "format": "megatron",
                    "tokenizer": "byte",
                }
            },
        )
        data = prepare(cfg, progress=False)["pile"]
        assert_exact_split(data, docs)
        assert data.manifest["counts"]["empty_documents"] == 1
        assert data.manifest["files"][0]["kind"] == "megatron"


def test_token_domain_shards_equal_the_same_text_tokenized(tmp_path):
    """The same documents as text (.jsonl, byte tokenizer) and as Megatron ids give
    byte-identical shards and the same split: mixture, replay and exact resume read
    only the shards, so a token domain behaves as a text domain does."""
    import json

    declared = {"tokenizer": "byte"}
    rng = np.random.default_rng(3)
    texts = [
        "".join(chr(c) for c in rng.integers(97, 123, int(rng.integers(20, 150))))
        for _ in range(80)
    ]
    (tmp_path / "web.jsonl").write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))
    write_megatron(tmp_path / "m" / "web", [[list(t.encode())] for t in texts])
    built = {}
    for kind, dom in (
        ("text", {"source": str(tmp_path / "web.jsonl")}),
        ("tokens", {"source": str(tmp_path / "m" / "web"), "format": "megatron", **declared}),
    ):
        cfg = config(tmp_path / kind, {"web": dom})
        built[kind] = prepare(cfg, progress=False)["web"]
    a, b = built["text"], built["tokens"]
    assert np.array_equal(np.asarray(a.train), np.asarray(b.train))
    assert np.array_equal(np.asarray(a.heldout), np.asarray(b.heldout))
    for key in ("train_documents", "heldout_documents", "train_tokens", "heldout_tokens"):
        assert a.manifest["split"][key] == b.manifest["split"][key]


def test_megatron_int32_and_bad_files(tmp_path):
    docs = documents(1, 12)
    write_megatron(tmp_path / "m32", [[d] for d in docs], dtype=np.int32, code=4)
    assert megatron.open_indexed(tmp_path / "m32").dtype == np.int32
    idx = tmp_path / "m32.idx"
    good = idx.read_bytes()
    idx.write_bytes(b"XXXXXXXXX" + good[9:])
    with pytest.raises(UserError, match="magic"):
        megatron.open_indexed(tmp_path / "m32")
    idx.write_bytes(good[:9] + struct.pack("<Q", 1) + struct.pack("<B", 7) + good[18:])
    with pytest.raises(UserError, match="floating point"):
        megatron.open_indexed(tmp_path / "m32")
    idx.write_bytes(good[:-8])
    with pytest.raises(UserError, match="bytes"):
        megatron.open_indexed(tmp_path / "m32")


def test_megatron_core_writer_reads_back(tmp_path):
    """Files written by Megatron-LM's own builder, when it is installed."""
    mi = pytest.importorskip("megatron.core.datasets.indexed_dataset")
    import torch

    docs = documents(2, 10)
    builder = mi.IndexedDatasetBuilder(str(tmp_path / "mc.bin"), dtype=np.uint16)
    for d in docs:
        builder.add_document(torch.tensor(d), [len(d)])
    builder.finalize(str(tmp_path / "mc.idx"))
    ds = megatron.open_indexed(tmp_path / "mc")
    assert [ds.document(i).tolist() for i in range(ds.documents)] == docs


def test_flat_file_read_back_exactly(tmp_path):
    docs = documents(3, 25, eos_every=1)  # nanoGPT: every document ends with EOS
    docs[-1] = docs[-1][:-1]  # but the file's last one does not
    ids = np.concatenate([np.asarray(d) for d in docs]).astype(np.uint16)
    (tmp_path / "flat").mkdir()
    ids.tofile(tmp_path / "flat" / "train.bin")
    cfg = config(
        tmp_path,
        {
            "owt": {
                "source": str(tmp_path / "flat"),
                "format": "flat",
                "dtype": "uint16",
                "tokenizer": "byte",
            }
        },
    )
    assert_exact_split(prepare(cfg, progress=False)["owt"], docs)


def test_hf_tokens_dataset_read_back_exactly(tmp_path):
    datasets = pytest.importorskip("datasets")
    docs = documents(4, 40)
    rows = [*docs[:3], [], *docs[3:]]  # an empty list is counted and skipped
    datasets.Dataset.from_dict({"input_ids": rows, "n": list(range(len(rows)))}).save_to_disk(
        str(tmp_path / "ds")
    )
    cfg = config(
        tmp_path,
        {"tok": {"source": str(tmp_path / "ds"), "format": "hf-tokens", "tokenizer": "byte"}},
    )
    data = prepare(cfg, progress=False)["tok"]
    assert_exact_split(data, docs)
    assert data.manifest["counts"]["empty_documents"] == 1


def test_token_domains_train_with_mixture_and_replay(tmp_path):
    """Three token formats in a two-stage run with replay: every stage-end record counts
    tokens and epochs per domain, and every domain is evaluated."""
    datasets = pytest.importorskip("datasets")
    from rewarm.train.trainer import train

    write_megatron(tmp_path / "m", [[d] for d in documents(5, 60)])
    np.concatenate([np.asarray(d) for d in documents(6, 60, 1)]).astype(np.uint16).tofile(
        tmp_path / "f.bin"
    )
    datasets.Dataset.from_dict({"input_ids": documents(7, 60)}).save_to_disk(str(tmp_path / "d"))
    tok = {"tokenizer": "byte"}
    cfg = config(
        tmp_path,
        {
            "mega": {"source": str(tmp_path / "m"), "format": "megatron", **tok},
            "flat": {"source": str(tmp_path / "f.bin"), "format": "flat", "dtype": "uint16", **tok},
            "hf": {"source": str(tmp_path / "d"), "format": "hf-tokens", **tok},
        },
        stages=[
            {"name": "old", "tokens": 256, "mix": {"mega": 1, "flat": 1}},
            {"name": "new", "tokens": 256, "mix": {"hf": 1}, "replay": {"fraction": 0.25}},
        ],
    )
    with one_thread():
        train(cfg, progress=False)
    ends = [r for r in records(cfg.run_dir, "stage") if r["event"] == "end"]
    assert set(ends[0]["tokens_by_domain"]) == {"mega", "flat"}
    assert set(ends[1]["tokens_by_domain"]) >= {"hf"}
    for end in ends:
        assert set(end["epochs_by_domain"]) == set(end["tokens_by_domain"])
        assert all(0 < e < 1 for e in end["epochs_by_domain"].values())
    evals = {r["domain"] for r in records(cfg.run_dir, "eval") if np.isfinite(r["loss"])}
    assert evals == {"mega", "flat", "hf"}


def _exit_2(capsys, cfg_path: Path, *extra: str) -> str:
    assert main(["prepare", str(cfg_path), "--quiet", *extra]) == 2
    return capsys.readouterr().err


def _toml(tmp_path: Path, domain: str) -> Path:
    path = tmp_path / "run.toml"
    path.write_text(
        f'[run]\nname = "t"\nout_dir = "{tmp_path / "runs"}"\n'
        f"[domains.web]\n{domain}\n"
        '[[stages]]\nname = "s"\ntokens = 8192\nmix = { web = 1.0 }\n'
    )
    return path


def test_wrong_dtype_exits_2_naming_the_key(tmp_path, capsys):
    ids = np.concatenate([np.asarray(d) for d in documents(8, 20, 1)]).astype(np.uint16)
    ids[: ids.size - ids.size % 2].tofile(tmp_path / "u16.bin")
    src = f'source = "{tmp_path / "u16.bin"}"\nformat = "flat"\ntokenizer = "byte"\n'
    err = _exit_2(capsys, _toml(tmp_path, src + 'dtype = "uint32"'))
    assert "domains.web.dtype" in err and "error:" in err
    ids.astype(np.uint32).tofile(tmp_path / "u32.bin")
    src = src.replace("u16.bin", "u32.bin")
    err = _exit_2(capsys, _toml(tmp_path, src + 'dtype = "uint16"'))
    assert "domains.web.dtype" in err and "every other id" in err
    write_megatron(tmp_path / "m", [[d] for d in documents(9, 5)])
    src = f'source = "{tmp_path / "m"}"\nformat = "megatron"\ntokenizer = "byte"\n'
    err = _exit_2(capsys, _toml(tmp_path, src + 'dtype = "int32"'))
    assert "domains.web.dtype" in err and "uint16" in err


def test_vocabulary_larger_than_the_model_exits_2_naming_the_key(tmp_path, capsys):
    big = [[1000 + i, 5, 7] + list(range(60)) for i in range(20)]  # ids past 256
    write_megatron(tmp_path / "gpt", [[d] for d in big])
    src = f'source = "{tmp_path / "gpt"}"\nformat = "megatron"\ntokenizer = "byte"'
    err = _exit_2(capsys, _toml(tmp_path, src))
    assert "domains.web.tokenizer" in err and "1019" in err


def test_declared_tokenizer_must_be_the_runs_or_extended_by_it(tmp_path, capsys):
    from rewarm.data.tokenizer import ByteTokenizer

    hf = ByteTokenizer().to_hf()
    hf.add_tokens(["<extra>"])
    hf.save_pretrained(str(tmp_path / "bigger"))
    write_megatron(tmp_path / "m", [[d] for d in documents(10, 20)])
    src = (
        f'source = "{tmp_path / "m"}"\nformat = "megatron"\ntokenizer = "hf:{tmp_path / "bigger"}"'
    )
    # The run's byte tokenizer does not extend the declared one (it lacks <extra>).
    err = _exit_2(capsys, _toml(tmp_path, src))
    assert "domains.web.tokenizer" in err and "<extra>" in err
    # The other way round is an extension: ids made with "byte" under the bigger one.
    cfg = config(
        tmp_path,
        {"web": {"source": str(tmp_path / "m"), "format": "megatron", "tokenizer": "byte"}},
        tokenizer={"kind": f"hf:{tmp_path / 'bigger'}"},
    )
    assert_exact_split(prepare(cfg, progress=False)["web"], documents(10, 20))


@pytest.mark.parametrize(
    ("domain", "key"),
    [
        ('source = "x"\nformat = "flat"\ntokenizer = "byte"', "domains.web.dtype"),
        ('source = "x"\nformat = "megatron"', "domains.web.tokenizer"),
        ('source = "x"\ntokenizer = "byte"', "domains.web.tokenizer"),
        ('source = "x"\nformat = "megatron"\ntokenizer = "byte"\nmax_bytes = 5', "max_bytes"),
        ('source = "x"\nformat = "tokens"', "domains.web.format"),
    ],
)
def test_token_keys_are_checked(tmp_path, capsys, domain, key):
    assert key in _exit_2(capsys, _toml(tmp_path, domain))


def test_hf_tokens_parquet_files_with_a_named_column(tmp_path):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    docs = documents(11, 30)
    (tmp_path / "pq").mkdir()
    for i, part in enumerate((docs[:12], docs[12:])):
        table = pa.table({"ids": pa.array(part, type=pa.list_(pa.int32()))})
        pq.write_table(table, tmp_path / "pq" / f"{i}.parquet", row_group_size=5)
    cfg = config(
        tmp_path,
        {"p": {"source": str(tmp_path / "pq"), "format": "hf-tokens", "field": "ids",
               "tokenizer": "byte"}},
    )  # fmt: skip
    data = prepare(cfg, progress=False)["p"]
    assert_exact_split(data, docs)
    assert [f["kind"] for f in data.manifest["files"]] == ["hf-tokens", "hf-tokens"]
    bad = config(
        tmp_path / "bad",
        {"p": {"source": str(tmp_path / "pq"), "format": "hf-tokens", "tokenizer": "byte"}},
    )
    with pytest.raises(UserError, match="no column 'input_ids'.*domains.p.field"):
        prepare(bad, progress=False)
