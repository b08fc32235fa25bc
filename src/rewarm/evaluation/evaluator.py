"""Held-out loss of every declared domain on a fixed token sample.

For each domain, `tokens_per_domain // seq_len` windows of `seq_len + 1` tokens
are taken from the held-out memmap at evenly spaced offsets (the same windows
for the whole run, so successive evaluations differ only by the model). The
loss is the mean next-token cross-entropy in nats over all predicted tokens;
bits per byte = loss / ln 2 / bytes_per_token of the held-out split, which
compares runs with different tokenizers (SCIENCE.md section 4).

With `train.document_mask`, each window is evaluated with the same document masking
as training (`rewarm.model.packing`). Evaluation runs under `torch.inference_mode`
in large batches; under
`torchrun` each rank evaluates a slice of the windows and the sums are
all-reduced, so every rank returns the same numbers.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from rewarm.config import Config
from rewarm.config.derived import micro_batch_rows
from rewarm.data.shards import DomainData
from rewarm.errors import UserError
from rewarm.model import precision as precision_mod
from rewarm.model.packing import document_positions

Autocast = Callable[[], contextlib.AbstractContextManager]


@dataclass(frozen=True)
class DomainEval:
    domain: str
    loss: float
    """Mean nats per predicted token."""
    bits_per_byte: float
    tokens: int
    """Predicted tokens the loss averages over."""


def eval_windows(
    heldout: np.ndarray, tokens_per_domain: int, seq_len: int, where: str
) -> np.ndarray:
    """Fixed (n, seq_len + 1) int64 windows spread evenly over the held-out tokens."""
    width = seq_len + 1
    if len(heldout) < width:
        raise UserError(
            f"{where}: held-out split has {len(heldout)} tokens, fewer than one evaluation "
            f"window (train.seq_len + 1 = {width}); add text or raise data.heldout_min_tokens"
        )
    n = max(1, tokens_per_domain // seq_len)
    # Evenly spaced starts: disjoint windows when the split is long enough, overlapping
    # ones (still fixed) when it is short.
    starts = np.linspace(0, len(heldout) - width, n).round().astype(np.int64)
    return np.stack([np.asarray(heldout[s : s + width], dtype=np.int64) for s in starts])


class Evaluator:
    """Evaluates one model on fixed windows of every domain.

    `domains` maps name -> (held-out tokens, bytes per held-out token).
    """

    def __init__(
        self,
        domains: dict[str, tuple[np.ndarray, float]],
        *,
        tokens_per_domain: int,
        seq_len: int,
        batch_rows: int,
        device: torch.device,
        autocast: Autocast = contextlib.nullcontext,
        rank: int = 0,
        world_size: int = 1,
        all_reduce_sum: Callable[[torch.Tensor], None] = lambda t: None,
        inference_mode: bool = True,
        document_eos: int | None = None,
    ) -> None:
        self.inference_mode = inference_mode
        self.document_eos = document_eos
        self.batch_rows = max(1, batch_rows)
        self.device = device
        self.autocast = autocast
        self.all_reduce_sum = all_reduce_sum
        self.samples: dict[str, tuple[torch.Tensor, float]] = {}
        for name, (heldout, bytes_per_token) in domains.items():
            windows = eval_windows(heldout, tokens_per_domain, seq_len, f"domain {name!r}")
            mine = torch.from_numpy(windows[rank::world_size].copy())
            self.samples[name] = (mine, bytes_per_token)

    def evaluate(
        self, model: torch.nn.Module, domains: list[str] | None = None
    ) -> list[DomainEval]:
        """Loss and bits per byte of `model` on every (or the named) domain."""
        # FSDP2 reuses buffers for unsharded parameters in training: tensors made under
        # inference mode could not be updated later, so sharded models get no_grad.
        with torch.inference_mode() if self.inference_mode else torch.no_grad():
            return self._evaluate(model, domains)

    def _evaluate(self, model: torch.nn.Module, domains: list[str] | None) -> list[DomainEval]:
        was_training = model.training
        model.eval()
        out = []
        try:
            for name in domains or list(self.samples):
                windows, bytes_per_token = self.samples[name]
                sums = torch.zeros(2, dtype=torch.float64, device=self.device)  # nats, tokens
                for chunk in windows.split(self.batch_rows):
                    x = chunk.to(self.device, non_blocking=True)
                    with self.autocast():
                        logits = self._logits(model, x[:, :-1])
                    nats = F.cross_entropy(
                        logits.flatten(0, 1).float(), x[:, 1:].flatten(), reduction="sum"
                    )
                    sums[0] += nats.double()
                    sums[1] += x[:, 1:].numel()
                self.all_reduce_sum(sums)
                nats_sum, count = sums.tolist()
                loss = nats_sum / max(count, 1.0)
                bpb = loss / math.log(2) / bytes_per_token if bytes_per_token > 0 else float("nan")
                out.append(DomainEval(name, loss, bpb, int(count)))
        finally:
            model.train(was_training)
        return out

    def _logits(self, model: torch.nn.Module, inputs: torch.Tensor) -> torch.Tensor:
        if self.document_eos is None:
            return model(input_ids=inputs).logits
        positions = document_positions(inputs, self.document_eos)
        return model(input_ids=inputs, position_ids=positions).logits


def document_eos(cfg: Config, domains: Mapping[str, DomainData]) -> int | None:
    """The end-of-document id when `train.document_mask` is on (from the manifests,
    which all name the run's tokenizer), else None."""
    if not cfg.train.document_mask:
        return None
    ids = {int(d.manifest["eos_id"]) for d in domains.values() if "eos_id" in d.manifest}
    if len(ids) != 1:
        raise UserError(
            f"{cfg.source}: train.document_mask needs one end-of-document id across the "
            f"domains' manifests, found {sorted(ids)}; run `rewarm prepare --force`"
        )
    return ids.pop()


def device_autocast(device: torch.device) -> Autocast:
    """The precision of `train.precision = "auto"` on `device` (`rewarm.model.precision`):
    bf16 autocast on a CUDA device with bf16 (fp32 master weights), plain fp32 elsewhere."""
    return precision_mod.autocast(precision_mod.resolve("auto", device), device)


def build_evaluator(
    cfg: Config,
    domains: Mapping[str, DomainData],
    *,
    device: torch.device,
    names: Sequence[str] | None = None,
    rank: int = 0,
    world_size: int = 1,
    all_reduce_sum: Callable[[torch.Tensor], None] = lambda t: None,
    inference_mode: bool = True,
    precision: str | None = None,
) -> Evaluator:
    """The evaluator of a run: `eval.tokens_per_domain` fixed windows of each domain's
    held-out split (all, or `names`), in batches of twice the training micro-batch
    (`rewarm.config.derived.micro_batch_rows`) on `device` in the training precision
    (`precision` as resolved by the caller, else `train.precision` resolved here).
    With the training's document masking (`train.document_mask`).
    The trainer and `rewarm eval` both build it here, so their numbers agree."""
    chosen = list(domains) if names is None else list(names)
    if precision is None:
        precision = precision_mod.resolve(
            cfg.train.precision, device, f"{cfg.source}: train.precision"
        )
    return Evaluator(
        {n: (domains[n].heldout, domains[n].bytes_per_token_heldout) for n in chosen},
        tokens_per_domain=cfg.eval.tokens_per_domain,
        seq_len=cfg.train.seq_len,
        batch_rows=2 * micro_batch_rows(cfg.train, world_size),
        device=device,
        autocast=precision_mod.autocast(precision, device),
        rank=rank,
        world_size=world_size,
        all_reduce_sum=all_reduce_sum,
        inference_mode=inference_mode,
        document_eos=document_eos(cfg, domains),
    )
