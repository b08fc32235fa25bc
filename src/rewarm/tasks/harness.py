"""Tasks through lm-evaluation-harness, on the model in memory.

The model is wrapped in the harness's own Hugging Face adapter (`HFLM`, which takes
a `PreTrainedModel` instance and a tokenizer), not in a new `LM` subclass computing
log-likelihoods with rewarm's forward: the harness's tokenisation of context and
continuation, truncation, batching and metric code are then exactly those of
`lm_eval --model hf` on the exported checkpoint, so a value logged during training
is the value a user reproduces standalone (tests/tasks compares the two). rewarm
only adds what training needs around it:

- the global random state (python, numpy, torch) is saved and restored around the
  harness, which seeds all three (with its own defaults, as standalone), so task
  evaluation never changes the training run's random streams;
- the model's train/eval mode is restored, progress bars and the harness's INFO and
  WARNING logging are off inside the training loop;
- under torchrun with DDP the harness shards the items over the ranks (each rank's
  unwrapped replica scores its share; counts and metrics are gathered with
  `torch.distributed`, rank 0 gets the results). Under FSDP every rank must run
  every forward of the sharded model, so every rank evaluates all items and rank 0
  reports.

Import this module only when a task is evaluated: it imports the harness (the
`tasks` extra; `rewarm.extras.require("lm_eval", ...)` first gives the install
command instead of an ImportError).
"""

from __future__ import annotations

import contextlib
import io
import logging
import math
import random
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from lm_eval.evaluator import evaluate as harness_evaluate
from lm_eval.models.huggingface import HFLM
from lm_eval.tasks import TaskManager

from rewarm.config import Config, TaskSection
from rewarm.data.shards import DomainData
from rewarm.data.tokenizer import Tokenizer
from rewarm.errors import UserError
from rewarm.tasks import heldout_tasks
from rewarm.tasks.spec import is_yaml, parse_builtin, task_domain

RANDOM_SEED, NUMPY_SEED, TORCH_SEED, FEWSHOT_SEED = 0, 1234, 1234, 1234
"""The seeds `lm_eval` (`simple_evaluate`) sets by default, set here the same way so
training and a standalone run agree."""


@dataclass(frozen=True, kw_only=True)
class HarnessTask:
    """One `eval.tasks` entry, ready for the harness."""

    spec: str
    """What the harness loads: a task/group name or a YAML path."""
    num_fewshot: int
    limit: int | None
    domain: str | None
    label: str
    """The entry as the user wrote it (messages)."""


@dataclass(frozen=True, kw_only=True)
class TaskResult:
    task: str
    metric: str
    value: float
    stderr: float | None
    higher_is_better: bool | None
    samples: int | None
    domain: str | None


def resolve(
    entries: list[TaskSection],
    where: str,
    *,
    cfg: Config | None = None,
    domains: dict[str, DomainData] | None = None,
    tok: Tokenizer | None = None,
) -> list[HarnessTask]:
    """`HarnessTask`s of `entries` (`where` names them in messages: "run.toml:
    eval.tasks"). Built-in tasks are written (or reused) next to the shards first,
    which needs the run's `cfg`, its prepared `domains` and its tokenizer."""
    out = []
    for i, entry in enumerate(entries):
        at = f"{where}[{i}]"
        b = parse_builtin(entry.task, at)
        if b is not None:
            if cfg is None or domains is None or tok is None:
                raise UserError(f"{at}: {entry.task}: built-in tasks need the run's config")
            spec = str(heldout_tasks.ensure(cfg, b, domains[b.domain], tok, at))
        elif is_yaml(entry.task):
            spec = str(Path(entry.task).resolve())
        else:
            spec = entry.task
        out.append(
            HarnessTask(
                spec=spec,
                num_fewshot=entry.num_fewshot,
                limit=entry.limit or None,
                domain=task_domain(entry, at),
                label=entry.task,
            )
        )
    return out


