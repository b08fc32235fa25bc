"""Tokenizers: `byte`, `bpe` (trained locally) and `hf:PATH` (a local model directory).

All three share one interface: `encode(str) -> list[int]`, `encode_batch(texts)`,
`decode(ids) -> str`, `vocab_size`, `eos_id`, `identity() -> dict`, `vocab()` (token
-> id), `save(dir)` and `to_hf()` (a `transformers.PreTrainedTokenizerFast`, used by
`rewarm export`). `extends(new, old)` says whether one tokenizer keeps every id of
another (vocabulary extension, token datasets made with a declared tokenizer).
The identity is recorded in every shard manifest: shards made with another
tokenizer are never read.

- `byte`: ids 0-255 are the UTF-8 bytes, 256 is `<|endoftext|>`; vocab 257.
- `bpe`: byte-level BPE (Sennrich et al. 2016; GPT-2's byte-to-unicode alphabet)
  trained with the `tokenizers` library on a sample of the configured domains
  (`tokenizer.sample_bytes`, `tokenizer.vocab_size`), saved under
  `data_dir/tokenizer/`; its identity is the SHA-256 of its JSON.
- `hf:PATH`: `AutoTokenizer.from_pretrained(PATH, local_files_only=True)`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from rewarm.config import Config
from rewarm.errors import UserError

if TYPE_CHECKING:  # both are imported when a tokenizer is built, not on import
    from tokenizers import Tokenizer as RustTokenizer
    from transformers import PreTrainedTokenizerBase, PreTrainedTokenizerFast

EOS = "<|endoftext|>"
TOKENIZER_JSON = "tokenizer.json"


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class ByteTokenizer:
    """UTF-8 bytes plus one end-of-document token."""

    kind = "byte"
    vocab_size = 257
    eos_id = 256

    def encode(self, text: str) -> list[int]:
        return list(text.encode("utf-8"))

    def encode_array(self, text: str) -> np.ndarray:
        return np.frombuffer(text.encode("utf-8"), dtype=np.uint8)

    def encode_batch(self, texts: list[str]) -> list[np.ndarray]:
        return [self.encode_array(t) for t in texts]

    def decode(self, ids: Iterable[int]) -> str:
        data = bytes(int(i) for i in ids if int(i) < 256)
        return data.decode("utf-8", errors="replace")

    def identity(self) -> dict[str, Any]:
        return {"kind": "byte", "vocab_size": self.vocab_size, "eos_id": self.eos_id}

    def vocab(self) -> dict[str, int]:
        return dict(self._backend().get_vocab(with_added_tokens=True))

    def portable(self) -> tuple[Any, ...]:
        """What `from_portable` rebuilds an encoder from in another process."""
        return ("byte",)

    def _backend(self) -> RustTokenizer:
        """A `tokenizers.Tokenizer` with the same ids: byte-level BPE without merges."""
        from tokenizers import Tokenizer, decoders, models, pre_tokenizers

        alphabet = _bytes_to_unicode()
        vocab = {alphabet[b]: b for b in range(256)}
        vocab[EOS] = self.eos_id
        tok = Tokenizer(models.BPE(vocab=vocab, merges=[]))
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
        tok.decoder = decoders.ByteLevel()
        tok.add_special_tokens([EOS])
        return tok

    def to_hf(self) -> PreTrainedTokenizerBase:
        return _fast(self._backend())

    def save(self, directory: str | Path) -> None:
        self.to_hf().save_pretrained(str(directory))


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible map from bytes to printable unicode characters."""
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
    keep += list(range(ord("®"), ord("ÿ") + 1))
    out, extra = {}, 0
    for b in range(256):
        if b in keep:
            out[b] = chr(b)
        else:
            out[b] = chr(256 + extra)
            extra += 1
    return out


def _fast(backend: RustTokenizer) -> PreTrainedTokenizerFast:
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast(
        tokenizer_object=backend, eos_token=EOS, bos_token=EOS, unk_token=None, pad_token=EOS
    )


class BackendTokenizer:
    """A `tokenizers.Tokenizer` (trained BPE, or the fast backend of an HF tokenizer)."""

    path: str | None = None
    """The directory of an `hf:PATH` tokenizer (resolved), for messages."""

    def __init__(
        self,
        backend: RustTokenizer,
        kind: str,
        eos_id: int,
        hf: PreTrainedTokenizerBase | None = None,
    ) -> None:
        self.backend = backend
        self.kind = kind
        self.eos_id = eos_id
        self._hf = hf
        self.vocab_size = int(backend.get_vocab_size(with_added_tokens=True))
        if hf is not None:
            self.vocab_size = max(self.vocab_size, len(hf))

    def encode(self, text: str) -> list[int]:
        return list(self.backend.encode(text, add_special_tokens=False).ids)

    def encode_batch(self, texts: list[str]) -> list[np.ndarray]:
        # The Rust library encodes a batch on all its threads (RAYON_NUM_THREADS).
        encs = self._encode_batch(texts, add_special_tokens=False)
        return [np.asarray(e.ids, dtype=np.int64) for e in encs]

    @property
    def _encode_batch(self) -> Any:
        """`encode_batch_fast` where the library has it (tokenizers >= 0.20: the same ids,
        without the character offsets, which `prepare` never reads; about 1.5x faster on
        one thread), else `encode_batch`."""
        return getattr(self.backend, "encode_batch_fast", self.backend.encode_batch)

    def decode(self, ids: Iterable[int]) -> str:
        return self.backend.decode([int(i) for i in ids], skip_special_tokens=True)

    def identity(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "vocab_size": self.vocab_size,
            "eos_id": self.eos_id,
            "sha256": _sha256(self.backend.to_str().encode()),
        }

    def vocab(self) -> dict[str, int]:
        return dict(self.backend.get_vocab(with_added_tokens=True))

    def portable(self) -> tuple[Any, ...]:
        """What `from_portable` rebuilds an encoder from in another process."""
        return ("backend", self.backend.to_str(), self.kind, self.eos_id)

    def to_hf(self) -> PreTrainedTokenizerBase:
        return self._hf if self._hf is not None else _fast(self.backend)

    def save(self, directory: str | Path) -> None:
        self.to_hf().save_pretrained(str(directory))


