"""The run log's records: every kind written and read back, the line format of the
trainer's earlier untyped writer kept byte for byte, reading's strictness, the
writer's exact-resume truncation, sinks, and no torch."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest

from rewarm.errors import UserError
from rewarm.runlog import (
    METRICS_FILE,
    Branched,
    EvalRecord,
    NonFinite,
    NullLog,
    PhaseSeconds,
    Record,
    RunEnd,
    RunEvent,
    RunLogWriter,
    RunStart,
    ScheduleChanged,
    StageRecord,
    TrainRecord,
    WorldSizeChanged,
    count_lines,
    encode,
    head,
    read_records,
    read_run,
)

SECONDS = PhaseSeconds(data=0.001, step=1.25, eval=0.5, checkpoint=0.25, log=0.0002, other=0.01)
CONFIG = {"run": {"name": "r"}, "stages": [{"name": "a", "mix": {"x": 1.0}}]}

# Every record the trainer writes, with the fields in the order its earlier
# `write(kind, **fields)` calls passed them (the line format to keep).
CASES: list[tuple[Record, str, dict[str, object]]] = [
    (
        TrainRecord(
            step=3, tokens=384, stage="a", lr=1e-3, loss=5.5, grad_norm=0.7,
            tokens_per_s=1000.5, mfu=0.25,
        ),
        "train",
        dict(step=3, tokens=384, stage="a", lr=1e-3, loss=5.5, grad_norm=0.7,
             tokens_per_s=1000.5, mfu=0.25),
    ),
    (
        EvalRecord(step=3, tokens=384, stage="a", domain="x", loss=4.5, bits_per_byte=1.5),
        "eval",
        dict(step=3, tokens=384, stage="a", domain="x", loss=4.5, bits_per_byte=1.5),
    ),
    (
        StageRecord(stage="a", index=0, event="start", step=0, tokens=0),
        "stage",
        dict(stage="a", index=0, event="start", step=0, tokens=0),
    ),
    (
        StageRecord(
            stage="a", index=0, event="end", step=6, tokens=768,
            tokens_by_domain={"x": 576, "y": 192},
        ),
        "stage",
        dict(stage="a", index=0, event="end", step=6, tokens=768,
             tokens_by_domain={"x": 576, "y": 192}),
    ),
    (
        RunStart(
            event="start", step=0, tokens=0, versions={"rewarm": "0.1.0"}, device="cpu",
            params=100, non_embedding_params=80, flops_per_token=600.0, peak_flops=1e11,
            world_size=1, seq_len=32, eval_every_tokens=384, config=CONFIG,
        ),
        "run",
        dict(event="start", step=0, tokens=0, versions={"rewarm": "0.1.0"}, device="cpu",
             params=100, non_embedding_params=80, flops_per_token=600.0, peak_flops=1e11,
             world_size=1, seq_len=32, eval_every_tokens=384, config=CONFIG),
    ),
    (
        ScheduleChanged(
            step=6, tokens=768, change="stage 1 (b) peak_lr: 0.1 -> 0.2",
            old_fingerprint="{}", new_fingerprint="{1}",
        ),
        "run",
        dict(event="schedule_changed", step=6, tokens=768,
             change="stage 1 (b) peak_lr: 0.1 -> 0.2", old_fingerprint="{}",
             new_fingerprint="{1}"),
    ),
    (
        Branched(
            step=6, tokens=768, parent="runs/a", checkpoint="runs/a/checkpoints/step_00000006",
            parent_fingerprint="{}", fingerprint="{1}", change=None,
        ),
        "run",
        dict(event="branch", step=6, tokens=768, parent="runs/a",
             checkpoint="runs/a/checkpoints/step_00000006", parent_fingerprint="{}",
             fingerprint="{1}", change=None),
    ),
    (
        NonFinite(step=4, tokens=512, loss=math.inf, grad_norm=2.0, action="skip", skips=1),
        "run",
        dict(event="nonfinite", step=4, tokens=512, loss=math.inf, grad_norm=2.0,
             action="skip", skips=1),
    ),
    (
        WorldSizeChanged(step=8, tokens=1024, old_world_size=2, new_world_size=1),
        "run",
        dict(event="world_size_changed", step=8, tokens=1024, old_world_size=2,
             new_world_size=1),
    ),
    (RunEnd(step=12, tokens=1536), "run", dict(event="end", step=12, tokens=1536)),
]  # fmt: skip


def legacy_line(kind: str, **fields: object) -> str:
    """What the trainer's untyped writer wrote (non-finite floats as strings)."""

    def clean(v: object) -> object:
        return str(v) if isinstance(v, float) and not math.isfinite(v) else v

    return json.dumps({"kind": kind, **{k: clean(v) for k, v in fields.items()}})


