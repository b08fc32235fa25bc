"""The training loop: stages in order, one optimizer step at a time.

`train(cfg)` builds a `Session` (data, model, optimizer, sampler, stage plan,
evaluator, log; restored from the newest checkpoint when one exists) and runs
`loop`, which reads top to bottom: begin a stage if needed, get a batch, set
the LR from the stage plan, step, log, then end the stage or maybe evaluate and
maybe checkpoint. The LR position is the plan position in tokens (the sum of
earlier stages' `tokens` plus the tokens of this stage already consumed), so
the schedule's state in a checkpoint is that position alone.

A stage runs ceil(stage.tokens / train.batch_tokens) optimizer steps.

Every record goes to the run log (`rewarm.runlog`) as a typed record through
`emit`. A `PhaseClock` charges the loop's wall time to data, step, eval,
checkpoint and log; `train` records carry the seconds since the previous one, the
`run` "end" record the totals (docs/training.md, "Where the time goes").
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from pathlib import Path

import numpy as np
import torch

from rewarm import checkpoint, extras, runconfig
from rewarm.config import Config
from rewarm.config.derived import eval_interval, micro_batch_rows
from rewarm.evaluation.evaluator import DomainEval
from rewarm.mitigate import stage as mitigation
from rewarm.mitigate.tensors import swapped
from rewarm.runlog import (
    EvalRecord,
    NonFinite,
    Record,
    RunEnd,
    StageRecord,
    TaskRecord,
    TrainRecord,
)
from rewarm.schedules.torch_adapter import apply_lr
from rewarm.train import branch, cpu_memory, distributed, optim, runlock
from rewarm.train.phases import PhaseClock
from rewarm.train.session import LoopState, Session, checkpoint_state, open_session
from rewarm.train.step import StepResult, train_step

logger = logging.getLogger(__name__)


class NonFiniteError(RuntimeError):
    """Training stopped on a non-finite loss or gradient (train.nonfinite)."""


def train(cfg: Config, *, progress: bool = True) -> LoopState:
    """Run or resume every stage of `cfg`; the final loop state.

    Rank 0 holds `run.lock` in the run directory throughout (see `runlock`), so a
    second process on the same run is refused instead of corrupting it. Stage schedule
    and replay tables are checked first (`runconfig.check`), for configs built in code.
    A branch (`run.branch_from`) is seeded from its parent's checkpoint on its first
    start (`rewarm.train.branch`) and then resumed like any run.
    """
    runconfig.check(cfg)
    require_extras(cfg)
    main = int(os.environ.get("RANK", "0")) == 0
    with runlock.hold(cfg.run_dir, enabled=main):
        if main:
            branch.seed(cfg)  # a branch's first start: the parent's checkpoint and log
        done = _finished_state(cfg)
        if done is not None:
            return done
        env = distributed.setup(cfg.train.device)
        if env.device.type == "cpu":
            cpu_memory.keep_freed_memory()  # no page faults on every step's large buffers
        try:
            s = open_session(cfg, env, progress=progress)
            try:
                s.mitigation = _restored_mitigation(s)
                loop(s)
            finally:
                s.progress.close()
                s.log.close()
            return s.state
        finally:
            distributed.teardown(env)


def require_extras(cfg: Config) -> None:
    """Exit 2 with the install command before any work when an optional package the
    config asks for is missing (`eval.tasks`, `log.sinks`)."""
    from rewarm.trackers import require as require_trackers

    if cfg.eval.tasks:
        extras.require("lm_eval", f"{cfg.source}: eval.tasks")
    require_trackers(cfg)


def loop(s: Session) -> None:
    st, cfg, t = s.state, s.cfg, s.cfg.train
    clock = s.clock = PhaseClock()
    busy = 0.0  # seconds spent in steps since the last train record
    eval_every = eval_interval(cfg)
    while st.stage < len(cfg.stages):
        if not st.stage_started:
            begin_stage(s)
        if st.stage_step >= s.stage_steps[st.stage]:
            end_stage(s)  # a branch that cut this stage at its parent's checkpoint
            continue
        tick = time.perf_counter()
        with clock.phase("data"):
            tokens = _to_device(s.sampler.next_batch().tokens, s.env.device)
        with clock.phase("step"):
            lr = apply_lr(s.optimizer, s.plan, s.position())
            result = one_step(s, tokens)
            if s.mitigation is not None:  # snapshots for an average, Reptile steps
                s.mitigation.after_step(
                    s.model, (st.stage_step + 1) * t.batch_tokens, t.batch_tokens
                )
        st.step, st.stage_step = st.step + 1, st.stage_step + 1
        st.tokens += t.batch_tokens
        busy += time.perf_counter() - tick
        if not result.applied:
            on_nonfinite(s, result.loss, result.grad_norm)
        with clock.phase("log"):
            s.progress.update(t.batch_tokens, cfg.stages[st.stage].name, result.loss, lr)
        if st.step % t.log_every_steps == 0:
            log_train(s, result, lr, t.batch_tokens * t.log_every_steps / max(busy, 1e-9))
            busy = 0.0
        if st.stage_step >= s.stage_steps[st.stage]:
            end_stage(s)
            continue
        if _crossed(st.tokens, t.batch_tokens, eval_every):
            evaluate(s)
        if _crossed(st.tokens, t.batch_tokens, cfg.eval.tasks_every_tokens):
            evaluate_tasks(s)
        if _crossed(st.tokens, t.batch_tokens, cfg.checkpoint.every_tokens):
            save_checkpoint(s, stage_end=False)
    emit(
        s,
        RunEnd(
            step=st.step,
            tokens=st.tokens,
            seconds=clock.total(),
            startup_seconds=s.startup_seconds,
            evaluations=clock.calls("eval") - s.task_evaluations,
            checkpoints=clock.calls("checkpoint"),
            task_evaluations=s.task_evaluations if s.tasks is not None else None,
        ),
    )


def emit(s: Session, record: Record) -> None:
    """Write `record` to the run log (and its sinks), charged to the `log` phase."""
    with s.clock.phase("log"):
        s.log.write(record)


def one_step(s: Session, tokens: torch.Tensor) -> StepResult:
    """Forward/backward over this rank's micro-batches, clip, update (see `step`)."""
    t = s.cfg.train
    micro_rows = micro_batch_rows(t, s.env.world_size)
    return train_step(
        s.forward,
        s.params,
        s.optimizer,
        list(tokens.split(micro_rows)),
        global_tokens=t.batch_tokens,
        world_size=s.env.world_size,
        grad_clip=t.grad_clip,
        autocast=s.autocast,
        no_sync=s.no_sync,
        all_reduce_sum=distributed.all_reduce_sum(s.env),
    )


