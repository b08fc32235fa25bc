"""`rewarm report RUN [RUN ...] [--baseline RUN] [--out DIR] [--eps NATS]`.

Writes summary.md, PNG and SVG figures and a self-contained report.html, and
prints the summary table.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("runs", nargs="+", metavar="RUN", help="run directory with metrics.jsonl")
    parser.add_argument(
        "--baseline",
        metavar="RUN",
        help="the re-training run to compare against (default: detected by name or config)",
    )
    parser.add_argument(
        "--out", metavar="DIR", help="output directory (default: RUN/report, or ./report)"
    )
    parser.add_argument(
        "--eps",
        type=float,
        default=0.01,
        help="stability gap: recovered once loss is within EPS nats of its stage-start value",
    )


def run(args: argparse.Namespace) -> int:
    from rewarm.errors import UserError
    from rewarm.report.build import build_report
    from rewarm.runlog import read_run

    if args.eps < 0:
        raise UserError(f"--eps must be >= 0, got {args.eps}")
    logs = [read_run(path) for path in args.runs]
    seen: dict[str, int] = {}
    for log in logs:  # two runs with the same directory name get distinct labels
        seen[log.name] = seen.get(log.name, 0) + 1
    for log in logs:
        if seen[log.name] > 1:
            log.name = f"{log.path.resolve().parent.name}/{log.name}"
    default = Path(args.runs[0]) / "report" if len(args.runs) == 1 else Path("report")
    out = Path(args.out) if args.out else default
    text = build_report(logs, out, baseline=args.baseline, eps=args.eps)
    print(text)
    print(f"\nreport: {out / 'report.html'}")
    return 0
