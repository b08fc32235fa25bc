"""Run every rewarm benchmark and print every figure with its target and pass/miss.

    python benchmarks/run.py [--quick] [--only throughput,overheads,...]

Each benchmark runs as its own process (`python benchmarks/NAME.py [--quick]`),
prints its own tables, and writes `benchmarks/results/NAME.json`. A result file
with a `figures` list (items with name, value, unit, op, target, status, note, as
`common.Figure` writes them) is gathered into the summary printed at the end and
written to `benchmarks/results/summary.json`. `--quick` is passed through to every
script; the quick run finishes in under 5 minutes on a 2-core CPU.

`gpu.py` (the GPU check) is not run here: it needs a CUDA device (`--tiny` runs its
steps on a CPU, as a test does). The memory saving of activation checkpointing
comes from scaling.py, the MFU-vs-ceiling line from throughput.py.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from typing import Any

import common

# Run order: cheap first, so a failure shows early; throughput last (the longest).
BENCHMARKS = ("data", "laws", "document_mask", "prepare", "overheads", "scaling", "throughput")


def run_one(name: str, quick: bool) -> tuple[int, float]:
    script = common.BENCH_DIR / f"{name}.py"
    if not script.exists():
        print(f"== {name}: {script.relative_to(common.REPO_ROOT)} not found, skipped", flush=True)
        return -1, 0.0
    cmd = [sys.executable, str(script.relative_to(common.REPO_ROOT))] + (
        ["--quick"] if quick else []
    )
    print(f"== {name}: {' '.join(cmd[1:])}", flush=True)
    t0 = time.perf_counter()
    rc = subprocess.call(cmd, cwd=common.REPO_ROOT)
    elapsed = time.perf_counter() - t0
    print(f"== {name}: exit {rc} in {elapsed:.0f} s", flush=True)
    return rc, elapsed


def gather(name: str, started: float) -> list[dict[str, Any]]:
    """The figures of `results/NAME.json` if it was written by this run."""
    path = common.RESULTS_DIR / f"{name}.json"
    if not path.exists() or path.stat().st_mtime < started:
        return []
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return []
    if not isinstance(data, dict):
        return []
    figs = data.get("figures")
    if figs is None and name in ADAPTERS:
        figs = ADAPTERS[name](data)
    return [f for f in figs or [] if isinstance(f, dict) and "name" in f and "value" in f]


def data_figures(data: dict[str, Any]) -> list[dict[str, Any]]:
    """Figures from data.py's result file, which has no `figures` list of its own."""
    out: list[dict[str, Any]] = []
    runs = [r for r in data.get("runs", []) if isinstance(r, dict)]
    target = data.get("target_tokens_per_s")
    if runs and isinstance(target, int | float):
        worst = min(runs, key=lambda r: r.get("tokens_per_s", 0))
        out.append(
            {
                "name": "sampler tokens/s, one core (slowest shape)",
                "value": worst.get("tokens_per_s", float("nan")),
                "unit": "tokens/s",
                "op": ">=",
                "target": target,
                "note": f"seq {worst.get('seq_len')} x {worst.get('batch_tokens')} tokens",
            }
        )
    for shape, g in (data.get("peak_rss_ratio_10x") or {}).items():
        if isinstance(g, dict) and "rss_anon" in g:
            out.append(
                {
                    "name": f"anonymous memory, corpus x10 ({shape})",
                    "value": g["rss_anon"],
                    "unit": "x",
                    "op": "<=",
                    "target": 1.1,
                    "note": "flat: x1.0 expected",
                }
            )
    return out


def laws_figures(data: dict[str, Any]) -> list[dict[str, Any]]:
    """Figures from laws.py's result file: held-out errors, MPL against the published ones."""
    try:
        import laws  # benchmarks/laws.py, for its TARGETS (published MPL PredE, WorstE)

        targets = dict(laws.TARGETS)
    except Exception:  # a missing or broken laws.py leaves the figures untargeted
        targets = {}
    out: list[dict[str, Any]] = []
    for r in data.get("results", []):
        if not isinstance(r, dict) or not isinstance(r.get("held_out"), dict):
            continue
        h, size, law = r["held_out"], r.get("size"), r.get("law")
        tgt = targets.get(size) if law == "mpl" else None
        for i, key in enumerate(("pred_e", "worst_e")):
            out.append(
                {
                    "name": f"{law} {size} held-out {'PredE' if i == 0 else 'WorstE'}",
                    "value": h.get(key, float("nan")),
                    "unit": "",
                    "op": "<=" if tgt else "",
                    "target": tgt[i] if tgt else None,
                    "note": "published MPL figure" if tgt else "",
                }
            )
    return out


ADAPTERS = {"data": data_figures, "laws": laws_figures}


def as_row(bench: str, f: dict[str, Any]) -> list[Any]:
    op, target = f.get("op") or "", f.get("target")
    fig = common.Figure(
        name=str(f["name"]),
        value=float(f["value"]) if isinstance(f["value"], int | float) else float("nan"),
        unit=str(f.get("unit", "")),
        op=op,
        target=float(target) if isinstance(target, int | float) else None,
        note=str(f.get("note", "")),
    )
    status = f.get("status") or fig.status
    row = fig.row()
    row[4] = (
        "pass"
        if status in ("pass", True)
        else "MISS"
        if status in ("MISS", "miss", "fail", False)
        else status
    )
    return [bench, *row]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="smaller runs; under 5 minutes in all")
    p.add_argument("--only", default=",".join(BENCHMARKS), help="comma-separated subset")
    args = p.parse_args(argv)
    names = [n for n in args.only.split(",") if n]
    t_all = time.time()
    status: dict[str, tuple[int, float]] = {}
    rows: list[list[Any]] = []
    for name in names:
        started = time.time()
        status[name] = run_one(name, args.quick)
        rows += [as_row(name, f) for f in gather(name, started)]
    total = time.time() - t_all
    print()
    print(
        f"== summary ({'quick' if args.quick else 'full'} run, {total:.0f} s, "
        f"{common.machine_info()['cpu']}, {common.machine_info()['cores']} cores)"
    )
    print(
        common.table(
            [[n, rc if rc >= 0 else "missing", s] for n, (rc, s) in status.items()],
            ["benchmark", "exit", "seconds"],
        )
    )
    print(common.table(rows, ["benchmark", *common.FIGURE_HEADER]))
    misses = sum(1 for r in rows if r[5] == "MISS")
    passes = sum(1 for r in rows if r[5] == "pass")
    print(f"{passes} pass, {misses} miss")
    common.write_json(
        "summary",
        {
            "machine": common.machine_info(),
            "quick": args.quick,
            "seconds": total,
            "benchmarks": {n: {"exit": rc, "seconds": s} for n, (rc, s) in status.items()},
            "figures": [
                dict(zip(["benchmark", *common.FIGURE_HEADER], r, strict=True)) for r in rows
            ],
        },
    )
    failed = [n for n, (rc, _) in status.items() if rc > 0]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
