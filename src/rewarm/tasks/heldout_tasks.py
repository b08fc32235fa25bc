"""Built-in tasks on disk: a harness task YAML and its items, made from a domain's
held-out split and kept next to the shards.

`ensure(cfg, builtin, domain, tokenizer)` writes, once per held-out split and
sequence length,

    DATA_DIR/tasks/DOMAIN-KIND-SEQ_LEN/
        task.yaml       an lm-evaluation-harness task (multiple choice, metric `acc`,
                        `dataset_path: json` on the items file: no hub needed)
        items.jsonl     {context, choices, label, doc, offset} per item
        manifest.json   what the items were made from (shard fingerprint, seq_len,
                        generator version) and how many there are

and returns the YAML's path. It is rebuilt when the domain's shards or
`train.seq_len` change (contexts are cut to fit `train.seq_len` tokens with the
longest choice, so the model is never asked beyond the length it trains on). The
standalone harness runs the same file: `lm_eval --model hf --model_args
pretrained=EXPORTED --tasks DATA_DIR/tasks/.../task.yaml`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from rewarm import atomic
from rewarm.config import Config
from rewarm.data.hashing import derive
from rewarm.data.shards import DomainData
from rewarm.data.tokenizer import Tokenizer
from rewarm.errors import UserError
from rewarm.tasks.items import MAKERS
from rewarm.tasks.spec import Builtin

VERSION = 2
"""Bumped whenever the items made from the same text change."""
MIN_ITEMS = 10
TEXT_BUDGET = 4_000_000
"""Characters of held-out text read at most (whole documents, in a keyed order)."""
YAML, ITEMS, MANIFEST = "task.yaml", "items.jsonl", "manifest.json"


def heldout_documents(data: DomainData, tok: Tokenizer, key: int) -> list[str]:
    """The held-out documents as text (split at the end-of-document token), up to
    TEXT_BUDGET characters of them taken in a keyed order, returned in file order."""
    tokens = np.asarray(data.heldout)
    cuts = np.flatnonzero(tokens == tok.eos_id)
    spans = [
        (int(a), int(b))
        for a, b in zip(np.r_[0, cuts + 1], np.r_[cuts, len(tokens)], strict=True)
        if b > a
    ]
    chosen: list[tuple[int, str]] = []
    total = 0
    for i in sorted(range(len(spans)), key=lambda i: derive(key, i)):
        a, b = spans[i]
        text = tok.decode(tokens[a:b].tolist())
        chosen.append((i, text))
        total += len(text)
        if total >= TEXT_BUDGET:
            break
    return [text for _, text in sorted(chosen)]


def task_yaml(name: str, items: Path, cache: Path, summary: str) -> str:
    """The harness task definition (YAML; `yaml.safe_dump` keeps strings exact)."""
    import yaml

    spec: dict[str, Any] = {
        "task": name,
        "dataset_path": "json",
        "dataset_kwargs": {"data_files": {"test": str(items)}, "cache_dir": str(cache)},
        "test_split": "test",
        "output_type": "multiple_choice",
        "doc_to_text": "context",
        "doc_to_choice": "choices",
        "doc_to_target": "label",
        "target_delimiter": "",
        "fewshot_delimiter": "\n\n",
        "metric_list": [{"metric": "acc", "aggregation": "mean", "higher_is_better": True}],
        "metadata": {"version": VERSION, "description": summary},
    }
    return "# Made by rewarm from held-out documents (docs/tasks.md).\n" + yaml.safe_dump(
        spec, sort_keys=False, allow_unicode=True
    )


def ensure(cfg: Config, builtin: Builtin, data: DomainData, tok: Tokenizer, where: str) -> Path:
    """The task YAML of `builtin`, written (or reused) under `cfg.data_dir/tasks`."""
    from rewarm.tasks.spec import KINDS

    seq_len = cfg.train.seq_len
    directory = cfg.data_dir / "tasks" / f"{builtin.domain}-{builtin.kind}-{seq_len}"
    inputs = {
        "version": VERSION,
        "kind": builtin.kind,
        "domain": builtin.domain,
        "seq_len": seq_len,
        "shards": data.manifest.get("fingerprint"),
        "path": str(directory.resolve()),
    }
    manifest_path = directory / MANIFEST
    if manifest_path.is_file():
        try:
            old = json.loads(manifest_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            old = {}
        if old.get("inputs") == inputs:
            return directory / YAML
    key = derive("tasks", builtin.kind, builtin.domain)
    docs = heldout_documents(data, tok, key)

    def fits(context: str, choice: str) -> bool:
        return len(tok.encode(context + choice)) <= seq_len

    items = MAKERS[builtin.kind](docs, fits, key)
    if len(items) < MIN_ITEMS:
        raise UserError(
            f"{where}: rewarm:{builtin.kind}:{builtin.domain}: the held-out split of domain "
            f"{builtin.domain!r} yields {len(items)} item(s), fewer than {MIN_ITEMS}; "
            "raise data.heldout_min_tokens or train.seq_len"
        )
    directory.parent.mkdir(parents=True, exist_ok=True)
    final = directory.resolve()
    with atomic.directory(directory) as tmp:
        lines = "".join(json.dumps(it.to_dict(), ensure_ascii=False) + "\n" for it in items)
        (tmp / ITEMS).write_text(lines, encoding="utf-8")
        summary = f"{builtin.domain}: {KINDS[builtin.kind]}"
        (tmp / YAML).write_text(
            task_yaml(builtin.name, final / ITEMS, final / "hf-cache", summary), encoding="utf-8"
        )
        manifest = {
            "inputs": inputs,
            "task": builtin.name,
            "items": len(items),
            "documents": len(docs),
        }
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return directory / YAML