Tokenizer = ByteTokenizer | BackendTokenizer


def from_portable(spec: tuple[Any, ...]) -> Tokenizer:
    """An encoder with the ids of the tokenizer whose `portable()` gave `spec` (the
    serialised backend: cheap to send to a worker process, no `transformers` import)."""
    if spec[0] == "byte":
        return ByteTokenizer()
    from tokenizers import Tokenizer as RustTokenizer

    _, text, kind, eos = spec
    return BackendTokenizer(RustTokenizer.from_str(text), kind, eos_id=eos)


def extends(new: Tokenizer, old: Tokenizer) -> str | None:
    """None when `new` gives every token of `old` the same id (equal, or `old` plus added
    tokens), else one line naming the first token that differs."""
    if new.identity() == old.identity():
        return None
    if new.eos_id != old.eos_id:
        return f"the end-of-document id is {old.eos_id} there but {new.eos_id} here"
    have = new.vocab()
    for token, i in sorted(old.vocab().items(), key=lambda kv: kv[1]):
        j = have.get(token)
        if j != i:
            where = "missing" if j is None else f"id {j}"
            return f"token {token!r} is id {i} there but {where} here"
    return None


def train_bpe(texts: Iterator[str], vocab_size: int) -> BackendTokenizer:
    """Train a byte-level BPE on `texts`; `<|endoftext|>` is the first id (0)."""
    from tokenizers import Tokenizer as RustTokenizer
    from tokenizers import decoders, models, pre_tokenizers, trainers

    tok = RustTokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[EOS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    eos_id = tok.token_to_id(EOS)
    assert eos_id is not None  # a special token of the trainer: always in the vocabulary
    return BackendTokenizer(tok, "bpe", eos_id=eos_id)


def load_bpe(directory: Path) -> BackendTokenizer:
    from tokenizers import Tokenizer as RustTokenizer

    tok = RustTokenizer.from_file(str(directory / TOKENIZER_JSON))
    eos = tok.token_to_id(EOS)
    if eos is None:
        raise UserError(f"{directory / TOKENIZER_JSON}: no {EOS} token")
    return BackendTokenizer(tok, "bpe", eos_id=eos)


def load_hf(path: str, where: str = "tokenizer.kind") -> BackendTokenizer:
    """A local Hugging Face tokenizer directory (never the network); `where` names the
    config key in messages."""
    from transformers import AutoTokenizer

    directory = Path(path)
    if not directory.is_dir():
        raise UserError(f"{where}: hf:{path}: not a directory")
    try:
        # Only the fast tokenizer's tokenizer.json is used: never run a directory's code.
        hf = AutoTokenizer.from_pretrained(
            str(directory), local_files_only=True, trust_remote_code=False
        )
    except Exception as err:  # transformers raises many types for a bad directory
        raise UserError(f"{where}: hf:{path}: cannot load tokenizer: {err}") from None
    backend = getattr(hf, "backend_tokenizer", None)
    if backend is None:
        raise UserError(f"{where}: hf:{path}: needs a fast tokenizer (tokenizer.json)")
    eos = hf.eos_token_id
    if eos is None:
        raise UserError(f"{where}: hf:{path}: the tokenizer has no eos token")
    tok = BackendTokenizer(backend, "hf", eos_id=int(eos), hf=hf)
    # The identity hashes the serialised backend, plus the path for the reader.
    tok.path = str(directory.resolve())
    return tok


def tokenizer_meta_matches(directory: Path, meta: dict[str, Any]) -> bool:
    try:
        saved = json.loads((directory / "rewarm_tokenizer.json").read_text())
    except (OSError, ValueError):
        return False
    return saved == meta and (directory / TOKENIZER_JSON).exists()


def bpe_dir(cfg: Config) -> Path:
    return Path(cfg.data_dir) / "tokenizer"


def load_declared(spec: str, where: str) -> Tokenizer:
    """A domain's declared tokenizer (`domains.NAME.tokenizer`): "byte" or "hf:PATH"."""
    if spec == "byte":
        return ByteTokenizer()
    return load_hf(spec[3:], where)


def load_tokenizer(cfg: Config) -> Tokenizer:
    """The tokenizer of `cfg.tokenizer.kind`; a `bpe` one must already be trained.

    `rewarm.data.prepare.prepare` trains and saves the BPE tokenizer when missing.
    """
    kind = cfg.tokenizer.kind
    if kind == "byte":
        return ByteTokenizer()
    if kind.startswith("hf:"):
        return load_hf(kind[3:])
    directory = bpe_dir(cfg)
    if not (directory / TOKENIZER_JSON).exists():
        raise UserError(f"{directory}: no trained BPE tokenizer; run `rewarm prepare CONFIG`")
    return load_bpe(directory)
