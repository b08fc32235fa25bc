"""`rewarm schedule list | show | plot`: inspect any learning-rate schedule.

    rewarm schedule list
    rewarm schedule show SPEC --total N [--at P1,P2,...] [--json]
    rewarm schedule plot SPEC... --total N [--out FILE.png]
    rewarm schedule plot CONFIG.toml [--set key=value ...] [--out FILE.png]

SPEC is an inline TOML or JSON table: '{kind = "cosine", warmup = 10}' or
'{"kind": "cosine", "warmup": 10}'. Positions run from 0 to N (the last value is at N).
"""

from __future__ import annotations

import argparse
import json
import tomllib
from pathlib import Path
from typing import Any

from rewarm.errors import UserError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    sub.add_parser("list", help="every kind with its keys and one-line meaning")

    show = sub.add_parser("show", help="print a schedule's multiplier at some positions")
    show.add_argument("spec", metavar="SPEC", help="inline TOML or JSON table")
    show.add_argument("--total", type=float, required=True, help="schedule length N")
    show.add_argument(
        "--at", default="", help="comma-separated positions (default: 20 evenly spaced)"
    )
    show.add_argument("--json", action="store_true", help="print a JSON array of numbers only")

    plot = sub.add_parser("plot", help="draw schedules (or a config's stage plan) to a figure")
    plot.add_argument("items", nargs="+", metavar="SPEC|CONFIG.toml")
    plot.add_argument("--total", type=float, default=None, help="schedule length N (for SPECs)")
    plot.add_argument("--out", default=None, help="figure path (.png, .pdf, .svg)")
    plot.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="config override (CONFIG.toml only)",
    )


def parse_spec(text: str) -> dict[str, Any]:
    """An inline JSON or TOML table, or a small TOML document (`kind = "wsd"` lines)."""
    stripped = text.strip()
    value: Any = None
    if stripped.startswith("{"):
        try:
            value = json.loads(stripped)
        except json.JSONDecodeError:
            try:
                value = tomllib.loads(f"spec = {stripped}")["spec"]
            except tomllib.TOMLDecodeError:
                value = None
    else:
        try:
            value = tomllib.loads(stripped)
        except tomllib.TOMLDecodeError:
            value = None
    if not isinstance(value, dict) or not value:
        raise UserError(f"SPEC {text!r} is not a TOML or JSON table (e.g. '{{kind = \"cosine\"}}')")
    return value


def _total(value: float | None) -> float:
    if value is None:
        raise UserError("--total is required with a SPEC (the schedule's length)")
    if not value > 0 or value == float("inf"):
        raise UserError(f"--total must be a finite number > 0, got {value:g}")
    return value


def _positions(text: str, total: float) -> list[float]:
    import numpy as np

    if not text.strip():
        return [float(x) for x in np.linspace(0.0, total, 20)]
    out = []
    for tok in text.split(","):
        try:
            x = float(tok)
        except ValueError:
            raise UserError(f"--at: {tok.strip()!r} is not a number") from None
        if not 0 <= x <= total:
            raise UserError(
                f"--at: position {tok.strip()} is outside [0, --total] = [0, {total:g}]"
            )
        out.append(x)
    return out


def _label(spec: dict[str, Any]) -> str:
    rest = ", ".join(f"{k}={v}" for k, v in spec.items() if k != "kind")
    return f"{spec['kind']} ({rest})" if rest else str(spec["kind"])


def run_list() -> int:
    from rewarm.schedules import KINDS

    for name, kind in KINDS.items():
        source = f"  [{kind.source}]" if kind.source != "-" else ""
        print(f"{name}: {kind.summary}{source}")
        for key, p in kind.params.items():
            extra = f" ({', '.join(p.choices)})" if p.choices else ""
            print(f"    {key:<15} default {p.default_text():<28} {p.doc}{extra}")
    return 0


def run_show(args: argparse.Namespace) -> int:
    from rewarm.schedules.kinds import resolve_spec
    from rewarm.schedules.lr_schedule import Schedule

    total = _total(args.total)
    spec = parse_spec(args.spec)
    sched = Schedule(resolve_spec(spec, total, "SPEC"), total)
    positions = _positions(args.at, total)
    values = [sched(p) for p in positions]
    if args.json:
        print(json.dumps(values))
        return 0
    print(f"# {_label(sched.spec)}, total {total:g}")
    print(f"{'position':>14}  multiplier")
    for p, m in zip(positions, values, strict=True):
        print(f"{p:>14g}  {m:.10g}")
    return 0


def run_plot(args: argparse.Namespace) -> int:
    from rewarm.schedules import lr_plot
    from rewarm.schedules.kinds import resolve_spec
    from rewarm.schedules.lr_schedule import Schedule

    items: list[str] = args.items
    if len(items) == 1 and items[0].strip().lower().endswith(".toml") and "{" not in items[0]:
        from rewarm import runconfig
        from rewarm.schedules import StagePlan

        cfg = runconfig.load(items[0], args.overrides)
        plan = StagePlan.from_config(cfg)
        out = Path(args.out or f"{Path(items[0]).stem}.schedule.png")
        lr_plot.plot_plan(plan, out, title=f"{cfg.run.name}: learning rate by stage")
    else:
        if args.overrides:
            raise UserError("--set applies to a CONFIG.toml only")
        total = _total(args.total)
        where = ["SPEC"] if len(items) == 1 else [f"SPEC {i + 1}" for i in range(len(items))]
        specs = [parse_spec(text) for text in items]
        scheds = [
            Schedule(resolve_spec(s, total, w), total) for s, w in zip(specs, where, strict=True)
        ]
        out = Path(args.out or "schedule.png")
        lr_plot.plot_schedules(scheds, [_label(s) for s in specs], total, out)
    print(f"wrote {out}")
    return 0


def run(args: argparse.Namespace) -> int:
    if args.action == "list":
        return run_list()
    if args.action == "show":
        return run_show(args)
    return run_plot(args)
