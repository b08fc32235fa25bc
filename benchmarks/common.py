"""Shared helpers for the benchmark scripts: peaks, FLOPs, memory, targets, tables, JSON.

Every benchmark script imports this module as `common` (the scripts run as
`python benchmarks/NAME.py`, so `benchmarks/` is first on `sys.path`).

Definitions used throughout:

- Peak: the best achieved rate of a large square fp32 `torch.mm` on the CPU (the
  number MFU is measured against, SCIENCE.md section 6), and, when CUDA is present,
  the same for bf16 on the device; measured by the trainer's own
  `rewarm.model.peak_flops.measure_matmul_flops`.
- FLOPs per training token: the trainer's `rewarm.model.accounting.model_stats`
  (SCIENCE.md section 6): 6 * N + 12 * n_layers * d_model * seq_len, where N counts
  the parameters touched per token: every matrix and norm, the LM head included, the
  input embedding excluded. Evaluation costs a third of that.
- MFU = tokens/s * FLOPs per token / peak FLOP/s.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from rewarm import atomic

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
# Where results (and the runs' work files) go; tests point it at a temporary directory.
RESULTS_DIR = Path(os.environ.get("REWARM_BENCH_RESULTS", BENCH_DIR / "results"))


# -- peaks and FLOPs (the package's own arithmetic) ----------------------------------


def matmul_peak_gflops(sizes: Sequence[int] = (2048, 3072), seconds: float = 0.0) -> float:
    """Best fp32 GFLOP/s of square products on the CPU over `sizes`
    (`rewarm.model.peak_flops.measure_matmul_flops`, 5 reps or `seconds` per size)."""
    import torch

    from rewarm.model.peak_flops import measure_matmul_flops

    cpu = torch.device("cpu")
    return max(measure_matmul_flops(cpu, torch.float32, n, 5, seconds) for n in sizes) / 1e9


def cuda_bf16_peak_tflops(n: int = 8192) -> float | None:
    """Best achieved bf16 TFLOP/s of a square product on the CUDA device, or None."""
    import torch

    from rewarm.model.peak_flops import measure_matmul_flops

    if not torch.cuda.is_available():
        return None
    return measure_matmul_flops(torch.device("cuda"), torch.bfloat16, n, 10) / 1e12


# -- memory ------------------------------------------------------------------------------


def rss_mb() -> dict[str, float]:
    """Current resident memory of this process in MiB: total, anonymous, file-backed.

    Memory-mapped token shards show up as file-backed pages (page cache the kernel can
    drop); heap growth shows up as anonymous pages.
    """
    out = {"rss": 0.0, "anon": 0.0, "file": 0.0}
    try:
        text = Path("/proc/self/status").read_text()
    except OSError:
        return out
    keys = {"VmRSS:": "rss", "RssAnon:": "anon", "RssFile:": "file"}
    for line in text.splitlines():
        parts = line.split()
        if parts and parts[0] in keys:
            out[keys[parts[0]]] = int(parts[1]) / 1024.0
    return out


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, MiB (ru_maxrss is KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


class RssSampler:
    """Samples this process's RSS in a background thread; `.peak` after `stop()`.

    Used where a phase's peak matters and ru_maxrss (whole-process lifetime) would
    include earlier phases.
    """

    def __init__(self, interval_s: float = 0.02) -> None:
        self.interval_s = interval_s
        self.peak = rss_mb()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            now = rss_mb()
            self.peak = {k: max(self.peak[k], now[k]) for k in now}

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


# -- timing ------------------------------------------------------------------------------


def median(xs: Sequence[float]) -> float:
    s = sorted(xs)
    if not s:
        return float("nan")
    mid = len(s) // 2
    return s[mid] if len(s) % 2 else (s[mid - 1] + s[mid]) / 2.0


def time_calls(fn: Callable[[], Any], repeats: int) -> list[float]:
    """Wall seconds of each of `repeats` calls of `fn`."""
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def load_average() -> float:
    """1-minute load average (a 2-core machine is busy above ~2)."""
    try:
        return os.getloadavg()[0]
    except OSError:
        return float("nan")


# -- targets and tables ------------------------------------------------------------------


@dataclass
class Figure:
    """One reported number with its target: `value OP target` passes."""

    name: str
    value: float
    unit: str
    op: str = ""  # ">=" or "<=" ; "" = informational, no target
    target: float | None = None
    note: str = ""

    @property
    def status(self) -> str:
        if not self.op or self.target is None:
            return "info"
        if self.value != self.value:  # NaN: not measured
            return "MISS"
        ok = self.value >= self.target if self.op == ">=" else self.value <= self.target
        return "pass" if ok else "MISS"

    def row(self) -> list[str]:
        target = f"{self.op} {fmt(self.target)}" if self.op and self.target is not None else "-"
        return [self.name, fmt(self.value), self.unit, target, self.status, self.note]


FIGURE_HEADER = ["figure", "value", "unit", "target", "status", "note"]


def fmt(x: Any) -> str:
    if isinstance(x, float):
        if x != x:
            return "n/a"
        if x == 0:
            return "0"
        if abs(x) >= 1000:
            return f"{x:,.0f}"
        if abs(x) >= 10:
            return f"{x:.1f}"
        if abs(x) >= 0.01:
            return f"{x:.3f}"
        return f"{x:.2e}"
    return str(x)


def table(rows: Sequence[Sequence[Any]], header: Sequence[str]) -> str:
    """A plain-text, column-aligned table (also valid Markdown)."""
    cells = [[str(h) for h in header]] + [[fmt(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = [
        "| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |" for r in cells
    ]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def figures_table(figures: Sequence[Figure]) -> str:
    return table([f.row() for f in figures], FIGURE_HEADER)


# -- output ------------------------------------------------------------------------------


def machine_info() -> dict[str, Any]:
    """What produced the numbers: CPU model, cores, torch version, load."""
    import platform

    import torch

    model = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info: dict[str, Any] = {
        "cpu": model,
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "load_1min": load_average(),
        "time_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    if torch.cuda.is_available():
        info["cuda_device"] = torch.cuda.get_device_name()
    return info


def write_json(name: str, payload: dict[str, Any]) -> Path:
    """Write `benchmarks/results/<name>.json` atomically (`rewarm.atomic`)."""

    def default(o: Any) -> Any:
        if isinstance(o, Figure):
            return {**asdict(o), "status": o.status}
        if isinstance(o, Path):
            return str(o)
        raise TypeError(f"not JSON-serialisable: {type(o).__name__}")

    text = json.dumps(payload, indent=2, default=default) + "\n"
    return atomic.write_text(RESULTS_DIR / f"{name}.json", text)


def run_worker(args: Sequence[str], timeout: float = 900) -> dict[str, Any]:
    """Run `python benchmarks/<script> ...` in a fresh process; parse its result line.

    Each measurement runs in its own process so that allocator state, thread pools
    and page cache left by one framework never favour or hurt the next one.
    """
    proc = subprocess.run(
        [sys.executable, *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if proc.returncode != 0:
        raise RuntimeError(
            f"worker {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}"
        )
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(RESULT_PREFIX)]
    if not lines:
        raise RuntimeError(f"worker {' '.join(args)} printed no result:\n{proc.stdout[-2000:]}")
    return json.loads(lines[-1][len(RESULT_PREFIX) :])


RESULT_PREFIX = "BENCH_RESULT "


def emit_result(payload: dict[str, Any]) -> None:
    """Print a worker's result as the one line `run_worker` parses."""
    print(RESULT_PREFIX + json.dumps(payload), flush=True)
