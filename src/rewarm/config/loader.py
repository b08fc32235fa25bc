"""Loading: TOML text -> `--set` overrides -> typed dataclasses -> section validation.

The conversion is generic: `build(cls, table, source, prefix)` fills any keyword-only
dataclass from a TOML table, checking each value against its field's annotation
(str, bool, int, float, `Literal`, unions, `list[...]`, `dict[str, ...]`, nested
dataclasses, `Any`). Unknown keys are errors, not warnings: a typo must never
silently fall back to a default. Every error is a `UserError` naming the source
file and the dotted key (`stages[1].mix.code`).

This checks the config's own sections only. A stage's `schedule` and `replay`
tables are read by `rewarm.schedules` and `rewarm.data.replay`, which sit above
this package; `rewarm.runconfig` loads a config and checks those too.
"""

from __future__ import annotations

import dataclasses
import math
import tomllib
import types
import typing
from pathlib import Path
from typing import Any, Literal, TypeVar

from rewarm.config.schema import Config
from rewarm.config.validate import validate
from rewarm.errors import UserError

T = TypeVar("T")


def load_config(path: str | Path, overrides: list[str] | None = None) -> Config:
    """Read a TOML config, apply `--set key=value` overrides, check every section."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"{path}: config file not found") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise UserError(f"{path}: not valid TOML: {err}") from None
    except OSError as err:
        raise UserError(f"{path}: cannot read: {err.strerror}") from None
    for item in overrides or []:
        apply_override(raw, item, str(path))
    return config_from_dict(raw, source=str(path))


def apply_override(raw: dict[str, Any], item: str, source: str = "--set") -> None:
    """Apply `a.b.c=value` (value parsed as a TOML literal, else a plain string).

    List items are addressed by index: `stages.1.tokens=2e6` is not valid TOML for an
    int, so write `stages.1.tokens=2000000`.
    """
    if "=" not in item:
        raise UserError(f"--set {item!r}: expected key=value")
    key, _, text = item.partition("=")
    try:
        value = tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        value = text
    parts = key.strip().split(".")
    node: Any = raw
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        if isinstance(node, list):
            if not part.isdigit() or int(part) >= len(node):
                raise UserError(f"--set {key}: no list item {part!r}")
            if last:
                node[int(part)] = value
            else:
                node = node[int(part)]
        elif isinstance(node, dict):
            if last:
                node[part] = value
            else:
                node = node.setdefault(part, {})
        else:
            raise UserError(f"--set {key}: {'.'.join(parts[:i])} is not a table")


def config_from_dict(raw: dict[str, Any], source: str = "<config>") -> Config:
    """A `Config` from parsed TOML tables, every section checked (see the module doc)."""
    if not isinstance(raw, dict):
        raise UserError(f"{source}: config must be a table")
    if "run" not in raw:
        raise UserError(f"{source}: missing required table [run] (with at least run.name)")
    cfg = build(Config, raw, source, "")
    cfg.source = source
    validate(cfg)
    return cfg


# -- generic conversion -------------------------------------------------------------------


def build(cls: type[T], value: Any, source: str, prefix: str) -> T:
    """An instance of the dataclass `cls` from the table `value` (keys at `prefix`)."""
    where = prefix or "the top level"
    if not isinstance(value, dict):
        raise UserError(f"{source}: {where} must be a table, got {value!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.metadata.get("toml", True)}  # type: ignore[arg-type]
    for key in value:
        if key not in fields:
            known = ", ".join(sorted(fields))
            dotted = f"{prefix}.{key}" if prefix else key
            raise UserError(f"{source}: unknown key {dotted!r} (known here: {known})")
    kwargs: dict[str, Any] = {}
    for name, f in fields.items():
        dotted = f"{prefix}.{name}" if prefix else name
        if name in value:
            kwargs[name] = convert(hints[name], value[name], source, dotted)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise UserError(f"{source}: missing required key {dotted!r}")
    return cls(**kwargs)


def choices_text(choices: tuple[object, ...]) -> str:
    """'a' or 'b'; 'a', 'b' or 'c' (how a message lists the allowed values)."""
    quoted = [repr(c) for c in choices]
    return quoted[0] if len(quoted) == 1 else f"{', '.join(quoted[:-1])} or {quoted[-1]}"


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin in (types.UnionType, typing.Union):
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    if origin is Literal:
        return choices_text(typing.get_args(tp))
    if origin is not None:
        return {list: "array", dict: "table"}.get(origin, str(origin))
    return {
        str: "string",
        int: "integer",
        float: "number",
        bool: "boolean",
        list: "array",
        dict: "table",
    }.get(tp, getattr(tp, "__name__", str(tp)))


def _open_choice(arg: Any, args: tuple[Any, ...]) -> bool:
    """A `Literal` whose values' type is also in the union (`Literal["a"] | str`): the
    literal documents the fixed values, the plain type is what the loader accepts."""
    return typing.get_origin(arg) is Literal and all(type(v) in args for v in typing.get_args(arg))


def convert(tp: Any, value: Any, source: str, key: str) -> Any:
    """Check `value` against the annotation `tp`, converting where lossless (int -> float)."""
    origin = typing.get_origin(tp)
    if origin in (types.UnionType, typing.Union):
        args = typing.get_args(tp)
        accepted = [a for a in args if not _open_choice(a, args)]
        if len(accepted) == 1:
            return convert(accepted[0], value, source, key)
        for arg in accepted:
            try:
                return convert(arg, value, source, key)
            except UserError:
                continue
        raise UserError(f"{source}: {key} must be {_type_name(tp)}, got {value!r}")
    if origin is Literal:
        return _literal(typing.get_args(tp), value, source, key)
    if dataclasses.is_dataclass(tp):
        return build(tp, value, source, key)  # type: ignore[arg-type]
    if origin is list:
        if not isinstance(value, list):
            raise UserError(f"{source}: {key} must be an array, got {value!r}")
        (item_tp,) = typing.get_args(tp)
        return [convert(item_tp, v, source, f"{key}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise UserError(f"{source}: {key} must be a table, got {value!r}")
        _, val_tp = typing.get_args(tp)
        return {k: convert(val_tp, v, source, f"{key}.{k}") for k, v in value.items()}
    if tp is Any:
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise UserError(f"{source}: {key} must be a number, got {value!r}")
        if not math.isfinite(value):
            raise UserError(f"{source}: {key} must be finite, got {value!r}")
        return float(value)
    if tp is int:
        if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
            value = int(value)  # allow 2e6-style literals given as floats
        if isinstance(value, bool) or not isinstance(value, int):
            raise UserError(f"{source}: {key} must be an integer, got {value!r}")
        return value
    if tp in (str, bool):
        if not isinstance(value, tp):
            raise UserError(f"{source}: {key} must be a {_type_name(tp)}, got {value!r}")
        return value
    raise TypeError(f"unsupported config annotation {tp!r}")  # programming error


def _literal(choices: tuple[Any, ...], value: Any, source: str, key: str) -> Any:
    """One of `choices` (strings): a non-string is a type error, another string names
    the allowed values."""
    if not isinstance(value, str):
        raise UserError(f"{source}: {key} must be a string, got {value!r}")
    if value not in choices:
        raise UserError(f"{source}: {key} must be {choices_text(choices)}")
    return value
