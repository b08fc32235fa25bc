"""A two-domain corpus whose old domain holds knowledge a task can ask about.

Domain `api` calls `OBJ.ATTR(...)` with one fixed attribute per object; domain
`other` calls the same objects with *other* attributes. A model trained on `api`
learns which attribute follows each object (the built-in `names` task asks exactly
that); training on `other` afterwards overwrites it, so the task shows forgetting.
Byte tokenizer, `llama-tiny`, CPU: a two-stage run takes seconds.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterator
from pathlib import Path

import torch

OBJECTS = ["alpha", "bravo", "delta", "gamma"]
API = ["append", "bisect", "create", "decode"]
OTHER = ["insert", "jitter", "kindle", "launch"]
VARS = ["x", "y", "z", "n", "k"]

# The shared run of conftest.py: long enough for the tiny model to learn `api` (its
# task accuracy reaches ~1 by the end of stage 1) and to forget it in stage 2.
STAGE_TOKENS = 30720
TASK_EVERY = 10240
LIMIT = 48

CONFIG = """
[run]
name = "{name}"
out_dir = "{out}"
seed = 0

[model]
preset = "llama-tiny"

[data]
heldout_fraction = 0.1
heldout_min_tokens = 4096

[domains.api]
source = "{root}/api"

[domains.other]
source = "{root}/other"

[train]
seq_len = 64
batch_tokens = 512
lr = 3e-3
device = "cpu"

[eval]
every_tokens = {every}
tokens_per_domain = 256
tasks = [{{ task = "rewarm:names:api", limit = {limit} }}]
tasks_every_tokens = {task_every}
task_batch_size = 16

[[stages]]
name = "api"
tokens = {tokens}
mix = {{ api = 1.0 }}
schedule = {{ kind = "constant" }}

[[stages]]
name = "other"
tokens = {tokens}
mix = {{ other = 1.0 }}
schedule = {{ kind = "constant" }}
"""


def write_corpus(root: Path, docs: int = 30, lines: int = 24) -> None:
    rng = random.Random(0)
    for domain, attrs in (("api", API), ("other", OTHER)):
        d = root / domain
        d.mkdir(parents=True, exist_ok=True)
        for i in range(docs):
            rows = []
            for _ in range(lines):
                k = rng.randrange(len(OBJECTS))
                a, b = rng.choice(VARS), rng.choice(VARS)
                rows.append(f"{a} = {OBJECTS[k]}.{attrs[k]}({b})")
            (d / f"{i:03d}.py").write_text("\n".join(rows) + "\n", encoding="utf-8")


def write_config(
    tmp: Path,
    name: str = "run",
    *,
    tokens: int = 10240,
    every: int = 0,
    task_every: int = 0,
    limit: int = 48,
    extra: str = "",
) -> Path:
    root = tmp / "corpus"
    if not root.exists():
        write_corpus(root)
    path = tmp / f"{name}.toml"
    text = CONFIG.format(
        name=name,
        out=tmp / "runs",
        root=root,
        tokens=tokens,
        every=every,
        task_every=task_every,
        limit=limit,
    )
    path.write_text(text + extra, encoding="utf-8")
    return path


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """One intra-op thread while training (the test machine is shared; see
    tests/train/runhelpers.py)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)
