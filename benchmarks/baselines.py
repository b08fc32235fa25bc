"""The loops rewarm is compared with: a plain PyTorch loop and Hugging Face Trainer.

Each `worker_*` runs in its own process (started by throughput.py) and returns the
wall time of every timed step plus the model's size, FLOPs per token and peak RSS.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import common
from workload import build_model


def step_result(a: argparse.Namespace, model: Any, times: list[float]) -> dict[str, Any]:
    """What every baseline worker reports for its timed steps (FLOPs per token and
    parameters counted as the trainer counts them)."""
    from rewarm.model.accounting import model_stats

    stats = model_stats(model, a.seq_len)
    return {
        "step_s": times,
        "tokens_per_s": [a.batch_tokens / t for t in times],
        "flops_per_token": stats.flops_per_token,
        "params": stats.params,
        "peak_rss_mb": common.peak_rss_mb(),
    }


def worker_plain_malloc(a: argparse.Namespace) -> dict[str, Any]:
    """The plain loop with glibc told to keep freed memory (what rewarm's trainer does)."""
    import ctypes

    libc = ctypes.CDLL("libc.so.6")
    libc.mallopt(-4, 0)  # M_MMAP_MAX: never serve large blocks with a fresh mmap
    libc.mallopt(-1, 2**31 - 1)  # M_TRIM_THRESHOLD: never give the heap top back
    return worker_plain(a)


def worker_plain(a: argparse.Namespace) -> dict[str, Any]:
    import torch
    import torch.nn.functional as F

    from rewarm.train.optim import param_groups

    torch.manual_seed(0)
    model = build_model(a.preset, a.vocab_size, a.seq_len)
    model.train()
    seqs = a.batch_tokens // a.seq_len
    data = torch.randint(0, a.vocab_size, (seqs * 8, a.seq_len + 1), dtype=torch.int64)
    opt = torch.optim.AdamW(param_groups(model, 0.1), lr=1e-3, betas=(0.9, 0.95), eps=1e-8)
    times = []
    last = time.perf_counter()
    for step in range(a.warmup + a.steps):
        rows = torch.randint(0, data.shape[0], (seqs,))
        batch = data[rows]
        inputs, targets = batch[:, :-1], batch[:, 1:]
        logits = model(input_ids=inputs).logits  # (batch, seq, vocab)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        loss.item()
        now = time.perf_counter()
        if step >= a.warmup:
            times.append(now - last)
        last = now
    return step_result(a, model, times)


def worker_hf(a: argparse.Namespace) -> dict[str, Any]:
    import tempfile

    import torch
    from transformers import Trainer, TrainerCallback, TrainingArguments

    torch.manual_seed(0)
    model = build_model(a.preset, a.vocab_size, a.seq_len)
    seqs = a.batch_tokens // a.seq_len
    ids = torch.randint(0, a.vocab_size, (seqs * (a.warmup + a.steps + 1), a.seq_len))

    class Windows(torch.utils.data.Dataset):
        def __len__(self) -> int:
            return ids.shape[0]

        def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
            return {"input_ids": ids[i], "labels": ids[i]}

    stamps: list[float] = []

    class Clock(TrainerCallback):
        def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            stamps.append(time.perf_counter())

    with tempfile.TemporaryDirectory() as tmp:
        args = TrainingArguments(
            output_dir=tmp,
            per_device_train_batch_size=seqs,
            max_steps=a.warmup + a.steps + 1,
            learning_rate=1e-3,
            lr_scheduler_type="constant",
            weight_decay=0.1,
            adam_beta1=0.9,
            adam_beta2=0.95,
            adam_epsilon=1e-8,
            max_grad_norm=1.0,
            optim="adamw_torch",
            use_cpu=True,
            eval_strategy="no",
            save_strategy="no",
            logging_strategy="no",
            report_to="none",
            disable_tqdm=True,
            dataloader_num_workers=0,
            dataloader_pin_memory=False,
            seed=0,
        )
        trainer = Trainer(model=model, args=args, train_dataset=Windows(), callbacks=[Clock()])
        trainer.train()
    # Interval k is step k's full wall time (data, forward, backward, clip, step).
    intervals = [b - a_ for a_, b in zip(stamps, stamps[1:], strict=False)]
    times = intervals[a.warmup :]
    return step_result(a, model, times)