@pytest.mark.parametrize(("record", "kind", "fields"), CASES)
def test_lines_are_byte_for_byte_the_earlier_format(record, kind, fields):
    assert encode(record) == legacy_line(kind, **fields)


def test_every_kind_round_trips_through_writer_and_reader(tmp_path):
    records: list[Record] = [case[0] for case in CASES]
    records[0] = TrainRecord(
        step=3, tokens=384, stage="a", lr=1e-3, loss=5.5, grad_norm=0.7, seconds=SECONDS
    )
    records.append(RunStart(event="resume", step=6, tokens=768, config=CONFIG))
    records.append(
        RunEnd(
            step=12,
            tokens=1536,
            seconds=SECONDS,
            startup_seconds=3.5,
            evaluations=5,
            checkpoints=6,
        )
    )
    log = RunLogWriter(tmp_path / METRICS_FILE)
    for r in records:
        log.write(r)
    log.close()
    assert log.lines == count_lines(tmp_path / METRICS_FILE) == len(records)
    back = read_records(tmp_path / METRICS_FILE)
    assert back == records
    run = read_run(tmp_path)
    assert run.trains == [records[0]] and run.evals == [records[1]]
    assert run.stages == records[2:4] and run.events == records[4:]
    assert run.start == records[4] and run.config == CONFIG


def test_non_finite_floats_are_strings_on_disk_and_floats_when_read(tmp_path):
    rec = TrainRecord(step=1, tokens=8, stage="a", lr=0.1, loss=math.nan, grad_norm=-math.inf)
    line = encode(rec)
    assert '"loss": "nan"' in line and '"grad_norm": "-inf"' in line
    (tmp_path / "m.jsonl").write_text(line + "\n")
    (back,) = read_records(tmp_path / "m.jsonl")
    assert isinstance(back, TrainRecord)
    assert math.isnan(back.loss) and back.grad_norm == -math.inf


def test_unknown_kinds_events_and_fields_are_tolerated(tmp_path):
    lines = [
        {"kind": "run", "event": "start"},  # an old trainer: nothing but the event
        {"kind": "run", "event": "rollback", "step": 3, "tokens": 30, "why": "?"},
        {"kind": "profile", "anything": [1, 2]},
        {"kind": "eval", "step": 1, "tokens": 5, "domain": "x", "loss": 1.0, "new": True},
    ]
    path = tmp_path / "m.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in lines) + "\n")
    assert read_records(path) == [
        RunStart(event="start"),
        RunEvent(event="rollback", step=3, tokens=30),
        EvalRecord(step=1, tokens=5, stage=None, domain="x", loss=1.0),
    ]


def test_kinds_filter_skips_other_records_unchecked(tmp_path):
    path = tmp_path / "m.jsonl"
    path.write_text(
        '{"kind": "eval", "step": 1, "loss": 1.0}\n'  # no tokens, no domain: not wanted
        '{"kind": "train", "step": 1, "tokens": 8, "stage": "a", "lr": 0.1, "loss": 2.0}\n'
    )
    assert [r.kind for r in read_records(path, kinds=("train",))] == ["train"]
    with pytest.raises(UserError, match=r"m.jsonl:1: eval record needs a string 'domain'"):
        read_records(path)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"kind": "train", "step": 1.5, "tokens": 8, "lr": 0.1, "loss": 2.0}', "integer"),
        ('{"kind": "stage", "stage": "a", "index": 0, "event": "middle"}', "stage event"),
        ('{"kind": "train", "step": 1, "tokens": 8, "lr": 0.1, "loss": 2.0, "seconds": 3}', "seconds"),
        ('{"kind": "run", "event": "start", "params": "nan"}', "finite"),
        ('"text"', "expected a JSON object"),
    ],
)  # fmt: skip
def test_bad_records_name_file_and_line(tmp_path, line, message):
    path = tmp_path / "m.jsonl"
    path.write_text('{"kind": "run", "event": "end"}\n' + line + "\n")
    with pytest.raises(UserError, match=rf"m.jsonl:2: .*{message}"):
        read_records(path)


