"""`rewarm prepare` throughput against a plain `tokenizers` loop, and its peak memory
as the corpus grows.

    python benchmarks/prepare.py [--quick]

Corpora: .jsonl files of standard-library documentation and source (the built-in
`python-docs` and `python-code` documents, repeated with a record number so no two
records are equal) at three sizes, 24 MiB files: 16, 48 and 144 MiB (quick: 8, 16
and 32), cut into units of 1-4 MiB (`rewarm.data.parts.unit_size`). One
byte-level BPE of 8,192 ids, trained once on a sample and saved as a Hugging Face
tokenizer directory, serves both sides (`tokenizer.kind = "hf:DIR"`).

Each measurement runs in a fresh process on the same cores, each side three times per
size, in turns (every other round in reverse order; the fastest run of each counts):

- rewarm: `prepare(cfg, force=True)` with `data.workers` = the cores: resolving and
  hashing the files, tokenizing in resumable units in worker processes, the held-out
  split, the manifest; wall time from the call to its return.
- baseline: what a careful user would write with the library alone: the same files
  read line by line, `json.loads`, texts gathered into ~1 MB batches and encoded
  with the fast tokenizer's fastest batch API on all cores (its thread pool), ids
  discarded. That is `encode_batch_fast` (tokenizers >= 0.20: ids without the
  character offsets; rewarm uses it too), else `encode_batch`.
- the same loop with `encode_batch` (offsets computed), shown alongside: the
  baseline an earlier version of this script used. No target.

Module imports (transformers, tokenizers) happen before the clock on every side.
Throughput is MB of .jsonl per second per core. CPU seconds per MB are counted
alongside (the process, all its threads, plus every descendant: for rewarm its fork
server and workers): on a machine shared with other jobs they say whether a gap in
wall time is work or waiting. Memory is the peak resident set (VmHWM) of the
prepare's main process and of its largest descendant.

Measurement cost: every side runs the same sampler thread (`Descendants`), which
every 50 ms walks the process's own tree of children and reads two /proc files per
descendant (none on the baseline's side); the script prints what it costs.

Targets (issue 16): prepare throughput >= 0.8 x the baseline's at every size; peak
memory flat in corpus size: the largest corpus's peak over the smallest's <= 1.25,
for the main process and for the workers. Results: benchmarks/results/prepare.json.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import common

TARGET_RATIO = 0.8
TARGET_MEMORY_GROWTH = 1.25
FILE_BYTES = 24 << 20  # .jsonl files of this size (larger than a unit: they are cut)
REPEATS = 3  # each side runs this many times per size, alternating; the fastest counts


def write_corpus(root: Path, total_bytes: int) -> int:
    """.jsonl files of stdlib prose and code, `total_bytes` in all; returns the bytes."""
    from rewarm.data import builtin, sources

    docs: list[str] = []
    for name in ("python-docs", "python-code"):
        files = [sources.SourceFile(p, k) for p, k in builtin.files(name)]
        docs += list(sources.read_documents(files, "text", 6_000_000, []))
    root.mkdir(parents=True, exist_ok=True)
    written, n, part = 0, 0, 0
    while written < total_bytes:
        with open(root / f"part-{part:04d}.jsonl", "w", encoding="utf-8") as f:
            in_file = 0
            while in_file < FILE_BYTES and written < total_bytes:
                line = json.dumps({"text": f"record {n}\n" + docs[n % len(docs)]}) + "\n"
                f.write(line)
                size = len(line.encode("utf-8"))
                written, in_file, n = written + size, in_file + size, n + 1
        part += 1
    return written


def train_tokenizer(directory: Path) -> None:
    from rewarm.data import builtin, sources
    from rewarm.data.tokenizer import train_bpe

    files = [sources.SourceFile(p, k) for p, k in builtin.files("python-docs")]
    tok = train_bpe(sources.read_documents(files, "text", 4_000_000, []), 8192)
    tok.save(directory)


def _status(pid: int | str) -> dict[str, str]:
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return {}
    return dict(line.split(":", 1) for line in lines if ":" in line)


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far (0 if it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _own_cpu() -> float:
    use = resource.getrusage(resource.RUSAGE_SELF)
    return use.ru_utime + use.ru_stime


def _children(pid: int) -> list[int]:
    """The child processes of `pid` (every thread's `children` list: each thread forks)."""
    out: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        with contextlib.suppress(OSError):  # the thread ended
            out += [int(c) for c in task.read_text().split()]
    return out


class Descendants:
    """The descendants of this process (the prepare's fork server and workers; none for
    the baseline), sampled every `PERIOD` s in a thread: `.worker` is the largest peak
    resident set among them (each one's VmHWM, so no peak falls between samples), MiB,
    and `.cpu` the CPU seconds they used (each one's last sample: what a process uses
    in its last `PERIOD` s is not counted).

    Both sides run one, so that both carry the same measurement cost. The sampler
    walks only this process's tree (`/proc/PID/task/*/children`), a handful of /proc
    reads per sample; scanning every /proc/*/status every 20 ms, as an earlier version
    did, took 18% of a core, from one side only."""

    PERIOD = 0.05

    def __init__(self) -> None:
        self.peaks: dict[int, float] = {}
        self.cpus: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> None:
        todo = _children(os.getpid())
        while todo:
            pid = todo.pop()
            hwm = _status(pid).get("VmHWM")
            if hwm is None:  # gone
                continue
            # The last sample of each (both only grow): a child sampled between its fork
            # and its exec (the fork server's) shows the parent's pages until then.
            self.peaks[pid] = float(hwm.split()[0]) / 1024
            self.cpus[pid] = _cpu_seconds(pid)
            todo += _children(pid)

    def _run(self) -> None:
        while not self._stop.wait(self.PERIOD):
            self._sample()

    def __enter__(self) -> Descendants:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def worker(self) -> float:
        return max(self.peaks.values(), default=0.0)

    @property
    def cpu(self) -> float:
        return sum(self.cpus.values())


def sampler_cost(seconds: float = 2.0) -> float:
    """CPU seconds per second the sampler takes in a process with no children."""
    t0, cpu0 = time.perf_counter(), _own_cpu()
    with Descendants():
        time.sleep(seconds)
    return (_own_cpu() - cpu0) / (time.perf_counter() - t0)


def _main_peak() -> float:
    return float(_status("self").get("VmHWM", "0 kB").split()[0]) / 1024


def child_prepare(corpus: str, tokenizer: str, out: str, cores: int) -> dict[str, Any]:
    from rewarm import runconfig
    from rewarm.data.prepare import prepare
    from rewarm.data.tokenizer import load_hf

    load_hf(tokenizer)  # imports (transformers) before the clock, as on the other side

    cfg = runconfig.from_dict(
        {
            "run": {"name": "bench", "out_dir": out},
            "tokenizer": {"kind": f"hf:{tokenizer}"},
            "data": {"workers": cores, "heldout_min_tokens": 16384},
            "domains": {"web": {"source": corpus}},
            "stages": [{"name": "s", "tokens": 8192, "mix": {"web": 1}}],
        },
        "prepare.py",
    )
    with Descendants() as tree:
        t0, cpu0 = time.perf_counter(), _own_cpu()
        data = prepare(cfg, progress=False, force=True)["web"]
        seconds, cpu = time.perf_counter() - t0, _own_cpu() - cpu0
    return {
        "seconds": seconds,
        "cpu_seconds": cpu + tree.cpu,
        "tokens": data.manifest["counts"]["tokens"],
        "main_peak_mib": _main_peak(),
        "worker_peak_mib": tree.worker,
        "processes": len(tree.peaks),
    }


def child_baseline(corpus: str, tokenizer: str, api: str) -> dict[str, Any]:
    """The plain loop: `api` is "encode_batch_fast" (the baseline, where the library
    has it) or "encode_batch" (the same loop with offsets computed, for comparison)."""
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(Path(tokenizer) / "tokenizer.json"))
    encode = getattr(tok, api)
    with Descendants() as tree:  # finds nothing: the same sampling cost as the other side
        t0, cpu0 = time.perf_counter(), _own_cpu()
        tokens, batch, size = 0, [], 0
        for path in sorted(Path(corpus).glob("*.jsonl")):
            with open(path, encoding="utf-8") as f:
                for line in f:
                    text = json.loads(line)["text"]
                    batch.append(text)
                    size += len(text)
                    if size >= 1 << 20:
                        tokens += sum(len(e.ids) for e in encode(batch, add_special_tokens=False))
                        batch, size = [], 0
        if batch:
            tokens += sum(len(e.ids) for e in encode(batch, add_special_tokens=False))
        seconds, cpu = time.perf_counter() - t0, _own_cpu() - cpu0
    return {
        "seconds": seconds,
        "cpu_seconds": cpu + tree.cpu,
        "tokens": tokens,
        "main_peak_mib": _main_peak(),
        "processes": len(tree.peaks),
    }