class _InMemoryLM(HFLM):
    """`HFLM` around a model instance, optionally sharding items over torch.distributed
    ranks (the harness's "custom distributed integration")."""

    def __init__(self, *, rank: int, world_size: int, quiet: bool, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._rank, self._world_size, self._quiet = rank, world_size, quiet

    def all_gather(self, tensor: torch.Tensor) -> torch.Tensor:
        if self.world_size <= 1:
            return tensor
        parts = [torch.zeros_like(tensor) for _ in range(self.world_size)]
        dist.all_gather(parts, tensor)
        return torch.stack(parts) if tensor.dim() == 0 else torch.cat(parts)

    def barrier(self) -> None:
        if self.world_size > 1:
            dist.barrier()

    def loglikelihood(self, requests: Any, disable_tqdm: bool = False) -> Any:
        return super().loglikelihood(requests, disable_tqdm=disable_tqdm or self._quiet)

    def loglikelihood_rolling(self, requests: Any, disable_tqdm: bool = False) -> Any:
        return super().loglikelihood_rolling(requests, disable_tqdm=disable_tqdm or self._quiet)

    def generate_until(self, requests: Any, disable_tqdm: bool = False) -> Any:
        return super().generate_until(requests, disable_tqdm=disable_tqdm or self._quiet)


@contextlib.contextmanager
def preserved_rng() -> Iterator[None]:
    """Restore python's, numpy's and torch's global random state on exit."""
    py, np_state, cpu = random.getstate(), np.random.get_state(), torch.get_rng_state()
    cuda = (
        torch.cuda.get_rng_state_all()
        if torch.cuda.is_available() and torch.cuda.is_initialized()
        else None
    )
    try:
        yield
    finally:
        random.setstate(py)
        np.random.set_state(np_state)
        torch.set_rng_state(cpu)
        if cuda is not None:
            torch.cuda.set_rng_state_all(cuda)


@contextlib.contextmanager
def _quiet(enabled: bool) -> Iterator[None]:
    """The harness's logging at ERROR, `datasets` progress bars off, and what the
    harness prints on stderr (its request-building bars) held back, shown only if it
    fails."""
    if not enabled:
        yield
        return
    import datasets

    log = logging.getLogger("lm_eval")
    level, bars = log.level, datasets.is_progress_bar_enabled()
    log.setLevel(logging.ERROR)
    datasets.disable_progress_bars()
    held = io.StringIO()
    try:
        with contextlib.redirect_stderr(held):
            yield
    except BaseException:
        sys.stderr.write(held.getvalue())
        raise
    finally:
        log.setLevel(level)
        if bars:
            datasets.enable_progress_bars()


def run_task(lm: HFLM, manager: TaskManager, task: HarnessTask) -> dict[str, Any] | None:
    """What `lm_eval.simple_evaluate` does for one task and an `LM` instance: seed,
    load, set the few-shot count (kept at 0 where the task's YAML says 0, as the
    harness does) and the few-shot seed, evaluate. Without its environment report
    (it runs `pip list` on every call)."""
    random.seed(RANDOM_SEED)
    np.random.seed(NUMPY_SEED)
    torch.manual_seed(TORCH_SEED)
    loaded = manager.load([task.spec])
    for obj in loaded["tasks"].values():
        if obj.get_config("num_fewshot") != 0:
            obj.set_config(key="num_fewshot", value=task.num_fewshot)
        obj.set_fewshot_seed(seed=FEWSHOT_SEED)
    res = harness_evaluate(lm=lm, task_dict=loaded, limit=task.limit, log_samples=False)
    return None if res is None else dict(res)


def _number(x: object) -> float | None:
    if isinstance(x, bool) or not isinstance(x, int | float):
        return None
    return float(x)


def parse_results(out: dict[str, Any], domain: str | None) -> list[TaskResult]:
    """Every metric of every task (and group) in a `simple_evaluate` result."""
    better = out.get("higher_is_better", {})
    counts = out.get("n-samples", {})
    results: list[TaskResult] = []
    for task, metrics in out.get("results", {}).items():
        n = counts.get(task, {}).get("effective") if isinstance(counts.get(task), dict) else None
        for key, raw in metrics.items():
            value = _number(raw)
            if value is None or "_stderr," in key or "," not in key:
                continue
            metric, _, filt = key.partition(",")
            stderr = _number(metrics.get(f"{metric}_stderr,{filt}"))
            hib = better.get(task, {}).get(metric)
            results.append(
                TaskResult(
                    task=task,
                    metric=metric if filt == "none" else f"{metric},{filt}",
                    value=value,
                    stderr=None if stderr is None or math.isnan(stderr) else stderr,
                    higher_is_better=hib if isinstance(hib, bool) else None,
                    samples=int(n) if isinstance(n, int) else None,
                    domain=domain,
                )
            )
    return results


class TaskEvaluator:
    """Evaluates a model on `tasks` through the harness (see the module doc)."""

    def __init__(
        self,
        tasks: list[HarnessTask],
        tokenizer: Any,
        *,
        batch_size: int,
        rank: int = 0,
        world_size: int = 1,
        shard: bool = True,
        quiet: bool = True,
    ) -> None:
        self.tasks = tasks
        self.tokenizer = tokenizer
        """The Hugging Face tokenizer of the model (`Tokenizer.to_hf()`)."""
        self.batch_size = batch_size
        self.rank = rank
        self.shard_over = world_size if shard else 1
        self.quiet = quiet
        names = [t.spec for t in tasks if not is_yaml(t.spec)]
        yaml_dirs = sorted({str(Path(t.spec).parent) for t in tasks if is_yaml(t.spec)})
        with _quiet(quiet):
            # The harness's own index (thousands of YAML files, ~20 s) only when a task
            # is named rather than given as a file.
            self.manager = TaskManager(include_path=yaml_dirs or None, include_defaults=bool(names))

    def evaluate(self, model: torch.nn.Module) -> list[TaskResult]:
        """Every task's metrics (on every rank when sharded: [] except on rank 0)."""
        was_training = model.training
        out: list[TaskResult] = []
        try:
            with preserved_rng(), _quiet(self.quiet), torch.no_grad():
                lm = _InMemoryLM(
                    pretrained=model,
                    tokenizer=self.tokenizer,
                    backend="causal",
                    batch_size=self.batch_size,
                    rank=self.rank if self.shard_over > 1 else 0,
                    world_size=self.shard_over,
                    quiet=self.quiet,
                )
                for t in self.tasks:
                    res = run_task(lm, self.manager, t)
                    if res is not None:
                        out += parse_results(res, t.domain)
        finally:
            model.train(was_training)
        return out if self.rank == 0 else []
