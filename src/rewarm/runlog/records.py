"""The records of `RUN/metrics.jsonl`: one frozen dataclass per kind (and per `run`
event), how each becomes one JSON line, and how one line becomes a record again.

Line format (unchanged since the first trainer, so old logs read): one JSON object,
`kind` first, then the record's fields in the order declared here; a non-finite
float field is written as the string "nan", "inf" or "-inf" (JSON has neither);
`None` is written as `null`, except for fields marked `OMIT_NONE` (left out).

Reading is strict about what the analyses need and lenient about the rest:

- `train`, `eval`, `stage` and `task` records must carry their numbers (a missing `tokens`
  or a non-numeric `loss` raises `UserError` naming the record's place);
- every field of a `run` record except `event` may be missing (older trainers wrote
  fewer), and a `run` event this version does not know is kept as a `RunEvent`;
- unknown kinds are skipped and extra fields ignored, so a newer trainer can add
  both without breaking older readers.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar, Literal

from rewarm.errors import UserError

OMIT_NONE = {"omit_none": True}
"""Field metadata: leave the key out of the line when the value is None."""


@dataclass(frozen=True, kw_only=True)
class PhaseSeconds:
    """Wall seconds of the training loop by phase (see docs/training.md, "Where the
    time goes"). The phases never overlap (a record written during an evaluation
    counts as `log`, not `eval`), and `other` is what none of them claims, so the
    fields sum to the wall time of the span they cover."""

    data: float = 0.0
    """Drawing the batch from the sampler and moving it to the device."""
    step: float = 0.0
    """Setting the LR, forward, backward, clipping and the optimizer update."""
    eval: float = 0.0
    """Held-out evaluation of every domain."""
    checkpoint: float = 0.0
    """Gathering the state and writing a checkpoint."""
    log: float = 0.0
    """Writing records (and their sinks) and updating the progress bar."""
    other: float = 0.0
    """Everything else: loop bookkeeping, optimizer resets, the non-finite policy."""

    @property
    def total(self) -> float:
        return self.data + self.step + self.eval + self.checkpoint + self.log + self.other


@dataclass(frozen=True, kw_only=True)
class TrainRecord:
    """One logged optimizer step."""

    kind: ClassVar[str] = "train"
    step: int
    tokens: int
    """Training tokens consumed after this step (global batch tokens x steps)."""
    stage: int | str | None
    """The stage's name (older logs: its index)."""
    lr: float
    loss: float
    """Mean next-token cross-entropy (nats) over every token of the global batch."""
    grad_norm: float | None = None
    """Global L2 norm of the gradient before clipping."""
    grad_norm_l1: float | None = field(default=None, metadata=OMIT_NONE)
    """Global L1 norm (sum of |g|) before clipping: the refined schedule's input for
    Adam-type optimizers (Defazio et al. 2023)."""
    tokens_per_s: float | None = None
    """Tokens over the seconds spent drawing batches and stepping since the last record."""
    mfu: float | None = None
    seconds: PhaseSeconds | None = field(default=None, metadata=OMIT_NONE)
    """Wall seconds by phase since the previous `train` record of this process (or
    since its loop began); `seconds.total` is that interval's wall time."""


@dataclass(frozen=True, kw_only=True)
class EvalRecord:
    """Held-out loss (nats per token) of one domain at one training position."""

    kind: ClassVar[str] = "eval"
    step: int
    tokens: int
    stage: int | str | None
    domain: str
    loss: float
    bits_per_byte: float | None = None
    weights: str | None = field(default=None, metadata=OMIT_NONE)
    """Which weights were evaluated: None (left out) = the model being trained; else the
    label of another set (an average: "uniform", "ema", "wsm-SHAPE"; "trained": the model
    before a stage's end put an average or merge in its place; docs/mitigations.md)."""