def _fastest_api() -> str:
    """The plain loop's encoder: the library's fastest batch API for ids alone."""
    from tokenizers import Tokenizer

    return "encode_batch_fast" if hasattr(Tokenizer, "encode_batch_fast") else "encode_batch"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller corpora")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, *rest = args.child
        if kind == "prepare":
            result = child_prepare(rest[0], rest[1], rest[2], int(rest[3]))
        else:
            result = child_baseline(rest[0], rest[1], kind)
        common.emit_result(result)
        return 0
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    cores = cores or 1
    sizes_mb = (8, 16, 32) if args.quick else (16, 48, 144)
    api = _fastest_api()
    sampler = sampler_cost()
    rows = []
    with tempfile.TemporaryDirectory(prefix="rewarm-bench-prepare-") as tmp:
        tokdir = Path(tmp) / "tokenizer"
        train_tokenizer(tokdir)
        for mb in sizes_mb:
            corpus = Path(tmp) / f"corpus-{mb}"
            size = write_corpus(corpus, mb << 20)
            script = str(Path(__file__).resolve())
            out = Path(tmp) / f"out-{mb}"
            sides = {
                "baseline": [api, str(corpus), str(tokdir)],
                "rewarm": ["prepare", str(corpus), str(tokdir), str(out), str(cores)],
                "plain": ["encode_batch", str(corpus), str(tokdir)],
            }
            if api == "encode_batch":  # no faster API: the baseline is the plain loop
                del sides["plain"]
            runs: dict[str, list[dict[str, Any]]] = {k: [] for k in sides}
            for r in range(REPEATS):  # alternating, so that load from others hits all alike
                for side in list(sides)[:: 1 if r % 2 == 0 else -1]:
                    runs[side].append(common.run_worker([script, "--child", *sides[side]]))
            best = {k: min(v, key=lambda r: r["seconds"]) for k, v in runs.items()}
            base, ours = best["baseline"], best["rewarm"]
            plain = best.get("plain", base)
            ours["main_peak_mib"] = max(r["main_peak_mib"] for r in runs["rewarm"])
            ours["worker_peak_mib"] = max(r["worker_peak_mib"] for r in runs["rewarm"])
            per_core = {k: size / 2**20 / r["seconds"] / cores for k, r in best.items()}
            per_core.setdefault("plain", per_core["baseline"])
            rows.append(
                {
                    "corpus_mib": size / 2**20,
                    "tokens": ours["tokens"],
                    "baseline_tokens": base["tokens"],
                    "rewarm_mb_s_per_core": per_core["rewarm"],
                    "baseline_mb_s_per_core": per_core["baseline"],
                    "ratio": per_core["rewarm"] / per_core["baseline"],
                    "plain_mb_s_per_core": per_core["plain"],
                    "ratio_to_plain": per_core["rewarm"] / per_core["plain"],
                    "rewarm_cpu_s_per_mb": ours["cpu_seconds"] / (size / 2**20),
                    "baseline_cpu_s_per_mb": base["cpu_seconds"] / (size / 2**20),
                    "plain_cpu_s_per_mb": plain["cpu_seconds"] / (size / 2**20),
                    "rewarm_seconds": ours["seconds"],
                    "baseline_seconds": base["seconds"],
                    "plain_seconds": plain["seconds"],
                    "rewarm_runs_seconds": [r["seconds"] for r in runs["rewarm"]],
                    "baseline_runs_seconds": [r["seconds"] for r in runs["baseline"]],
                    "main_peak_mib": ours["main_peak_mib"],
                    "worker_peak_mib": ours["worker_peak_mib"],
                    "baseline_peak_mib": base["main_peak_mib"],
                }
            )
            print(f"corpus {size / 2**20:.0f} MiB done", file=sys.stderr, flush=True)
    print(
        common.table(
            [
                [
                    r["corpus_mib"],
                    r["rewarm_mb_s_per_core"],
                    r["baseline_mb_s_per_core"],
                    r["ratio"],
                    r["plain_mb_s_per_core"],
                    r["ratio_to_plain"],
                    r["rewarm_cpu_s_per_mb"],
                    r["baseline_cpu_s_per_mb"],
                    r["main_peak_mib"],
                    r["worker_peak_mib"],
                    r["baseline_peak_mib"],
                ]
                for r in rows
            ],
            [
                "corpus MiB",
                "rewarm MB/s/core",
                f"{api} loop MB/s/core",
                "ratio",
                "encode_batch loop MB/s/core",
                "ratio to it",
                "rewarm CPU s/MB",
                f"{api} loop CPU s/MB",
                "main peak MiB",
                "worker peak MiB",
                "baseline peak MiB",
            ],
        )
    )
    figures = [
        common.Figure(
            f"throughput ratio, {r['corpus_mib']:.0f} MiB", r["ratio"], "x", ">=", TARGET_RATIO
        )
        for r in rows
    ]
    for key, label in (("main_peak_mib", "main process"), ("worker_peak_mib", "largest worker")):
        if not rows[0][key]:  # no worker processes at the smallest size
            continue
        growth = rows[-1][key] / rows[0][key]
        figures.append(
            common.Figure(
                f"peak memory growth, {label}",
                growth,
                "x",
                "<=",
                TARGET_MEMORY_GROWTH,
                f"{rows[0][key]:.0f} -> {rows[-1][key]:.0f} MiB over "
                f"{rows[-1]['corpus_mib'] / rows[0]['corpus_mib']:.0f}x the corpus",
            )
        )
    print()
    print(common.figures_table(figures))
    print(f"\nbaseline: {api}; the sampler (on both sides) takes {sampler:.2%} of a core")
    path = common.write_json(
        "prepare",
        {
            "benchmark": "prepare",
            "quick": args.quick,
            "cores": cores,
            "baseline_api": api,
            "sampler_cpu_per_s": sampler,
            "machine": common.machine_info(),
            "rows": rows,
            "figures": figures,
        },
    )
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
