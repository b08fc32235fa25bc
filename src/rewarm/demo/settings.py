"""What one `rewarm demo` runs: the sizes and the two corpora, from flags or a small TOML.

Sources of a setting, later ones winning:

1. the built-in sizes (`arms.DEFAULT`, or `arms.QUICK` with `--quick`) and the
   built-in corpora (`python-docs` as `docs`, then `python-code` as `code`);
2. a settings file (`--config demo.toml`): any `DemoSize` field at the top level,
   and `[old]` / `[new]` tables with `name`, `source` and `field`:

       preset = "llama-small"
       stage1_tokens = 196608
       stage2_tokens = 163840

       [old]
       name = "english"
       source = ["corpus/en/*.txt"]

       [new]
       name = "code"
       source = "code.jsonl"
       field = "content"

3. `--set KEY=VALUE` (a TOML literal, e.g. `--set stage1_tokens=196608`,
   `--set old.name=\"english\"`);
4. `--old SRC [SRC ...]`, `--new SRC [SRC ...]`, `--names OLD,NEW` and `--field F`.

A corpus given by source without a name is called `old` or `new`. Every key is
checked (unknown keys and wrong types are `UserError`s naming the key).
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from rewarm.config.loader import apply_override, build
from rewarm.demo.arms import DEFAULT, NEW, OLD, QUICK, Corpus, DemoSize
from rewarm.errors import UserError

_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")


@dataclass(frozen=True, kw_only=True)
class DemoSettings:
    size: DemoSize
    old: Corpus
    """Stage 1's corpus (the one forgetting is measured on)."""
    new: Corpus
    """Stage 2's corpus (the shift)."""
    quick: bool = False

    @property
    def builtin(self) -> bool:
        """The built-in prose -> code shift?"""
        return self.old == OLD and self.new == NEW


def _read(path: str) -> dict[str, Any]:
    try:
        return tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"{path}: settings file not found") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise UserError(f"{path}: not valid TOML: {err}") from None


def _corpus(
    table: Any, default: Corpus, role: str, source: str, sources: Sequence[str] | None
) -> Corpus:
    if table is None:
        table = {}
    if not isinstance(table, dict):
        raise UserError(f"{source}: {role} must be a table (name, source, field)")
    given = {**table}
    if sources:
        given["source"] = list(sources) if len(sources) > 1 else sources[0]
    if "source" in given and "name" not in given:
        given["name"] = role  # the user's corpus: "old" / "new" unless named
    merged = {**asdict(default), **given}
    corpus = build(Corpus, merged, source, role)
    if not _NAME.match(corpus.name):
        raise UserError(
            f"{source}: {role}.name {corpus.name!r} must be a plain name "
            "(letters, digits, '_', '-', '.')"
        )
    return corpus


def load_settings(
    *,
    quick: bool = False,
    path: str | None = None,
    sets: Sequence[str] = (),
    old: Sequence[str] | None = None,
    new: Sequence[str] | None = None,
    names: str | None = None,
    field: str | None = None,
) -> DemoSettings:
    """The settings of one demo (see the module docstring for the order)."""
    source = path or "rewarm demo"
    raw = _read(path) if path else {}
    for item in sets:
        apply_override(raw, item)
    if names is not None:
        parts = [n.strip() for n in names.split(",")]
        if len(parts) != 2 or not all(parts):
            raise UserError(f"--names {names!r}: expected OLD,NEW (two names)")
        for role, name in zip(("old", "new"), parts, strict=True):
            raw.setdefault(role, {})["name"] = name
    if field is not None:
        for role, sources in (("old", old), ("new", new)):
            if sources:
                raw.setdefault(role, {})["field"] = field
    tables = {role: raw.pop(role, None) for role in ("old", "new")}
    base = QUICK if quick else DEFAULT
    size = build(DemoSize, {**asdict(base), **raw}, source, "")
    first = _corpus(tables["old"], OLD, "old", source, old)
    second = _corpus(tables["new"], NEW, "new", source, new)
    if first.name == second.name:
        raise UserError(f"{source}: old and new corpora need different names ({first.name!r})")
    return DemoSettings(size=size, old=first, new=second, quick=quick)