@dataclass(frozen=True, kw_only=True)
class TaskRecord:
    """One metric of one task (lm-evaluation-harness) at one training position.

    Written at stage starts and ends, and every `eval.tasks_every_tokens` if asked
    (docs/tasks.md); like `eval` records, a boundary's results are written twice,
    labelled with the stage that ends and with the stage that starts."""

    kind: ClassVar[str] = "task"
    step: int
    tokens: int
    stage: int | str | None
    task: str
    """The harness's task (or group) name, e.g. "rewarm_docs_names" or "hellaswag"."""
    metric: str
    """The harness's metric name ("acc", "acc_norm", ...), with ",FILTER" when its
    filter is not "none"."""
    value: float
    stderr: float | None = None
    """Standard error the harness reports for `value` (None where it gives none)."""
    higher_is_better: bool | None = field(default=None, metadata=OMIT_NONE)
    samples: int | None = field(default=None, metadata=OMIT_NONE)
    """Items the value averages over (after `limit`)."""
    domain: str | None = field(default=None, metadata=OMIT_NONE)
    """The declared domain whose knowledge the task measures; None: knowledge from
    before the run (how the continual metrics treat it, docs/metrics.md)."""


@dataclass(frozen=True, kw_only=True)
class StageRecord:
    """Start or end of a stage; `tokens_by_domain` and `epochs_by_domain` (replay
    included) on "end" only."""

    kind: ClassVar[str] = "stage"
    stage: str
    index: int
    event: Literal["start", "end"]
    step: int
    tokens: int
    tokens_by_domain: Mapping[str, float] | None = field(default=None, metadata=OMIT_NONE)
    epochs_by_domain: Mapping[str, float] | None = field(default=None, metadata=OMIT_NONE)
    """Epochs of each domain's training tokens the stage drew: tokens_by_domain / the
    domain's training tokens (windows x seq_len). Older logs have none."""


@dataclass(frozen=True, kw_only=True)
class RunStart:
    """`run` "start" (a fresh run) or "resume" (from a checkpoint): what ran, and on
    "start" the resolved config every analysis reads."""

    kind: ClassVar[str] = "run"
    event: Literal["start", "resume"]
    step: int | None = None
    tokens: int | None = None
    versions: dict[str, str] | None = None
    device: str | None = None
    params: int | None = None
    non_embedding_params: int | None = None
    flops_per_token: float | None = None
    peak_flops: float | None = None
    world_size: int | None = None
    seq_len: int | None = None
    eval_every_tokens: int | None = None
    config: dict[str, Any] = field(default_factory=dict)
    """The resolved config as plain data (`Config.to_dict()`). Kept as written, not
    re-validated: a log stays readable after a config key is renamed."""


@dataclass(frozen=True, kw_only=True)
class ScheduleChanged:
    """A resumed run's LR schedule differs from its checkpoint's (logged, not refused)."""

    kind: ClassVar[str] = "run"
    event: Literal["schedule_changed"] = "schedule_changed"
    step: int | None = None
    tokens: int | None = None
    change: str | None = None
    """One line naming each differing stage and key."""
    old_fingerprint: str | None = None
    new_fingerprint: str | None = None


@dataclass(frozen=True, kw_only=True)
class Branched:
    """This run branched from another run's checkpoint (`run.branch_from`).

    Written once, when the branch is seeded, right after the parent's records up to
    that checkpoint (copied verbatim): everything before this line is the parent's
    history, shared with it; everything after is the branch's own. `step` and `tokens`
    are the checkpoint's (training tokens the shared part trained)."""

    kind: ClassVar[str] = "run"
    event: Literal["branch"] = "branch"
    step: int | None = None
    tokens: int | None = None
    parent: str | None = None
    """The parent's run directory, as the branch's config named it."""
    checkpoint: str | None = None
    """The parent's checkpoint directory the branch started from."""
    parent_fingerprint: str | None = None
    """The LR plan fingerprint the parent trained with (its checkpoint's)."""
    fingerprint: str | None = None
    """The branch's own LR plan fingerprint."""
    change: str | None = None
    """One line naming each LR difference from the parent's plan (None: the same)."""


