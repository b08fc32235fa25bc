"""docs/config.md documents every config key with its default (checked against the schema)."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest
import tomli_w

from rewarm import config as C

DOC = Path(__file__).resolve().parents[2] / "docs" / "config.md"
SECTIONS = {
    "run": C.RunSection,
    "model": C.ModelSection,
    "tokenizer": C.TokenizerSection,
    "data": C.DataSection,
    "domains.NAME": C.DomainSection,
    "train": C.TrainSection,
    "eval": C.EvalSection,
    "[eval.tasks]": C.TaskSection,
    "checkpoint": C.CheckpointSection,
    "log": C.LogSection,
    "[stages]": C.StageSection,
}


def _tables() -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    current = None
    for line in DOC.read_text(encoding="utf-8").splitlines():
        head = re.match(r"## \[(.+)\]$", line)
        if head:
            current = out.setdefault(head.group(1), {})
        row = re.match(r"\| `(\w+)` \| (.+?) \| (.+) \|$", line)
        if row and current is not None:
            current[row.group(1)] = row.group(2)
    return out


@pytest.mark.parametrize("section", list(SECTIONS))
def test_every_key_documented_with_its_default(section):
    table = _tables()[section]
    fields = dataclasses.fields(SECTIONS[section])
    assert set(table) == {f.name for f in fields}
    for f in fields:
        if f.default is not dataclasses.MISSING:
            default = f.default
        elif f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        else:
            assert table[f.name] == "(required)"
            continue
        assert table[f.name] == f"`{_literal(default) if default != {} else '{}'}`", f.name


def _literal(value: object) -> str:
    """`value` as a one-line TOML literal (tables inline), as the docs write defaults."""
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_literal(v)}" for k, v in value.items()) + " }"
    if isinstance(value, list):
        return "[" + ", ".join(_literal(v) for v in value) + "]"
    return tomli_w.dumps({"v": value}).removeprefix("v = ").strip()