def log_train(s: Session, result: StepResult, lr: float, tokens_per_s: float) -> None:
    st = s.state
    record = TrainRecord(
        step=st.step,
        tokens=st.tokens,
        stage=s.cfg.stages[st.stage].name,
        lr=lr,
        loss=result.loss,
        grad_norm=result.grad_norm,
        grad_norm_l1=result.grad_norm_l1,
        tokens_per_s=tokens_per_s,
        mfu=s.stats.flops_per_token * tokens_per_s / s.peak_flops,
        seconds=s.clock.interval(),
    )
    emit(s, record)


def begin_stage(s: Session) -> None:
    """Optimizer reset if asked, the sampler's new mixture, a `stage` record, evaluation."""
    st, stage = s.state, s.cfg.stages[s.state.stage]
    if st.stage > 0 and stage.optimizer_state == "reset":
        optim.reset_state(s.optimizer)
    with s.clock.phase("data"):
        s.sampler.start_stage(st.stage)
    emit(
        s,
        StageRecord(
            stage=stage.name, index=st.stage, event="start", step=st.step, tokens=st.tokens
        ),
    )
    s.mitigation = mitigation.for_stage(s.cfg, st.stage)
    if s.mitigation is not None:
        s.mitigation.start(s.model)
    evaluate(s)
    evaluate_tasks(s)
    st.stage_started = True