def test_head_and_truncate_keep_complete_lines_only(tmp_path):
    path = tmp_path / METRICS_FILE
    log = RunLogWriter(path)
    for step in range(5):
        log.write(RunEnd(step=step, tokens=step))
    log.close()
    with open(path, "a", encoding="utf-8") as f:
        f.write('{"kind": "run", "ev')  # a kill mid-write
    lines = path.read_bytes().split(b"\n")
    assert count_lines(path) == 5
    assert head(path, 2) == b"\n".join(lines[:2]) + b"\n"
    assert head(path, 99) == b"\n".join(lines[:5]) + b"\n"  # the partial line is not copied
    assert head(tmp_path / "none.jsonl", 3) == b"" and head(path, 0) == b""

    log = RunLogWriter(path)  # resume from a checkpoint taken after 3 records
    assert log.lines == 5
    log.truncate(3)
    assert log.lines == 3
    log.write(RunEnd(step=9, tokens=9))
    log.close()
    assert [r.step for r in read_records(path)] == [0, 1, 2, 9]


def test_sinks_see_every_record_after_its_line_is_written(tmp_path):
    path = tmp_path / METRICS_FILE

    class Recorder:
        def __init__(self) -> None:
            self.seen: list[tuple[Record, int]] = []
            self.closed = False

        def write(self, record: Record) -> None:
            self.seen.append((record, count_lines(path)))

        def close(self) -> None:
            self.closed = True

    sink = Recorder()
    log = RunLogWriter(path, [sink])
    records = [case[0] for case in CASES]
    for r in records:
        log.write(r)
    log.close()
    assert sink.seen == [(r, i) for i, r in enumerate(records, start=1)] and sink.closed


def test_null_log_writes_nothing_and_follows_truncate(tmp_path):
    log = NullLog()
    log.truncate(7)
    log.write(RunEnd(step=1, tokens=1))
    log.close()
    assert log.lines == 7 and not list(tmp_path.iterdir())


def test_tensorboard_sink_mirrors_train_and_eval_scalars_by_tokens():
    from rewarm.trackers.tensorboard_sink import TensorBoardSink

    class Fake:
        def __init__(self) -> None:
            self.scalars: list[tuple[str, float, int]] = []

        def add_scalar(self, tag: str, scalar_value: float, global_step: int) -> None:
            self.scalars.append((tag, scalar_value, global_step))

        def close(self) -> None:
            pass

    fake = Fake()
    sink = TensorBoardSink(fake)
    for record, _, _ in CASES:
        sink.write(record)
    sink.write(TrainRecord(step=4, tokens=512, stage="a", lr=0.1, loss=math.nan, grad_norm=1.0))
    assert fake.scalars == [
        ("train/loss", 5.5, 384),
        ("train/lr", 1e-3, 384),
        ("train/grad_norm", 0.7, 384),
        ("train/tokens_per_s", 1000.5, 384),
        ("eval/x/loss", 4.5, 384),
        ("eval/x/bits_per_byte", 1.5, 384),
        ("train/lr", 0.1, 512),  # a NaN loss is left out
        ("train/grad_norm", 1.0, 512),
    ]


def test_the_run_log_imports_without_torch():
    code = (
        "import sys\n"
        "import rewarm.runlog, rewarm.continual.compare, rewarm.laws.curves, rewarm.report.build\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr


def test_stage_end_epochs_by_domain_round_trip_and_stay_optional(tmp_path):
    end = StageRecord(
        stage="b", index=1, event="end", step=9, tokens=1152,
        tokens_by_domain={"x": 96, "y": 288}, epochs_by_domain={"x": 0.25, "y": 1.5},
    )  # fmt: skip
    assert json.loads(encode(end))["epochs_by_domain"] == {"x": 0.25, "y": 1.5}
    (tmp_path / "m.jsonl").write_text(encode(end) + "\n")
    assert read_records(tmp_path / "m.jsonl") == [end]
    old = {"kind": "stage", "stage": "a", "index": 0, "event": "end", "step": 6, "tokens": 768}
    (tmp_path / "old.jsonl").write_text(json.dumps(old) + "\n")
    (back,) = read_records(tmp_path / "old.jsonl")
    assert back.epochs_by_domain is None and "epochs_by_domain" not in encode(back)
    bad = {**old, "epochs_by_domain": {"x": "lots"}}
    (tmp_path / "bad.jsonl").write_text(json.dumps(bad) + "\n")
    with pytest.raises(UserError, match="bad.jsonl:1"):
        read_records(tmp_path / "bad.jsonl")
