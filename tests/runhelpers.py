"""Tiny two-domain runs for the trainer tests: text the test writes, byte tokenizer."""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from rewarm.runconfig import load as load_config

WORDS = {
    "prose": [
        "the",
        "a",
        "river",
        "quietly",
        "flows",
        "under",
        "old",
        "stone",
        "bridges",
        "while",
        "people",
        "walk",
        "home",
    ],
    "code": [
        "def",
        "return",
        "x",
        "y",
        "if",
        "else",
        "for",
        "in",
        "range",
        "print",
        "(",
        ")",
        ":",
        "=",
        "+",
        "1",
        "2",
    ],
}

BASE = """
[run]
name = "{name}"
out_dir = "{out}"
seed = 0

[model]
init = "{init}"
preset = "llama-tiny"

[data]
heldout_fraction = 0.1
heldout_min_tokens = 128

[domains.prose]
source = "{root}/prose/*.txt"

[domains.code]
source = "{root}/code/*.txt"

[train]
seq_len = 32
batch_tokens = 128
micro_batch_tokens = 64
lr = 3e-3
log_every_steps = 1

[eval]
every_tokens = 384
tokens_per_domain = 64

[checkpoint]
every_tokens = 256
keep = 2

[[stages]]
name = "first"
tokens = 768
mix = {{ prose = 1.0 }}
schedule = {{ kind = "cosine", warmup = 128, final_ratio = 0.1 }}

[[stages]]
name = "second"
tokens = 768
mix = {{ code = 1.0 }}
replay = {{ fraction = 0.25 }}
optimizer_state = "{opt_state}"
schedule = {{ kind = "cosine", warmup = 128, final_ratio = 0.1 }}
"""


def write_corpus(root: Path) -> None:
    rng = random.Random(0)
    for name, words in WORDS.items():
        d = root / name
        d.mkdir(parents=True, exist_ok=True)
        for i in range(12):
            text = " ".join(rng.choice(words) for _ in range(400))
            (d / f"{i}.txt").write_text(text + "\n", encoding="utf-8")


def write_config(
    tmp: Path,
    name: str = "run",
    *,
    init: str = "scratch",
    opt_state: str = "keep",
    extra: str = "",
    corpus: Path | None = None,
) -> Path:
    """A config under `tmp` (corpus written once per tmp dir unless given); its path."""
    if corpus is None:
        corpus = tmp / "corpus"
        if not corpus.exists():
            write_corpus(corpus)
    path = tmp / f"{name}.toml"
    text = BASE.format(name=name, out=tmp / "runs", root=corpus, init=init, opt_state=opt_state)
    path.write_text(text + extra, encoding="utf-8")
    return path


def copy_run(cfg: Any, tmp: Path) -> Path:
    """Copy a finished run (and its shards) under `tmp`; the config path that resumes it."""
    runs = tmp / "runs"
    shutil.copytree(cfg.run_dir.parent / "data", runs / "data")
    shutil.copytree(cfg.run_dir, runs / cfg.run.name)
    resolved = runs / cfg.run.name / "config.resolved.toml"
    text = resolved.read_text(encoding="utf-8")
    resolved.write_text(text.replace(str(cfg.run_dir.parent), str(runs)), encoding="utf-8")
    return write_config(tmp, cfg.run.name, corpus=Path(cfg.source).parent / "corpus")


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """Train with one intra-op thread, then restore.

    The test machine is shared: two spinning OpenMP threads on an oversubscribed CPU
    run ~5x slower than one. Runs compared bitwise must use the same thread count,
    so subprocesses get OMP_NUM_THREADS=1 (`ONE_THREAD_ENV`).
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


ONE_THREAD_ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def load(path: Path, *sets: str) -> Any:
    return load_config(path, list(sets))


def records(run_dir: Path, kind: str | None = None) -> list[dict[str, Any]]:
    lines = (run_dir / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
    recs = [json.loads(line) for line in lines]
    return [r for r in recs if kind is None or r["kind"] == kind]


def train_losses(run_dir: Path) -> list[tuple[int, float]]:
    return [(r["step"], r["loss"]) for r in records(run_dir, "train")]


# The CLI, SIGKILLing itself right after writing the train record of step 9: with the
# test configs' checkpoints every 2 steps the last one is step 8, so the kill lands
# mid-stage, between checkpoints, on any machine speed.
_KILLED_AFTER_STEP_9 = """
import os, signal, sys
from rewarm.train import trainer
real = trainer.log_train
def log_then_die(s, *args):
    real(s, *args)
    if s.state.step == 9:
        os.kill(os.getpid(), signal.SIGKILL)
trainer.log_train = log_then_die
from rewarm.cli import main
sys.exit(main(sys.argv[1:]))
"""


def cli(args: list[str]) -> subprocess.CompletedProcess:
    """`python -m rewarm ARGS` on one thread, output captured."""
    return subprocess.run(
        [sys.executable, "-m", "rewarm", *args],
        capture_output=True, text=True, check=False, env=ONE_THREAD_ENV,
    )  # fmt: skip


def cli_killed_after_step_9(args: list[str]) -> None:
    """Run `rewarm ARGS` (a `train`) until it kills itself after step 9's train record;
    fail unless SIGKILL is what ended it."""
    killed = subprocess.run(
        [sys.executable, "-c", _KILLED_AFTER_STEP_9, *args],
        capture_output=True, text=True, check=False, env=ONE_THREAD_ENV,
    )  # fmt: skip
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
