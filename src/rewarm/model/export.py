"""`rewarm export`: a rewarm checkpoint -> a Hugging Face model directory.

The output holds `config.json`, `model.safetensors` (via `save_pretrained`) and
the tokenizer files the checkpoint carries (written by the tokenizer's
`to_hf()`), so `AutoModelForCausalLM.from_pretrained(DIR)` and
`AutoTokenizer.from_pretrained(DIR)` load it with no rewarm installed. The
directory is built under a temporary name and swapped into place (`rewarm.atomic`).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from rewarm import atomic, checkpoint
from rewarm.errors import UserError
from rewarm.model.hf import load_checkpoint_model, resolve_checkpoint_dir


def export(source: str | Path, out: str | Path, *, force: bool = False) -> Path:
    """Write the model of checkpoint `source` (or a run's latest) to `out`."""
    ckpt = resolve_checkpoint_dir(source, "CHECKPOINT")
    out = Path(out)
    if out.exists() and any(out.iterdir()) and not force:
        raise UserError(f"--out {out}: exists and is not empty (pass --force to replace it)")
    model = load_checkpoint_model(ckpt, where="CHECKPOINT")
    model.config.use_cache = True  # inference default for the exported model
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic.directory(out) as tmp:
        model.save_pretrained(str(tmp), safe_serialization=True)
        tok_dir = ckpt / checkpoint.TOKENIZER
        if tok_dir.is_dir():
            for f in tok_dir.iterdir():
                shutil.copy2(f, tmp / f.name)
    return out