@dataclass(frozen=True, kw_only=True)
class WorldSizeChanged:
    """A run resumed under another number of processes than its checkpoint was
    written with (the global batch, data order and schedule are unchanged)."""

    kind: ClassVar[str] = "run"
    event: Literal["world_size_changed"] = "world_size_changed"
    step: int | None = None
    tokens: int | None = None
    old_world_size: int | None = None
    """Processes that wrote the checkpoint."""
    new_world_size: int | None = None
    """Processes of the resumed run."""


@dataclass(frozen=True, kw_only=True)
class NonFinite:
    """A non-finite loss or gradient norm, and what `train.nonfinite` did about it."""

    kind: ClassVar[str] = "run"
    event: Literal["nonfinite"] = "nonfinite"
    step: int | None = None
    tokens: int | None = None
    loss: float | None = None
    grad_norm: float | None = None
    action: Literal["skip", "stop"] | None = None
    skips: int | None = None
    """Non-finite steps skipped so far in the run, this one included."""


@dataclass(frozen=True, kw_only=True)
class RunEnd:
    """Every stage is done. The timing fields cover this process only (a resumed run
    has one `end`, timed from its resume)."""

    kind: ClassVar[str] = "run"
    event: Literal["end"] = "end"
    step: int | None = None
    tokens: int | None = None
    seconds: PhaseSeconds | None = field(default=None, metadata=OMIT_NONE)
    """Wall seconds of this process's loop by phase (from its first stage start or
    first step to this record)."""
    startup_seconds: float | None = field(default=None, metadata=OMIT_NONE)
    """Building the session before the loop: data, model, optimizer, restoring state."""
    evaluations: int | None = field(default=None, metadata=OMIT_NONE)
    """Evaluations this process ran (a stage boundary's is run once, written twice)."""
    checkpoints: int | None = field(default=None, metadata=OMIT_NONE)
    """Checkpoints this process wrote."""
    task_evaluations: int | None = field(default=None, metadata=OMIT_NONE)
    """Task evaluations this process ran (only when `eval.tasks` is set; their seconds
    are part of `seconds.eval`)."""


@dataclass(frozen=True, kw_only=True)
class RunEvent:
    """A `run` record whose event this version does not know (read, never written)."""

    kind: ClassVar[str] = "run"
    event: str
    step: int | None = None
    tokens: int | None = None


RunRecord = RunStart | ScheduleChanged | Branched | WorldSizeChanged | NonFinite | RunEnd | RunEvent
Record = TrainRecord | EvalRecord | StageRecord | TaskRecord | RunRecord

KINDS = ("train", "eval", "stage", "task", "run")


# -- writing -------------------------------------------------------------------------


def _clean(value: object) -> object:
    # JSON has no NaN/Inf: write them as strings so every line stays strict JSON.
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, PhaseSeconds):
        return {f.name: getattr(value, f.name) for f in fields(value)}
    return value


def to_dict(record: Record) -> dict[str, object]:
    """The JSON object of `record`: `kind` first, then its fields in declared order."""
    out: dict[str, object] = {"kind": record.kind}
    for f in fields(record):
        value = getattr(record, f.name)
        if value is None and f.metadata.get("omit_none"):
            continue
        out[f.name] = _clean(value)
    return out


def encode(record: Record) -> str:
    """One line of metrics.jsonl, without the newline."""
    return json.dumps(to_dict(record))


# -- reading -------------------------------------------------------------------------

# The trainer writes non-finite floats as strings (JSON has no NaN/Inf).
NON_FINITE = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}


def _number(rec: Mapping[str, Any], key: str, where: str) -> float:
    value = rec.get(key)
    if isinstance(value, str) and value.lower() in NON_FINITE:
        return NON_FINITE[value.lower()]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise UserError(f"{where}: field {key!r} must be a number, got {value!r}")
    return float(value)


def _integer(rec: Mapping[str, Any], key: str, where: str) -> int:
    value = rec.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise UserError(f"{where}: field {key!r} must be a number, got {value!r}")
    if isinstance(value, float) and not value.is_integer():
        raise UserError(f"{where}: field {key!r} must be an integer, got {value!r}")
    return int(value)


