"""A two-domain corpus whose old domain holds knowledge a task can ask about.

Domain `api` calls `OBJ.ATTR(...)` with one fixed attribute per object; domain
`other` calls the same objects with *other* attributes. A model trained on `api`
learns which attribute follows each object; training on `other` afterwards
overwrites it. `write_recall_task` writes a local harness task (a YAML file and its
JSONL items, no hub) asking exactly that, which the tiny model learns to 100% in a
few dozen steps with 4 objects and then forgets. The built-in tasks
(`rewarm:next-line:api`, `rewarm:names:api`) run on the same corpus; `names` needs
the 16-object corpus (one item per distinct attribute). Byte tokenizer,
`llama-tiny`, CPU.
"""

from __future__ import annotations

import contextlib
import json
import random
from collections.abc import Iterator
from pathlib import Path

import torch

OBJECTS = ["alpha", "bravo", "delta", "gamma", "kappa", "omega", "sigma", "theta",
           "hotel", "india", "julia", "lemon", "mango", "oscar", "pluto", "romeo"]  # fmt: skip
# Four attribute names of each length 5..8, so every distractor matches exactly.
API = ["apply", "build", "count", "fetch", "append", "bisect", "create", "decode",
       "compile", "execute", "extract", "iterate", "allocate", "dispatch", "finalize",
       "generate"]  # fmt: skip
OTHER = ["merge", "parse", "query", "store", "insert", "jitter", "kindle", "launch",
         "measure", "observe", "publish", "recover", "schedule", "simulate", "template",
         "validate"]  # fmt: skip
VARS = ["x", "y", "z", "n", "k"]

# The shared run of conftest.py: 4 objects, long enough for the tiny model to learn
# `api` (the recall task reaches ~1 by the end of stage 1) and to forget it in stage 2.
OBJECTS_LEARNT = 4
STAGE_TOKENS = 30720
TASK_EVERY = 10240
LIMIT = 24
RECALL = "api_recall"
RECALL_ITEMS = 48

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
tasks = [
  {{ task = "rewarm:next-line:api", limit = {limit} }},
  {{ task = "{recall}", domain = "api" }},
]
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


def write_corpus(root: Path, objects: int, docs: int = 30, lines: int = 24) -> None:
    rng = random.Random(0)
    for domain, attrs in (("api", API), ("other", OTHER)):
        d = root / domain
        d.mkdir(parents=True, exist_ok=True)
        for i in range(docs):
            rows = []
            for _ in range(lines):
                k = rng.randrange(objects)
                a, b = rng.choice(VARS), rng.choice(VARS)
                rows.append(f"{a} = {OBJECTS[k]}.{attrs[k]}({b})")
            (d / f"{i:03d}.py").write_text("\n".join(rows) + "\n", encoding="utf-8")


def write_recall_task(directory: Path, objects: int) -> Path:
    """A harness task file with local data: after a line of `api` code, `v = OBJ.`;
    which of the first `objects` API names follows (balanced over the objects)."""
    rng = random.Random(1)
    directory.mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(RECALL_ITEMS):
        k, j = i % objects, rng.randrange(objects)
        before = f"{rng.choice(VARS)} = {OBJECTS[j]}.{API[j]}({rng.choice(VARS)})"
        context = f"{before}\n{rng.choice(VARS)} = {OBJECTS[k]}."
        rows.append({"context": context, "choices": API[:objects], "label": k})
    rng.shuffle(rows)
    data = directory / f"{RECALL}.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    path = directory / f"{RECALL}.yaml"
    path.write_text(
        f"task: {RECALL}\n"
        "dataset_path: json\n"
        f"dataset_kwargs:\n  data_files:\n    test: {data}\n"
        "test_split: test\n"
        "output_type: multiple_choice\n"
        "doc_to_text: context\n"
        "doc_to_choice: choices\n"
        "doc_to_target: label\n"
        "target_delimiter: ''\n"
        "metric_list:\n  - metric: acc\n    aggregation: mean\n    higher_is_better: true\n",
        encoding="utf-8",
    )
    return path


def write_config(
    tmp: Path,
    name: str = "run",
    *,
    objects: int = len(OBJECTS),
    tokens: int = 10240,
    every: int = 0,
    task_every: int = 0,
    limit: int = LIMIT,
    extra: str = "",
) -> Path:
    """A two-stage config (api, then other) under `tmp`, corpus and recall task made
    once per directory."""
    root = tmp / "corpus"
    if not root.exists():
        write_corpus(root, objects)
    recall = write_recall_task(tmp / "tasks", objects)
    path = tmp / f"{name}.toml"
    text = CONFIG.format(
        name=name,
        out=tmp / "runs",
        root=root,
        tokens=tokens,
        every=every,
        task_every=task_every,
        limit=limit,
        recall=recall,
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
