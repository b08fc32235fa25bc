"""Everything the loop needs, built once: data, model, optimizer, sampler, plan,
evaluator, metrics log, and the loop state (fresh or restored from a checkpoint).

Build order matters for exact resume and for data parallelism:
seed -> data -> model (weights from a full checkpoint, if resuming) -> activation
checkpointing -> wrap (DDP or FSDP2) -> optimizer (state from a full checkpoint;
weights and state from a sharded one, which loads into the wrapped model) ->
sampler (state) -> RNG states (restored last, after everything that draws random
numbers at build time).
"""

from __future__ import annotations

import contextlib
import logging
import platform
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from rewarm import __version__, atomic, checkpoint
from rewarm.config import Config, resolved_toml
from rewarm.config.derived import checkpoint_format, eval_interval, rows_per_rank, stage_steps
from rewarm.data.mixture import MixtureSampler
from rewarm.data.shards import DomainData
from rewarm.data.tokenizer import Tokenizer
from rewarm.errors import UserError
from rewarm.evaluation.evaluator import DomainEval, Evaluator, build_evaluator
from rewarm.mitigate.stage import StageMitigation
from rewarm.model import packing, precision
from rewarm.model.accounting import ModelStats, model_stats
from rewarm.model.hf import build_model
from rewarm.model.peak_flops import peak_flops
from rewarm.runlog import (
    METRICS_FILE,
    NullLog,
    RunLogWriter,
    RunStart,
    ScheduleChanged,
    Sink,
    WorldSizeChanged,
)
from rewarm.schedules import StagePlan
from rewarm.train import activation_checkpointing, distributed, optim
from rewarm.train.changes import RESOLVED
from rewarm.train.distributed import DistEnv
from rewarm.train.phases import PhaseClock
from rewarm.train.progress import Progress
from rewarm.train.step import loss_module

if TYPE_CHECKING:
    from rewarm.tasks.harness import TaskEvaluator, TaskResult

logger = logging.getLogger(__name__)


@dataclass
class LoopState:
    """Where the loop is; saved in every checkpoint's state.json as `loop`."""

    stage: int = 0
    """Index of the current stage (== number of stages when the run is done)."""
    stage_step: int = 0
    """Optimizer steps done in the current stage."""
    step: int = 0
    """Optimizer steps done in the run (skipped non-finite steps included)."""
    tokens: int = 0
    """Training tokens consumed (global batch tokens x steps)."""
    stage_started: bool = False
    """The current stage's start record, optimizer reset and evaluation are done."""
    nonfinite_skips: int = 0
    metrics_lines: int = 0
    """Lines of metrics.jsonl written up to this state (resume truncates to it)."""

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LoopState:
        """From a checkpoint's `loop`; KeyError/TypeError on missing, unknown or mistyped keys
        (a default would silently restart counters such as `metrics_lines`)."""
        missing = {f.name for f in fields(cls)} - set(d)
        if missing:
            raise KeyError(f"loop.{sorted(missing)[0]}")
        state = cls(**d)
        for name, value in asdict(state).items():
            want = bool if name == "stage_started" else int
            if type(value) is not want or (want is int and value < 0):
                raise TypeError(f"loop.{name} = {value!r}")
        return state


