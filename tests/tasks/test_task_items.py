"""Built-in task items: made from held-out documents only, deterministic, fitting the
model's context, with length-matched distractors that are not valid answers."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from rewarm.data import prepare, tokenizer
from rewarm.data.hashing import derive
from rewarm.errors import UserError
from rewarm.runconfig import load
from rewarm.tasks import heldout_tasks, items
from rewarm.tasks.spec import Builtin
from tests.tasks.taskhelpers import API, OBJECTS, write_config


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("items")
    cfg = load(write_config(tmp))
    return cfg, prepare.prepare(cfg, progress=False), tokenizer.load_tokenizer(cfg)


def _items(path):
    return [
        json.loads(line) for line in (path.parent / heldout_tasks.ITEMS).read_text().splitlines()
    ]


@pytest.mark.parametrize("kind", ["names", "next-line"])
def test_items_come_from_heldout_documents_only(prepared, kind):
    cfg, domains, tok = prepared
    data = domains["api"]
    path = heldout_tasks.ensure(cfg, Builtin(kind=kind, domain="api"), data, tok, "test")
    found = _items(path)
    assert len(found) >= heldout_tasks.MIN_ITEMS
    docs = heldout_tasks.heldout_documents(data, tok, derive("tasks", kind, "api"))
    train_text = tok.decode(np.asarray(data.train).tolist())
    assert all(doc not in train_text for doc in docs)  # whole held-out documents
    for it in found:
        doc, at, ctx = docs[it["doc"]], it["offset"], it["context"]
        answer = it["choices"][it["label"]]
        assert doc[at - len(ctx) : at] == ctx and doc[at : at + len(answer)] == answer
        assert answer not in ctx  # recall, not copying
        for choice in it["choices"]:
            assert len(tok.encode(ctx + choice)) <= cfg.train.seq_len
        assert len(set(it["choices"])) == items.CHOICES
    labels = np.bincount([it["label"] for it in found], minlength=items.CHOICES)
    assert labels.min() > 0  # the answer's position varies


def test_names_distractors_are_matched_and_never_valid(prepared):
    cfg, domains, tok = prepared
    path = heldout_tasks.ensure(cfg, Builtin(kind="names", domain="api"), domains["api"], tok, "t")
    right = dict(zip(OBJECTS, API, strict=True))
    found = _items(path)
    assert sorted(it["choices"][it["label"]] for it in found) == sorted(API)  # one item each
    docs = heldout_tasks.heldout_documents(domains["api"], tok, derive("tasks", "names", "api"))
    for it in found:
        obj = re.search(r"(\w+)\.$", it["context"]).group(1)
        answer = it["choices"][it["label"]]
        assert answer == right[obj]
        # No choice occurs in the longest context the item could have had (copying
        # never helps), and the distractors are the nearest in length among the rest.
        window = set(re.findall(r"\w+", items._window(docs[it["doc"]], it["offset"])))
        assert not set(it["choices"]) & window
        distance = sorted(abs(len(a) - len(answer)) for a in API if a != answer and a not in window)
        assert max(abs(len(c) - len(answer)) for c in it["choices"]) == distance[2]
    spec = (path.parent / heldout_tasks.YAML).read_text()
    assert "dataset_path: json" in spec and "target_delimiter: ''" in spec


def test_items_are_deterministic_and_reused(prepared, tmp_path):
    cfg, domains, tok = prepared
    b = Builtin(kind="next-line", domain="other")
    path = heldout_tasks.ensure(cfg, b, domains["other"], tok, "t")
    first = (path.parent / heldout_tasks.ITEMS).read_bytes()
    mtime = (path.parent / heldout_tasks.MANIFEST).stat().st_mtime_ns
    assert heldout_tasks.ensure(cfg, b, domains["other"], tok, "t") == path
    assert (path.parent / heldout_tasks.MANIFEST).stat().st_mtime_ns == mtime  # reused
    (path.parent / heldout_tasks.MANIFEST).unlink()
    assert (
        heldout_tasks.ensure(cfg, b, domains["other"], tok, "t").parent / heldout_tasks.ITEMS
    ).read_bytes() == first
    # Another train.seq_len: other items (longer contexts), in their own directory.
    longer = load(write_config(tmp_path), ["train.seq_len=128"])
    longer.data.dir = str(cfg.data_dir)
    path128 = heldout_tasks.ensure(longer, b, domains["other"], tok, "t")
    sizes = [len(tok.encode(it["context"] + c)) for it in _items(path128) for c in it["choices"]]
    assert path128 != path and path.is_file() and 64 < max(sizes) <= 128


def test_too_few_items_is_a_user_error(prepared, monkeypatch):
    cfg, domains, tok = prepared
    monkeypatch.setattr(heldout_tasks, "MIN_ITEMS", 10**6)
    with pytest.raises(
        UserError, match=r"run.toml: eval.tasks\[0\]: rewarm:names:other: .* yields"
    ):
        heldout_tasks.ensure(
            cfg, Builtin(kind="names", domain="other"), domains["other"], tok,
            "run.toml: eval.tasks[0]",
        )  # fmt: skip