def _opt_number(rec: Mapping[str, Any], key: str, where: str) -> float | None:
    return None if rec.get(key) is None else _number(rec, key, where)


def _opt_integer(rec: Mapping[str, Any], key: str, where: str) -> int | None:
    # Older readers took int(float) here: 3.0 and 3.7 both read as 3.
    if rec.get(key) is None:
        return None
    value = _number(rec, key, where)
    if not math.isfinite(value):
        raise UserError(f"{where}: field {key!r} must be a finite number, got {rec[key]!r}")
    return int(value)


def _opt_str(rec: Mapping[str, Any], key: str) -> str | None:
    value = rec.get(key)
    return value if isinstance(value, str) else None


def _stage_name(value: object) -> int | str | None:
    return value if isinstance(value, int | str) and not isinstance(value, bool) else None


def _seconds(rec: Mapping[str, Any], key: str, where: str) -> PhaseSeconds | None:
    value = rec.get(key)
    if value is None:
        return None
    if not isinstance(value, dict):
        raise UserError(f"{where}: field {key!r} must be an object of seconds by phase")
    known = {f.name for f in fields(PhaseSeconds)}
    return PhaseSeconds(**{k: _number(value, k, f"{where}: {key}") for k in value if k in known})


def _train(rec: Mapping[str, Any], where: str) -> TrainRecord:
    return TrainRecord(
        step=_integer(rec, "step", where),
        tokens=_integer(rec, "tokens", where),
        stage=_stage_name(rec.get("stage")),
        lr=_number(rec, "lr", where),
        loss=_number(rec, "loss", where),
        grad_norm=_opt_number(rec, "grad_norm", where),
        grad_norm_l1=_opt_number(rec, "grad_norm_l1", where),
        tokens_per_s=_opt_number(rec, "tokens_per_s", where),
        mfu=_opt_number(rec, "mfu", where),
        seconds=_seconds(rec, "seconds", where),
    )


def _eval(rec: Mapping[str, Any], where: str) -> EvalRecord:
    domain = rec.get("domain")
    if not isinstance(domain, str) or not domain:
        raise UserError(f"{where}: eval record needs a string 'domain', got {domain!r}")
    return EvalRecord(
        step=_integer(rec, "step", where),
        tokens=_integer(rec, "tokens", where),
        stage=_stage_name(rec.get("stage")),
        domain=domain,
        loss=_number(rec, "loss", where),  # NaN reads as "not evaluated", inf stays inf
        bits_per_byte=_opt_number(rec, "bits_per_byte", where),
        weights=weights if isinstance(weights := rec.get("weights"), str) else None,
    )


def _task(rec: Mapping[str, Any], where: str) -> TaskRecord:
    names = {}
    for key in ("task", "metric"):
        value = rec.get(key)
        if not isinstance(value, str) or not value:
            raise UserError(f"{where}: task record needs a string {key!r}, got {value!r}")
        names[key] = value
    better = rec.get("higher_is_better")
    return TaskRecord(
        step=_integer(rec, "step", where),
        tokens=_integer(rec, "tokens", where),
        stage=_stage_name(rec.get("stage")),
        task=names["task"],
        metric=names["metric"],
        value=_number(rec, "value", where),
        stderr=_opt_number(rec, "stderr", where),
        higher_is_better=better if isinstance(better, bool) else None,
        samples=_opt_integer(rec, "samples", where),
        domain=_opt_str(rec, "domain"),
    )


def _stage(rec: Mapping[str, Any], where: str) -> StageRecord:
    event = rec.get("event")
    if event != "start" and event != "end":
        raise UserError(f"{where}: stage event must be 'start' or 'end', got {event!r}")
    return StageRecord(
        stage=str(rec.get("stage", "")),
        index=_integer(rec, "index", where),
        event=event,
        step=_integer(rec, "step", where),
        tokens=_integer(rec, "tokens", where),
        tokens_by_domain=_by_domain(rec, "tokens_by_domain", where),
        epochs_by_domain=_by_domain(rec, "epochs_by_domain", where),
    )


