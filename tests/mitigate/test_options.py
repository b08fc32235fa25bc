"""A stage's average, mer and merge tables: defaults and one-line errors naming the key."""

from __future__ import annotations

import pytest

from rewarm.errors import UserError
from rewarm.mitigate.options import average_spec, mer_spec, merge_spec
from tests.runhelpers import load, write_config


def test_defaults_follow_the_papers():
    avg = average_spec({"kind": "uniform", "every_tokens": 256}, 128, "w")
    assert avg is not None and (avg.last, avg.apply_at_end, avg.label) == (5, False, "uniform")
    ema = average_spec({"kind": "ema"}, 128, "w")
    assert ema is not None and (ema.every_tokens, ema.decay) == (128, 0.999)
    wsm = average_spec({"kind": "wsm", "every_tokens": 128}, 128, "w")
    assert wsm is not None and wsm.label == "wsm-1-sqrt"
    mer = mer_spec({}, 128, "w") or mer_spec({"beta": 0.1}, 128, "w")
    assert mer is not None and (mer.every_tokens, mer.beta) == (500 * 128, 0.1)
    assert merge_spec({}, "w") is None and average_spec({}, 128, "w") is None


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ('average = { kind = "mean" }', r"stages\[1\]\.average\.kind must be one of"),
        ('average = { kind = "uniform" }', r"average\.every_tokens is required"),
        ('average = { kind = "ema", every_tokens = 64 }', r"average\.every_tokens must be"),
        ('average = { kind = "ema", decay = 1.0 }', r"average\.decay must be"),
        ('average = { kind = "wsm", every_tokens = 128, shape = "x" }', r"average\.shape"),
        ('average = { kind = "ema", n = 2 }', r"average: unknown key 'n'"),
        ("mer = { beta = 1.5 }", r"stages\[1\]\.mer\.beta must be a number in \[0, 1\]"),
        ("merge = { }", None),
        ("merge = { lambda = 0.5 }", r"merge: unknown key 'lambda'"),
        (
            'merge = { weight = 0.5 }\naverage = { kind = "ema", apply_at_end = true }',
            "choose one",
        ),
    ],
)
def test_bad_tables_name_file_and_key(tmp_path, extra, message):
    path = write_config(tmp_path, extra=extra + "\n")
    if message is None:
        load(path)  # an empty table is no mitigation
        return
    with pytest.raises(UserError, match=message) as err:
        load(path)
    assert str(err.value).startswith(str(path))
