"""Read a run's `metrics.jsonl` into typed records.

The record kinds and fields are the contract in `docs/architecture.md`
(`train`, `eval`, `stage`, `run`). Reading is strict about what the metrics
need (a missing `tokens` or a non-numeric `loss` is an error naming the file
and line) and lenient about everything else: unknown kinds and extra fields
are kept out of the way, so a newer trainer can add fields without breaking
older reports.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rewarm.errors import UserError

METRICS_FILE = "metrics.jsonl"


@dataclass(frozen=True, kw_only=True)
class EvalRecord:
    """Held-out loss (nats per token) of one domain at one training position."""

    step: int
    tokens: int
    stage: int | str | None
    domain: str
    loss: float
    bits_per_byte: float | None = None


@dataclass(frozen=True, kw_only=True)
class TrainRecord:
    """One logged optimizer step."""

    step: int
    tokens: int
    stage: int | str | None
    lr: float
    loss: float
    grad_norm: float | None = None
    tokens_per_s: float | None = None
    mfu: float | None = None


@dataclass(frozen=True, kw_only=True)
class StageRecord:
    """Start or end of a stage; `tokens_by_domain` (replay included) on "end" only."""

    stage: str
    index: int
    event: str
    step: int
    tokens: int
    tokens_by_domain: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class RunEvent:
    """A `run` record: start, end, resume, ... The "start" one carries the config."""

    event: str
    params: int | None = None
    non_embedding_params: int | None = None
    flops_per_token: float | None = None
    seq_len: int | None = None
    world_size: int | None = None
    config: dict[str, Any] = field(default_factory=dict)


@dataclass(kw_only=True)
class RunLog:
    """Every record of one run, in file order."""

    name: str
    path: Path
    evals: list[EvalRecord] = field(default_factory=list)
    trains: list[TrainRecord] = field(default_factory=list)
    stages: list[StageRecord] = field(default_factory=list)
    events: list[RunEvent] = field(default_factory=list)

    @property
    def start(self) -> RunEvent | None:
        """The first `run` "start" record (the one with the resolved config)."""
        return next((e for e in self.events if e.event == "start"), None)

    @property
    def config(self) -> dict[str, Any]:
        start = self.start
        return start.config if start is not None else {}


# The trainer writes non-finite floats as strings (JSON has no NaN/Inf).
NON_FINITE = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}


def _number(rec: dict[str, Any], key: str, where: str, *, integer: bool = False) -> Any:
    value = rec.get(key)
    if not integer and isinstance(value, str) and value.lower() in NON_FINITE:
        return NON_FINITE[value.lower()]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise UserError(f"{where}: field {key!r} must be a number, got {value!r}")
    if integer:
        if isinstance(value, float) and not value.is_integer():
            raise UserError(f"{where}: field {key!r} must be an integer, got {value!r}")
        return int(value)
    return float(value)


def _optional(rec: dict[str, Any], key: str, where: str) -> float | None:
    if rec.get(key) is None:
        return None
    return _number(rec, key, where)


def _parse(rec: dict[str, Any], where: str, log: RunLog) -> None:
    kind = rec.get("kind")
    if kind == "eval":
        domain = rec.get("domain")
        if not isinstance(domain, str) or not domain:
            raise UserError(f"{where}: eval record needs a string 'domain', got {domain!r}")
        loss = _number(rec, "loss", where)  # NaN reads as "not evaluated", inf stays inf
        log.evals.append(
            EvalRecord(
                step=_number(rec, "step", where, integer=True),
                tokens=_number(rec, "tokens", where, integer=True),
                stage=rec.get("stage"),
                domain=domain,
                loss=loss,
                bits_per_byte=_optional(rec, "bits_per_byte", where),
            )
        )
    elif kind == "train":
        log.trains.append(
            TrainRecord(
                step=_number(rec, "step", where, integer=True),
                tokens=_number(rec, "tokens", where, integer=True),
                stage=rec.get("stage"),
                lr=_number(rec, "lr", where),
                loss=_number(rec, "loss", where),
                grad_norm=_optional(rec, "grad_norm", where),
                tokens_per_s=_optional(rec, "tokens_per_s", where),
                mfu=_optional(rec, "mfu", where),
            )
        )
    elif kind == "stage":
        event = rec.get("event")
        if event not in ("start", "end"):
            raise UserError(f"{where}: stage event must be 'start' or 'end', got {event!r}")
        by_domain = rec.get("tokens_by_domain") or {}
        if not isinstance(by_domain, dict):
            raise UserError(f"{where}: tokens_by_domain must be an object")
        log.stages.append(
            StageRecord(
                stage=str(rec.get("stage", "")),
                index=_number(rec, "index", where, integer=True),
                event=event,
                step=_number(rec, "step", where, integer=True),
                tokens=_number(rec, "tokens", where, integer=True),
                tokens_by_domain={str(k): float(v) for k, v in by_domain.items()},
            )
        )
    elif kind == "run":
        config = rec.get("config") or {}
        fpt = _optional(rec, "flops_per_token", where)
        log.events.append(
            RunEvent(
                event=str(rec.get("event", "")),
                params=None if rec.get("params") is None else int(_number(rec, "params", where)),
                non_embedding_params=(
                    None
                    if rec.get("non_embedding_params") is None
                    else int(_number(rec, "non_embedding_params", where))
                ),
                flops_per_token=fpt,
                seq_len=None if rec.get("seq_len") is None else int(_number(rec, "seq_len", where)),
                world_size=(
                    None
                    if rec.get("world_size") is None
                    else int(_number(rec, "world_size", where))
                ),
                config=config if isinstance(config, dict) else {},
            )
        )
    # Other kinds (future additions) are ignored on purpose.


def read_run(run_dir: str | Path) -> RunLog:
    """Read `RUN/metrics.jsonl`; `UserError` naming the file and line on bad input."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise UserError(f"{run_dir}: run directory not found")
    path = run_dir / METRICS_FILE
    if not path.is_file():
        raise UserError(f"{path}: no metrics.jsonl in this run directory")
    log = RunLog(name=run_dir.resolve().name, path=run_dir)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise UserError(f"{path}: cannot read: {err}") from None
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as err:
            raise UserError(f"{where}: not valid JSON ({err.msg})") from None
        if not isinstance(rec, dict) or "kind" not in rec:
            raise UserError(f"{where}: expected a JSON object with a 'kind'")
        _parse(rec, where, log)
    return log
