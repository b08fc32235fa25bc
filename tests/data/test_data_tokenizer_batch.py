"""`BackendTokenizer.encode_batch` takes the library's `encode_batch_fast` (no character
offsets) where it exists: the ids must be those of the plain `encode_batch`, on real
prose and code, for a trained BPE and for an HF tokenizer with added tokens."""

from __future__ import annotations

import numpy as np
import pytest
from transformers import AutoTokenizer

from rewarm.data import builtin, sources
from rewarm.data.tokenizer import ByteTokenizer, load_hf, train_bpe


@pytest.fixture(scope="module")
def texts() -> list[str]:
    docs: list[str] = []
    for name in ("python-docs", "python-code"):
        files = [sources.SourceFile(p, k) for p, k in builtin.files(name)]
        docs += list(sources.read_documents(files, "text", 300_000, []))
    # Non-ASCII, the end-of-document token and an added token inside the text as well.
    docs += ["naïve café ελληνικά 日本語 🙂 <|endoftext|> mid-text <python> tag", " ", "\n\n\t"]
    return docs


def _plain(backend, texts: list[str]) -> list[list[int]]:
    return [list(e.ids) for e in backend.encode_batch(texts, add_special_tokens=False)]


def _same(got: list[np.ndarray], want: list[list[int]]) -> None:
    assert len(got) == len(want)
    for a, b in zip(got, want, strict=True):
        assert a.dtype == np.int64 and a.tolist() == b


def test_trained_bpe_batch_ids_equal_the_plain_api(texts):
    tok = train_bpe(iter(texts[:40]), 1000)
    assert hasattr(tok.backend, "encode_batch_fast")  # the installed library has it
    want = _plain(tok.backend, texts)
    assert sum(map(len, want)) > 50_000  # real text, many merges
    _same(tok.encode_batch(texts), want)


def test_hf_tokenizer_with_added_tokens_batch_ids_equal_the_plain_api(tmp_path, texts):
    ByteTokenizer().save(tmp_path)
    hf = AutoTokenizer.from_pretrained(str(tmp_path))
    hf.add_tokens(["<python>", " café"])
    hf.save_pretrained(str(tmp_path))
    tok = load_hf(str(tmp_path))
    want = _plain(tok.backend, texts)
    assert 257 in want[-3] and 258 in want[-3]  # the added tokens are matched
    _same(tok.encode_batch(texts), want)


def test_without_the_fast_api_the_plain_one_is_used(texts):
    tok = train_bpe(iter(texts[:5]), 400)

    class Old:  # a tokenizers release before 0.20: no encode_batch_fast
        def __init__(self, real):
            self.encode_batch = real.encode_batch

    want = _plain(tok.backend, texts[:5])
    tok.backend = Old(tok.backend)
    _same(tok.encode_batch(texts[:5]), want)