def end_stage(s: Session) -> None:
    """Evaluation, the `stage` end record, and a checkpoint that is always kept."""
    st, stage = s.state, s.cfg.stages[s.state.stage]
    finish_mitigation(s)
    evaluate(s)
    evaluate_tasks(s)
    s.mitigation = None
    emit(
        s,
        StageRecord(
            stage=stage.name,
            index=st.stage,
            event="end",
            step=st.step,
            tokens=st.tokens,
            tokens_by_domain=s.sampler.tokens_by_domain(st.stage),
            epochs_by_domain=s.sampler.epochs_by_domain(st.stage),
        ),
    )
    st.stage, st.stage_step, st.stage_started = st.stage + 1, 0, False
    save_checkpoint(s, stage_end=True)


def evaluate(s: Session) -> None:
    """`eval` records for every domain; reuses results computed at this very step."""
    st = s.state
    if s.last_eval is None or s.last_eval[0] != st.step:
        with s.clock.phase("eval"):
            s.last_eval = (st.step, s.evaluator.evaluate(s.model))
    emit_evals(s, s.last_eval[1])
    for label, weights in s.mitigation.side_weights() if s.mitigation is not None else ():
        results = s.last_eval[1]  # weights None: the same as the model's
        if weights is not None:
            with s.clock.phase("eval"), swapped(s.model, weights):
                results = s.evaluator.evaluate(s.model)
        emit_evals(s, results, weights=label)


def emit_evals(s: Session, results: list[DomainEval], weights: str | None = None) -> None:
    """One `eval` record per domain; `weights` labels weights other than the model's."""
    st = s.state
    name = s.cfg.stages[min(st.stage, len(s.cfg.stages) - 1)].name
    for r in results:
        emit(
            s,
            EvalRecord(
                step=st.step,
                tokens=st.tokens,
                stage=name,
                domain=r.domain,
                loss=r.loss,
                bits_per_byte=r.bits_per_byte,
                weights=weights,
            ),
        )


def finish_mitigation(s: Session) -> None:
    """A stage's end with an average or merge put in place (`apply_at_end`, `merge`): the
    trained model is evaluated as "trained", then replaced (docs/mitigations.md)."""
    if s.mitigation is None or not s.mitigation.replaces:
        return
    with s.clock.phase("eval"):
        trained = s.evaluator.evaluate(s.model)
    emit_evals(s, trained, weights=mitigation.TRAINED)
    s.mitigation.finish(s.model)
    s.mitigation, s.last_eval = None, None


def _restored_mitigation(s: Session) -> mitigation.StageMitigation | None:
    """The current stage's average / MER / merge state when resuming mid-stage."""
    st = s.state
    if st.stage >= len(s.cfg.stages) or not st.stage_started:
        return None
    return mitigation.restore(s.cfg, st.stage, s.model, checkpoint.latest(s.ckpt_root))


def evaluate_tasks(s: Session) -> None:
    """`task` records of every `eval.tasks` metric; reuses results of this very step.
    Every rank takes part (the harness shards items, or a sharded model needs them)."""
    if s.tasks is None:
        return
    st = s.state
    if s.last_tasks is None or s.last_tasks[0] != st.step:
        with s.clock.phase("eval"):
            s.last_tasks = (st.step, s.tasks.evaluate(s.model))
        s.task_evaluations += 1
    name = s.cfg.stages[min(st.stage, len(s.cfg.stages) - 1)].name
    for r in s.last_tasks[1]:
        emit(
            s,
            TaskRecord(
                step=st.step,
                tokens=st.tokens,
                stage=name,
                task=r.task,
                metric=r.metric,
                value=r.value,
                stderr=r.stderr,
                higher_is_better=r.higher_is_better,
                samples=r.samples,
                domain=r.domain,
            ),
        )