@dataclass
class Session:
    cfg: Config
    env: DistEnv
    model: torch.nn.Module
    """The unwrapped model (FSDP2-sharded in place under train.fsdp)."""
    forward: torch.nn.Module
    """What the training step calls, tokens -> summed nats: `step.loss_module` around
    the DDP/FSDP-wrapped model, compiled under train.compile."""
    no_sync: Callable[[], contextlib.AbstractContextManager]
    autocast: Callable[[], contextlib.AbstractContextManager]
    params: list[torch.nn.Parameter]
    optimizer: torch.optim.AdamW
    sampler: MixtureSampler
    plan: StagePlan
    evaluator: Evaluator
    log: RunLogWriter | NullLog
    progress: Progress
    stats: ModelStats
    peak_flops: float
    stage_steps: list[int]
    """Optimizer steps of each stage: ceil(stage.tokens / batch_tokens)."""
    stage_starts: list[int]
    """Plan position (tokens) where each stage starts: the sum of earlier stages' tokens."""
    state: LoopState = field(default_factory=LoopState)
    last_eval: tuple[int, list[DomainEval]] | None = None
    """(step, results) of the latest evaluation; a stage start reuses its predecessor's end."""
    model_config_json: str = ""
    tokenizer_dir: Path = Path()
    """The tokenizer's Hugging Face files (from `to_hf()`), copied into each checkpoint."""
    checkpoint_format: str = "full"
    """How this run writes checkpoints: "full" or "sharded" (`derived.checkpoint_format`)."""
    clock: PhaseClock = field(default_factory=PhaseClock)
    """Seconds per phase of the loop (the loop starts a fresh one)."""
    startup_seconds: float = 0.0
    """Wall seconds `open_session` took (data, model, optimizer, restored state)."""
    mitigation: StageMitigation | None = None
    """The current stage's average / MER / merge (`rewarm.mitigate.stage`), if it has any."""
    tasks: TaskEvaluator | None = None
    """lm-evaluation-harness tasks (`eval.tasks`), None when there are none."""
    last_tasks: tuple[int, list[TaskResult]] | None = None
    """(step, results) of the latest task evaluation, reused like `last_eval`."""
    task_evaluations: int = 0
    """Task evaluations this process ran (their time is in the `eval` phase)."""

    @property
    def ckpt_root(self) -> Path:
        return self.cfg.run_dir / "checkpoints"

    def position(self) -> int:
        """Plan position of the next step's first token."""
        s = self.state
        return self.stage_starts[s.stage] + s.stage_step * self.cfg.train.batch_tokens


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def rng_state() -> dict[str, Any]:
    """JSON-safe RNG states of python, numpy, torch (and CUDA)."""
    np_state = np.random.get_state(legacy=True)
    assert isinstance(np_state, tuple)  # legacy=True: ("MT19937", keys, pos, has_gauss, gauss)
    py = random.getstate()
    out: dict[str, Any] = {
        "python": [py[0], list(py[1]), py[2]],
        "numpy": [np_state[0], np_state[1].tolist(), *(x for x in np_state[2:])],
        "torch": torch.get_rng_state().tolist(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        out["cuda"] = [s.tolist() for s in torch.cuda.get_rng_state_all()]
    return out


def set_rng_state(state: dict[str, Any]) -> None:
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, np.array(keys, dtype=np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(torch.tensor(state["torch"], dtype=torch.uint8))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([torch.tensor(s, dtype=torch.uint8) for s in state["cuda"]])


def versions() -> dict[str, str]:
    import transformers

    return {
        "rewarm": __version__,
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
    }


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{device} ({torch.cuda.get_device_name(device)})"
    return f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


def load_data(cfg: Config, env: DistEnv, progress: bool) -> tuple[dict[str, DomainData], Tokenizer]:
    """Prepare shards on rank 0 (others wait, then open them); the tokenizer."""
    from rewarm.data import prepare, shards, tokenizer

    domains = prepare.prepare(cfg, progress=progress) if env.is_main else None
    distributed.barrier(env)
    if domains is None:
        domains = {name: shards.open_domain(cfg.data_dir / name) for name in cfg.domains}
    return domains, tokenizer.load_tokenizer(cfg)


def open_session(cfg: Config, env: DistEnv, *, progress: bool = True) -> Session:
    started = time.perf_counter()
    t = cfg.train
    rows_per_rank(cfg, env.world_size)  # refuse an uneven split before preparing data
    seed_everything(cfg.run.seed)
    domains, tok = load_data(cfg, env, progress)
    ckpt = checkpoint.latest(cfg.run_dir / "checkpoints")
    saved = checkpoint.read_state(ckpt) if ckpt is not None else None
    if ckpt is not None and saved is not None:
        if not isinstance(saved.get("plan_fingerprint", ""), str):
            # Missing is an older checkpoint; present but not a string is corruption.
            raise UserError(f"{ckpt / checkpoint.STATE}: malformed plan_fingerprint (not a string)")
        # Checked now, restored last: a bad one must stop the run before the log is cut.
        with checkpoint.malformed(ckpt, "RNG state"):
            current = rng_state()
            set_rng_state(saved["rng"])
            set_rng_state(current)

    prec = precision.resolve(t.precision, env.device, f"{cfg.source}: train.precision")
    sharded = ckpt is not None and checkpoint.is_sharded(ckpt)
    model = build_model(cfg, tok.vocab_size, getattr(tok, "eos_id", None), tokenizer=tok)
    document_eos = tok.eos_id if t.document_mask else None
    if document_eos is not None:
        packing.check_model(
            model, document_eos, tok.vocab_size, f"{cfg.source}: train.document_mask"
        )
    if ckpt is not None and saved is not None and not sharded:
        checkpoint.assign_weights(model, checkpoint.load_weights(ckpt), str(ckpt))
    stats = model_stats(model, t.seq_len)
    model_config_json = model.config.to_json_string()
    activation_checkpointing.apply(
        model, t.activation_checkpointing, f"{cfg.source}: train.activation_checkpointing"
    )
    model.to(env.device)  # type: ignore[arg-type]  # transformers' `to` (see model.hf)
    wrapped = distributed.wrap(model, env, t.fsdp)
    forward = loss_module(
        wrapped, compile=t.compile, distributed=env.distributed, document_eos=document_eos
    )
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = optim.build_optimizer(model, t, env.device)
    if ckpt is not None and saved is not None:
        _restore_tensors(ckpt, model, optimizer, sharded, t.fsdp and env.distributed)

    sampler = MixtureSampler(cfg, domains, rank=env.rank, world_size=env.world_size)
    if ckpt is not None and saved is not None:
        with checkpoint.malformed(ckpt, "sampler state"):
            sampler.load_state_dict(saved["sampler"])
    evaluator = build_evaluator(
        cfg,
        domains,
        device=env.device,
        rank=env.rank,
        world_size=env.world_size,
        all_reduce_sum=distributed.all_reduce_sum(env),
        inference_mode=not (t.fsdp and env.distributed),
        precision=prec,
    )
    tasks = _task_evaluator(cfg, env, domains, tok)
    stage_tokens = [st.tokens for st in cfg.stages]
    state = LoopState()
    if ckpt is not None and saved is not None:
        with checkpoint.malformed(ckpt, "loop state"):
            state = LoopState.from_dict(saved["loop"])
    log: RunLogWriter | NullLog = NullLog()
    if env.is_main:
        cfg.run_dir.mkdir(parents=True, exist_ok=True)
        _write_resolved(cfg)
        _save_tokenizer(tok, cfg.run_dir / "tokenizer")
        log = RunLogWriter(cfg.run_dir / METRICS_FILE, _sinks(cfg, resume=saved is not None))
    log.truncate(state.metrics_lines)
    session = Session(
        cfg=cfg,
        env=env,
        model=model,
        forward=forward,
        no_sync=distributed.no_sync(wrapped),
        autocast=precision.autocast(prec, env.device),
        params=params,
        optimizer=optimizer,
        sampler=sampler,
        plan=StagePlan.from_config(cfg),
        evaluator=evaluator,
        log=log,
        progress=Progress(0, 0, enabled=False),
        stats=stats,
        peak_flops=peak_flops(env.device),
        stage_steps=[stage_steps(cfg, i) for i in range(len(cfg.stages))],
        stage_starts=[sum(stage_tokens[:i]) for i in range(len(stage_tokens))],
        state=state,
        model_config_json=model_config_json,
        tokenizer_dir=cfg.run_dir / "tokenizer",
        checkpoint_format=checkpoint_format(cfg, env.world_size),
        tasks=tasks,
    )
    _run_record(session, saved)
    if ckpt is not None and saved is not None:
        with checkpoint.malformed(ckpt, "RNG state"):
            set_rng_state(saved["rng"])
    total = sum(session.stage_steps) * t.batch_tokens
    first = cfg.stages[min(state.stage, len(cfg.stages) - 1)].name
    session.progress = Progress(total, state.tokens, enabled=progress and env.is_main, stage=first)
    session.startup_seconds = round(time.perf_counter() - started, 6)
    return session


def _restore_tensors(
    ckpt: Path,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    sharded: bool,
    fsdp: bool,
) -> None:
    """The optimizer state of a full checkpoint (its weights are already in), or the
    weights and optimizer state of a sharded one, resharded to this run's processes."""
    if sharded:
        from rewarm import sharded_checkpoint  # torch.distributed.checkpoint: 1-3 s to import

        state = distributed.sharded_state(model, optimizer)  # templates of this run's shards
        sharded_checkpoint.load(ckpt, state)
        with checkpoint.malformed(ckpt, f"state in {checkpoint.SHARDS}/"):
            distributed.load_sharded_state(model, optimizer, state)
        return
    opt_state = checkpoint.load_optimizer(ckpt)
    if opt_state is not None:
        with checkpoint.malformed(ckpt, f"optimizer state in {checkpoint.OPTIMIZER}"):
            distributed.load_optimizer_state(model, optimizer, opt_state, fsdp)


def _task_evaluator(
    cfg: Config, env: DistEnv, domains: dict[str, DomainData], tok: Tokenizer
) -> TaskEvaluator | None:
    """The harness tasks of `eval.tasks` (built-in ones written by rank 0 first)."""
    if not cfg.eval.tasks:
        return None
    from rewarm.tasks import harness

    where = f"{cfg.source}: eval.tasks"
    if env.is_main:
        harness.resolve(cfg.eval.tasks, where, cfg=cfg, domains=domains, tok=tok)
    distributed.barrier(env)
    return harness.TaskEvaluator(
        harness.resolve(cfg.eval.tasks, where, cfg=cfg, domains=domains, tok=tok),
        tok.to_hf(),
        batch_size=cfg.eval.task_batch_size,
        rank=env.rank,
        world_size=env.world_size,
        # A sharded (FSDP) model runs each forward on every rank together.
        shard=not (cfg.train.fsdp and env.distributed),
    )


def _sinks(cfg: Config, *, resume: bool) -> list[Sink]:
    """Where records go besides metrics.jsonl (`log.sinks`, `train.tensorboard`)."""
    from rewarm.trackers import open_sinks

    return open_sinks(cfg, resume=resume)


def _write_resolved(cfg: Config) -> None:
    atomic.write_text(cfg.run_dir / RESOLVED, resolved_toml(cfg))


def _save_tokenizer(tok: Tokenizer, directory: Path) -> None:
    with atomic.directory(directory) as tmp:
        tok.save(tmp)


def _run_record(s: Session, saved: dict[str, Any] | None) -> None:
    """`run` "start" (or "resume"), and `schedule_changed` if the LR plan differs from
    the checkpoint's."""
    s.log.write(
        RunStart(
            event="resume" if saved is not None else "start",
            step=s.state.step,
            tokens=s.state.tokens,
            versions=versions(),
            device=device_name(s.env.device),
            params=s.stats.params,
            non_embedding_params=s.stats.non_embedding_params,
            flops_per_token=s.stats.flops_per_token,
            peak_flops=s.peak_flops,
            world_size=s.env.world_size,
            seq_len=s.cfg.train.seq_len,
            eval_every_tokens=eval_interval(s.cfg),
            config=s.cfg.to_dict(),
        )
    )
    _world_size_change(s, saved)
    old = (saved or {}).get("plan_fingerprint")
    new = s.plan.fingerprint()
    if saved is not None and old != new:
        from rewarm.schedules import describe_change

        change = describe_change(old, s.plan) if isinstance(old, str) else None
        s.log.write(
            ScheduleChanged(
                step=s.state.step,
                tokens=s.state.tokens,
                change=change or "schedule changed",
                old_fingerprint=old,
                new_fingerprint=new,
            )
        )
        # The one place the change is described: from the checkpoint's plan.
        logger.info(
            "rewarm train: the learning-rate schedule changed (%s); "
            "resuming at the saved position on the new schedule",
            change or "unreadable",
        )


def _world_size_change(s: Session, saved: dict[str, Any] | None) -> None:
    """One notice and a `run` record when the checkpoint was written by another number
    of processes (checkpoints from before world_size was saved are not compared)."""
    old = (saved or {}).get("world_size")
    new = s.env.world_size
    if saved is None or not isinstance(old, int) or old == new:
        return
    s.log.write(
        WorldSizeChanged(
            step=s.state.step, tokens=s.state.tokens, old_world_size=old, new_world_size=new
        )
    )
    if s.env.is_main:
        logger.info(
            "rewarm train: the checkpoint was written by %d process(es), resuming with %d; "
            "the global batch (%d tokens), data order and schedule are unchanged",
            old,
            new,
            s.cfg.train.batch_tokens,
        )


def checkpoint_state(s: Session, *, stage_end: bool) -> dict[str, Any]:
    return {
        "position": s.position()
        if s.state.stage < len(s.cfg.stages)
        else sum(st.tokens for st in s.cfg.stages),
        "step": s.state.step,
        "stage": s.state.stage,
        "stage_end": stage_end,
        "loop": asdict(s.state),
        "sampler": s.sampler.state_dict(),
        "rng": rng_state(),
        "plan_fingerprint": s.plan.fingerprint(),
        "world_size": s.env.world_size,
    }