def _by_domain(rec: Mapping[str, Any], key: str, where: str) -> dict[str, float] | None:
    value = rec.get(key)
    if value is None:
        return None
    if not isinstance(value, dict):
        raise UserError(f"{where}: {key} must be an object")
    return {str(k): _number(value, k, f"{where}: {key}") for k in value}


def _run(rec: Mapping[str, Any], where: str) -> RunRecord:
    event = str(rec.get("event", ""))
    step, tokens = _opt_integer(rec, "step", where), _opt_integer(rec, "tokens", where)
    if event == "start" or event == "resume":
        versions, config = rec.get("versions"), rec.get("config")
        return RunStart(
            event="start" if event == "start" else "resume",
            step=step,
            tokens=tokens,
            versions=(
                {str(k): str(v) for k, v in versions.items()}
                if isinstance(versions, dict)
                else None
            ),
            device=_opt_str(rec, "device"),
            params=_opt_integer(rec, "params", where),
            non_embedding_params=_opt_integer(rec, "non_embedding_params", where),
            flops_per_token=_opt_number(rec, "flops_per_token", where),
            peak_flops=_opt_number(rec, "peak_flops", where),
            world_size=_opt_integer(rec, "world_size", where),
            seq_len=_opt_integer(rec, "seq_len", where),
            eval_every_tokens=_opt_integer(rec, "eval_every_tokens", where),
            config=config if isinstance(config, dict) else {},
        )
    if event == "schedule_changed":
        return ScheduleChanged(
            step=step,
            tokens=tokens,
            change=_opt_str(rec, "change"),
            old_fingerprint=_opt_str(rec, "old_fingerprint"),
            new_fingerprint=_opt_str(rec, "new_fingerprint"),
        )
    if event == "branch":
        return Branched(
            step=step,
            tokens=tokens,
            parent=_opt_str(rec, "parent"),
            checkpoint=_opt_str(rec, "checkpoint"),
            parent_fingerprint=_opt_str(rec, "parent_fingerprint"),
            fingerprint=_opt_str(rec, "fingerprint"),
            change=_opt_str(rec, "change"),
        )
    if event == "world_size_changed":
        return WorldSizeChanged(
            step=step,
            tokens=tokens,
            old_world_size=_opt_integer(rec, "old_world_size", where),
            new_world_size=_opt_integer(rec, "new_world_size", where),
        )
    if event == "nonfinite":
        action = rec.get("action")
        return NonFinite(
            step=step,
            tokens=tokens,
            loss=_opt_number(rec, "loss", where),
            grad_norm=_opt_number(rec, "grad_norm", where),
            action=action if action == "skip" or action == "stop" else None,
            skips=_opt_integer(rec, "skips", where),
        )
    if event == "end":
        return RunEnd(
            step=step,
            tokens=tokens,
            seconds=_seconds(rec, "seconds", where),
            startup_seconds=_opt_number(rec, "startup_seconds", where),
            evaluations=_opt_integer(rec, "evaluations", where),
            checkpoints=_opt_integer(rec, "checkpoints", where),
            task_evaluations=_opt_integer(rec, "task_evaluations", where),
        )
    return RunEvent(event=event, step=step, tokens=tokens)


_DECODERS: dict[str, Callable[[Mapping[str, Any], str], Record]] = {
    "train": _train,
    "eval": _eval,
    "stage": _stage,
    "task": _task,
    "run": _run,
}


def decode(rec: object, where: str, kinds: frozenset[str] | None = None) -> Record | None:
    """The record of one parsed JSON line; None for a kind this version does not know
    (or one outside `kinds`, which is then not validated). `where` names the line."""
    if not isinstance(rec, dict) or "kind" not in rec:
        raise UserError(f"{where}: expected a JSON object with a 'kind'")
    kind = rec["kind"]
    decoder = _DECODERS.get(kind) if isinstance(kind, str) else None
    if decoder is None or (kinds is not None and kind not in kinds):
        return None
    return decoder(rec, where)
