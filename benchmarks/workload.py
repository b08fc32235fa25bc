"""The workload every training benchmark runs: corpus, rewarm config, model.

Two text domains cut from the Python standard library's source, a two-stage rewarm
config (stage 2 replays 25% of stage 1's domain), and the Hugging Face model rewarm
builds from a preset, so that rewarm, the plain loop and HF Trainer all train the
same thing (the plain loop with the trainer's own AdamW groups,
`rewarm.train.optim.param_groups`). Shared by throughput.py, baselines.py,
ceiling.py, overheads.py and scaling.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import common

from rewarm import atomic

WORK_DIR = common.RESULTS_DIR / "work"


def write_corpus(root: Path, mb_per_domain: float = 2.0) -> dict[str, Path]:
    """Two text domains cut from the Python standard library's own source files.

    Content does not matter for speed; it only has to be real text for the tokenizer.
    """
    import sysconfig

    root.mkdir(parents=True, exist_ok=True)
    out = {"a": root / "a.txt", "b": root / "b.txt"}
    if all(p.exists() for p in out.values()):
        return out
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    files = sorted(p for p in stdlib.glob("*.py"))
    limit = int(mb_per_domain * 1e6)
    texts = {"a": [], "b": []}
    sizes = {"a": 0, "b": 0}
    for i, f in enumerate(files):
        name = "a" if i % 2 == 0 else "b"
        if sizes[name] >= limit:
            continue
        text = f.read_text(encoding="utf-8", errors="replace")
        texts[name].append(text)
        sizes[name] += len(text)
    for name, path in out.items():
        atomic.write_text(path, "\n\n".join(texts[name]))
    return out


def rewarm_config(
    *,
    name: str,
    preset: str,
    seq_len: int,
    batch_tokens: int,
    stage1_steps: int,
    stage2_steps: int,
    tokenizer: str,
    out_dir: Path,
    eval_every_tokens: int = 0,
    eval_tokens: int | None = None,
    checkpoint_every_tokens: int = 0,
    corpus: dict[str, Path] | None = None,
    data_dir: Path | None = None,
) -> dict[str, Any]:
    """The raw config dict of a two-stage run: stage 2 replays 25% of stage 1's domain."""
    corpus = corpus or write_corpus(WORK_DIR / "corpus")
    return {
        "run": {"name": name, "out_dir": str(out_dir), "seed": 0},
        "model": {"init": "scratch", "preset": preset},
        "tokenizer": {"kind": tokenizer, "vocab_size": 4096, "sample_bytes": 2_000_000},
        "data": {"dir": str(data_dir or WORK_DIR / f"data-{tokenizer}")},
        "domains": {
            "a": {"source": str(corpus["a"])},
            "b": {"source": str(corpus["b"])},
        },
        "train": {
            "seq_len": seq_len,
            "batch_tokens": batch_tokens,
            "lr": 1e-3,
            "device": "cpu",
        },
        "eval": {
            "every_tokens": eval_every_tokens,
            "tokens_per_domain": eval_tokens if eval_tokens is not None else seq_len,
        },
        "checkpoint": {"every_tokens": checkpoint_every_tokens, "keep": 1},
        "stages": [
            {
                "name": "one",
                "tokens": stage1_steps * batch_tokens,
                "mix": {"a": 1.0},
                "schedule": {"kind": "constant"},
            },
            {
                "name": "two",
                "tokens": stage2_steps * batch_tokens,
                "mix": {"b": 1.0},
                "replay": {"fraction": 0.25, "policy": "uniform"},
                "schedule": {"kind": "constant"},
            },
        ],
    }


def build_model(preset: str, vocab_size: int, seq_len: int) -> Any:
    """The Hugging Face model rewarm's trainer builds for `preset` (same code path)."""
    import torch

    from rewarm.config import config_from_dict
    from rewarm.model.hf import build_model as rewarm_build_model

    raw = rewarm_config(
        name="model",
        preset=preset,
        seq_len=seq_len,
        batch_tokens=seq_len,
        stage1_steps=1,
        stage2_steps=1,
        tokenizer="byte",
        out_dir=WORK_DIR / "runs",
    )
    torch.manual_seed(0)
    return rewarm_build_model(config_from_dict(raw, source="workload.py"), vocab_size)
