"""`task` records (lm-evaluation-harness results): written, read back, strict on the
numbers, lenient on the optional fields; read into `RunLog.tasks`."""

from __future__ import annotations

import json
import math

import pytest

from rewarm.errors import UserError
from rewarm.runlog import (
    METRICS_FILE,
    RunEnd,
    RunLogWriter,
    TaskRecord,
    encode,
    read_records,
    read_run,
)

FULL = TaskRecord(
    step=4,
    tokens=512,
    stage="a",
    task="rewarm_docs_names",
    metric="acc",
    value=0.75,
    stderr=0.05,
    higher_is_better=True,
    samples=48,
    domain="docs",
)


def test_line_format_and_round_trip(tmp_path):
    line = json.loads(encode(FULL))
    assert list(line) == [
        "kind", "step", "tokens", "stage", "task", "metric", "value", "stderr",
        "higher_is_better", "samples", "domain",
    ]  # fmt: skip
    assert line["kind"] == "task"
    bare = TaskRecord(step=0, tokens=0, stage="a", task="t", metric="acc", value=math.nan)
    assert json.loads(encode(bare)) == {
        "kind": "task", "step": 0, "tokens": 0, "stage": "a", "task": "t", "metric": "acc",
        "value": "nan", "stderr": None,
    }  # fmt: skip
    path = tmp_path / METRICS_FILE
    w = RunLogWriter(path)
    for r in (FULL, bare, RunEnd(step=4, tokens=512, task_evaluations=3)):
        w.write(r)
    w.close()
    back = read_records(path)
    assert back[0] == FULL
    assert back[1].task == "t" and math.isnan(back[1].value) and back[1].domain is None
    assert back[2] == RunEnd(step=4, tokens=512, task_evaluations=3)
    log = read_run(tmp_path)
    assert log.tasks == [back[0], back[1]] and not log.evals


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"value": "high"}, "field 'value' must be a number"),
        ({"task": ""}, "needs a string 'task'"),
        ({"metric": None}, "needs a string 'metric'"),
        ({"tokens": 1.5}, "field 'tokens' must be an integer"),
    ],
)
def test_bad_task_records_name_the_line(tmp_path, change, message):
    rec = json.loads(encode(FULL)) | change
    path = tmp_path / METRICS_FILE
    path.write_text(encode(FULL) + "\n" + json.dumps(rec) + "\n", encoding="utf-8")
    with pytest.raises(UserError, match=f"{METRICS_FILE}:2: .*{message}"):
        read_records(path)


def test_optional_fields_of_other_types_read_as_missing(tmp_path):
    rec = json.loads(encode(FULL)) | {"higher_is_better": "yes", "domain": 3, "extra": 1}
    path = tmp_path / METRICS_FILE
    path.write_text(json.dumps(rec) + "\n", encoding="utf-8")
    (back,) = read_records(path, kinds=["task"])
    assert back.higher_is_better is None and back.domain is None and back.value == 0.75