def save_checkpoint(s: Session, *, stage_end: bool) -> None:
    """A checkpoint in the run's format: full (gathered, written by rank 0) or sharded
    (every process writes its own part; `rewarm.sharded_checkpoint`)."""
    with s.clock.phase("checkpoint"):
        m = s.mitigation
        # The average / MER state as full tensors (a collective under FSDP), written by
        # rank 0 next to the weights in either format.
        extra = m.full_tensors(s.model) if m is not None else None

        def write_extra(d: Path) -> None:
            shutil.copytree(s.tokenizer_dir, d / checkpoint.TOKENIZER)
            if m is not None and extra is not None:
                mitigation.save(d, extra, m.meta())

        if s.checkpoint_format == "sharded":
            from rewarm import sharded_checkpoint  # torch.distributed.checkpoint: slow import

            if s.env.is_main:
                s.state.metrics_lines = s.log.lines
            sharded_checkpoint.save(
                s.ckpt_root,
                s.state.step,
                state_dict=distributed.sharded_state(s.model, s.optimizer),
                model_config_json=s.model_config_json,
                state=checkpoint_state(s, stage_end=stage_end) if s.env.is_main else None,
                keep=s.cfg.checkpoint.keep,
                extra=write_extra,
            )
            return
        model_state, opt_state = distributed.full_state(
            s.model, s.optimizer, s.env, s.cfg.train.fsdp and s.env.distributed
        )

        if s.env.is_main:
            s.state.metrics_lines = s.log.lines
            checkpoint.save(
                s.ckpt_root,
                s.state.step,
                model_state=model_state,
                model_config_json=s.model_config_json,
                optimizer_state=opt_state,
                state=checkpoint_state(s, stage_end=stage_end),
                keep=s.cfg.checkpoint.keep,
                extra=write_extra,
            )
        distributed.barrier(s.env)


def on_nonfinite(s: Session, loss: float, grad_norm: float) -> None:
    """train.nonfinite: skip the update (up to max_nonfinite_skips), or stop."""
    st, t = s.state, s.cfg.train
    st.nonfinite_skips += 1
    stop = t.nonfinite == "stop" or st.nonfinite_skips > t.max_nonfinite_skips
    emit(
        s,
        NonFinite(
            step=st.step,
            tokens=st.tokens,
            loss=loss,
            grad_norm=grad_norm,
            action="stop" if stop else "skip",
            skips=st.nonfinite_skips,
        ),
    )
    what = f"non-finite loss ({loss}) or gradient norm ({grad_norm}) at step {st.step}"
    if stop:
        raise NonFiniteError(
            f"{what}: stopped (train.nonfinite = {t.nonfinite!r}, "
            f"{st.nonfinite_skips} skip(s), max_nonfinite_skips = {t.max_nonfinite_skips}); "
            f"lower the LR or resume from the last checkpoint"
        )
    if s.env.is_main:  # every rank takes the same decision: one line, not one per rank
        with s.clock.phase("log"):
            logger.warning(
                "rewarm train: %s: update skipped (%d/%d)",
                what,
                st.nonfinite_skips,
                t.max_nonfinite_skips,
            )


def _crossed(tokens: int, step_tokens: int, every: int) -> bool:
    """Did the last step cross a multiple of `every` tokens? (0 = never)"""
    return every > 0 and tokens // every > (tokens - step_tokens) // every


def _to_device(batch: np.ndarray, device: torch.device) -> torch.Tensor:
    x = torch.from_numpy(batch)  # int64 (rows, seq_len + 1), no copy
    if device.type == "cuda":
        return x.pin_memory().to(device, non_blocking=True)
    return x


def _finished_state(cfg: Config) -> LoopState | None:
    """The final loop state if this run already finished every stage, else None."""
    found = checkpoint.latest(cfg.run_dir / "checkpoints")
    if found is None:
        return None
    with checkpoint.malformed(found, "loop state"):
        loop_state = LoopState.from_dict(checkpoint.read_state(found)["loop"])
    return loop_state if loop_state.stage >= len(cfg.stages) else None
