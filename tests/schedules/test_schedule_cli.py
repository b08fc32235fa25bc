"""`rewarm schedule list | show | plot` as a user runs it."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest

from rewarm.cli import main
from rewarm.schedules import KINDS

ACCEPT = '{"kind":"wsd","warmup":100,"decay":200,"shape":"1-sqrt","final_ratio":0.0}'


def test_acceptance_example_prints_exactly_the_array():
    proc = subprocess.run(
        [sys.executable, "-m", "rewarm", "schedule", "show", ACCEPT, "--total", "1000",
         "--at", "0,50,100,800,900,1000", "--json"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "[0.0, 0.5, 1.0, 1.0, 0.2928932188134524, 0.0]\n"
    assert json.loads(proc.stdout)[4] == 1 - math.sqrt(0.5)


def test_show_accepts_inline_toml_and_defaults_to_20_positions(capsys):
    assert (
        main(
            ["schedule", "show", '{kind = "linear", final_ratio = 0.5}', "--total", "19", "--json"]
        )
        == 0
    )
    values = json.loads(capsys.readouterr().out)
    assert len(values) == 20
    assert values[0] == 1.0 and values[-1] == 0.5
    assert all(a > b for a, b in zip(values, values[1:], strict=False))


def test_show_table_lists_positions(capsys):
    assert (
        main(["schedule", "show", "{kind='constant', warmup=4}", "--total", "8", "--at", "0,2,8"])
        == 0
    )
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("# constant")
    assert [ln.split() for ln in lines[2:]] == [["0", "0"], ["2", "0.5"], ["8", "1"]]


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["show", "kind=wsd", "--total", "10"], "is not a TOML or JSON table"),
        (["show", '{"kind": "nope"}', "--total", "10"], "SPEC.kind must be one of"),
        (["show", '{"kind": "wsd", "decy": 3}', "--total", "10"], "SPEC.decy is not a key"),
        (["show", '{"kind": "wsd"}', "--total", "10", "--at", "1,x"], "--at: 'x' is not a number"),
        (["show", '{"kind": "wsd"}', "--total", "10", "--at", "11"], "outside [0, --total]"),
        (["show", '{"kind": "wsd"}', "--total", "0"], "--total must be"),
        (["plot", '{"kind": "wsd"}'], "--total is required"),
        (
            ["plot", '{"kind": "wsd"}', '{"kind": "cosine", "warmup": 50}', "--total", "10"],
            "SPEC 2.warmup",
        ),
    ],
)
def test_bad_input_exits_2_with_one_line(capsys, argv, needle):
    assert main(["schedule", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("rewarm schedule: error: ") and needle in err
    assert err.count("\n") == 1


def test_list_names_every_kind_and_key(capsys):
    assert main(["schedule", "list"]) == 0
    out = capsys.readouterr().out
    for name, kind in KINDS.items():
        assert f"\n{name}: " in f"\n{out}"
        for key in kind.params:
            assert f"    {key} " in out


def _png_size(path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def test_plot_specs_and_config(tmp_path, capsys):
    out = tmp_path / "figs" / "three.png"
    specs = [
        '{kind = "cosine", warmup = 50, final_ratio = 0.1}',
        '{kind = "wsd", warmup = 50, decay = 200}',
        '{kind = "infinite", warmup = 50, cooldown_end = 400, constant_ratio = 0.5, anneal_start = 800, final_ratio = 0.05}',
    ]
    assert main(["schedule", "plot", *specs, "--total", "1000", "--out", str(out)]) == 0
    assert _png_size(out)[0] >= 600
    assert list(out.parent.iterdir()) == [out]  # no temporary file left behind

    cfg = tmp_path / "run.toml"
    cfg.write_text(
        '[run]\nname = "r"\n[domains.a]\nsource = "a.txt"\n'
        '[[stages]]\nname = "one"\ntokens = 100000\nmix = { a = 1.0 }\n'
        'schedule = { kind = "cosine", warmup = 1000, final_ratio = 0.1 }\n'
        '[[stages]]\nname = "two"\ntokens = 50000\nmix = { a = 1.0 }\n'
        'schedule = { kind = "rewarm", warmup = 5000 }\n'
    )
    plan_png = tmp_path / "plan.png"
    assert main(["schedule", "plot", str(cfg), "--out", str(plan_png)]) == 0
    assert _png_size(plan_png)[0] >= 600
    assert f"wrote {plan_png}" in capsys.readouterr().out


def test_plot_config_errors_name_the_key(tmp_path, capsys):
    cfg = tmp_path / "run.toml"
    cfg.write_text(
        '[run]\nname = "r"\n[domains.a]\nsource = "a.txt"\n'
        '[[stages]]\nname = "one"\ntokens = 100000\nmix = { a = 1.0 }\n'
        'schedule = { kind = "wsd", shape = "sqrt" }\n'
    )
    assert main(["schedule", "plot", str(cfg), "--out", str(tmp_path / "x.png")]) == 2
    assert "stages[0].schedule.shape" in capsys.readouterr().err
    assert not (tmp_path / "x.png").exists()
