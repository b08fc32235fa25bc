"""Declared parameters of a schedule kind and the checks that turn a raw spec into a
resolved one (every default filled, every value checked).

A spec is a plain table (`{"kind": "wsd", "warmup": 100, ...}`) from a run config or
the command line. Errors are `UserError`s whose message starts with the caller's
`where` and names the key: `runs.toml: stages[1].schedule.decay must be <= ...`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rewarm.errors import UserError


class _Required:
    def __repr__(self) -> str:
        return "required"


REQUIRED: Any = _Required()
"""Default of a parameter the spec must give."""
ABSENT: Any = None
"""Default of an optional parameter whose absence means something (infinite.anneal_start)."""

Default = Any  # a value, REQUIRED, ABSENT, or a callable (resolved so far, total) -> value


@dataclass(frozen=True)
class Param:
    type: str
    """"length"/"position" (in [0, total]), "ratio" ([0, 1]), "positive" (> 0), "gamma"
    ((0, 1]), "count" (integer >= 1), "switch" (true/false), "choice", "positions", "table"
    or "norms"."""
    default: Default
    doc: str
    choices: tuple[str, ...] = ()

    def default_text(self) -> str:
        if self.default is REQUIRED:
            return "required"
        if self.default is ABSENT:
            return "absent"
        if callable(self.default):
            return getattr(self.default, "__doc__", None) or "derived"
        return repr(self.default)


def _number(value: Any, key: str, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise UserError(f"{where}.{key} must be a number, got {value!r}")
    if not math.isfinite(value):
        raise UserError(f"{where}.{key} must be finite, got {value!r}")
    return float(value)


def _in_range(value: Any, key: str, where: str, total: float) -> float:
    x = _number(value, key, where)
    if x < 0:
        raise UserError(f"{where}.{key} must be >= 0, got {value!r}")
    if x > total:
        raise UserError(
            f"{where}.{key} must be <= the schedule's length ({total:g}), got {value!r}"
        )
    return x


def read_numbers(value: Any, key: str, where: str) -> list[float]:
    """A list of positive numbers, given inline or as a path to a text/JSON file of numbers.

    The file holds numbers separated by whitespace, commas or newlines (a JSON array
    reads the same way once the brackets are dropped). Relative paths are relative to
    the working directory, like every path in a run config.
    """
    if isinstance(value, str):
        path = Path(value)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as err:
            raise UserError(f"{where}.{key}: cannot read {value!r}: {err.strerror}") from None
        except UnicodeDecodeError:
            raise UserError(f"{where}.{key}: {value!r} is not a text file of numbers") from None
        items: list[Any] = []
        for tok in text.replace("[", " ").replace("]", " ").replace(",", " ").split():
            try:
                items.append(float(tok))
            except ValueError:
                raise UserError(f"{where}.{key}: {value!r} holds {tok!r}, not a number") from None
        label = f"{where}.{key} ({value})"
    elif isinstance(value, list):
        items = value
        label = f"{where}.{key}"
    else:
        raise UserError(
            f"{where}.{key} must be an array of numbers or a path to a file of numbers, "
            f"got {value!r}"
        )
    out = [_number(v, key, where) for v in items]
    if len(out) < 2:
        raise UserError(f"{label} must hold at least 2 numbers, got {len(out)}")
    if any(v <= 0 for v in out):
        raise UserError(f"{label} must hold only positive numbers (gradient norms)")
    return out


def check_value(param: Param, value: Any, key: str, where: str, total: float) -> Any:
    """Check one value against its declared type; return it normalised (floats, lists)."""
    kind = param.type
    if kind in ("length", "position"):
        return _in_range(value, key, where, total)
    if kind == "ratio":
        x = _number(value, key, where)
        if not 0.0 <= x <= 1.0:
            raise UserError(f"{where}.{key} must be in [0, 1], got {value!r}")
        return x
    if kind == "positive":
        x = _number(value, key, where)
        if x <= 0:
            raise UserError(f"{where}.{key} must be > 0, got {value!r}")
        return x
    if kind == "gamma":
        x = _number(value, key, where)
        if not 0.0 < x <= 1.0:
            raise UserError(f"{where}.{key} must be in (0, 1], got {value!r}")
        return x
    if kind == "count":
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise UserError(f"{where}.{key} must be an integer >= 1, got {value!r}")
        return value
    if kind == "switch":
        if not isinstance(value, bool):
            raise UserError(f"{where}.{key} must be true or false, got {value!r}")
        return value
    if kind == "choice":
        if value not in param.choices:
            known = ", ".join(repr(c) for c in param.choices)
            raise UserError(f"{where}.{key} must be one of {known}, got {value!r}")
        return value
    if kind == "positions":
        if not isinstance(value, list) or not value:
            raise UserError(f"{where}.{key} must be a non-empty array of positions, got {value!r}")
        xs = [_in_range(v, key, where, total) for v in value]
        if any(b <= a for a, b in zip(xs, xs[1:], strict=False)):
            raise UserError(f"{where}.{key} must be strictly increasing, got {value!r}")
        return xs
    if kind == "table":
        if not isinstance(value, dict):
            raise UserError(f"{where}.{key} must be a table, got {value!r}")
        return dict(value)
    if kind == "norms":
        return read_numbers(value, key, where)
    raise TypeError(f"unknown parameter type {kind!r}")  # programming error


def resolve_params(
    params: dict[str, Param],
    spec: dict[str, Any],
    total: float,
    where: str,
) -> dict[str, Any]:
    """Check every key of `spec` against `params` and fill defaults, in declared order.

    Unknown keys are errors (a typo must never fall back to a default silently).
    """
    for key in spec:
        if key != "kind" and key not in params:
            known = ", ".join(["kind", *params])
            raise UserError(f"{where}.{key} is not a key of kind {spec['kind']!r} (known: {known})")
    out: dict[str, Any] = {"kind": spec["kind"]}
    for key, param in params.items():
        if key in spec:
            out[key] = check_value(param, spec[key], key, where, total)
        elif param.default is REQUIRED:
            raise UserError(f"{where}.{key} is required for kind {spec['kind']!r}")
        elif param.default is ABSENT:
            continue
        elif callable(param.default):
            out[key] = param.default(out, total)
        else:
            out[key] = param.default
    return out
