"""Batch assembly throughput and peak memory of the mixture sampler as the corpus grows 10x.

    python benchmarks/data.py [--quick]

Writes synthetic token shards (random uint16 ids, the on-disk format `rewarm prepare`
writes) for four domains at a base size and at 10x that size, then, in a fresh
process pinned to one CPU core for each (size, batch shape), builds a
`MixtureSampler` over a two-stage config whose second stage replays 10% of every
batch from the first stage's seen windows (uniform policy), and times `next_batch()`.

Reported per run: training tokens per second (rows * seq_len per batch; the
int64 arrays handed to the trainer hold rows * (seq_len + 1)), peak resident set
size (VmHWM), and at the end the anonymous resident memory (RssAnon: everything
the sampler allocates, which must not grow with the corpus) and the file-backed
part (RssFile: page-cache pages of the shards that the kernel mapped while the
drawn windows were read). The file-backed part is shared, reclaimable cache, not
memory the sampler holds: it is bounded by the data actually read, though a
kernel that caches a freshly written file in large folios maps whole folios, so
on such a file it can approach the file size after a few thousand windows.
A memory probe reads the same 2,048 windows at both corpus sizes after
evicting the shards from the page cache (see `_evict`). Targets:
>= 20 million tokens/s on one core; anonymous memory flat as the corpus grows 10x.
Results go to benchmarks/results/data.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

PROBE_WINDOWS = 2048
RESULTS = Path(__file__).resolve().parent / "results" / "data.json"
TARGET_TOKENS_PER_S = 20e6
SHAPES = [  # (seq_len, batch_tokens)
    (256, 8192),
    (1024, 131072),
    (2048, 524288),
]


def write_corpus(root: Path, tokens_per_domain: int) -> None:
    """Four domains of random token ids in the shard format (train.bin + manifest.json)."""
    from rewarm.data import shards

    rng = np.random.default_rng(0)
    for name in ("a", "b", "c", "d"):
        d = root / name
        d.mkdir(parents=True, exist_ok=True)
        with open(d / shards.TRAIN, "wb") as f:
            left = tokens_per_domain
            while left:
                n = min(left, 1 << 24)
                f.write(rng.integers(0, 50_000, n, dtype=np.uint16).tobytes())
                left -= n
        (d / shards.HELDOUT).write_bytes(b"")
        manifest = {
            "format": shards.FORMAT_VERSION,
            "domain": name,
            "dtype": "uint16",
            "split": {
                "train_tokens": tokens_per_domain,
                "heldout_tokens": 0,
                "heldout_bytes": 0,
            },
        }
        shards.write_manifest(d, manifest)


def _status_mib(key: str) -> float:
    """A memory line of /proc/self/status, in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return float(line.split()[1]) / 1024
    return float("nan")


def child(root: str, seq_len: int, batch_tokens: int, batches: int) -> dict:
    """One measurement, in its own process (fresh peak-RSS counter)."""
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    from rewarm.config import config_from_dict
    from rewarm.data.mixture import MixtureSampler
    from rewarm.data.shards import open_domain

    domains = {n: open_domain(Path(root) / n) for n in "abcd"}
    stage_tokens = batch_tokens * (batches + 10)
    cfg = config_from_dict(
        {
            "run": {"name": "bench"},
            "domains": {n: {"source": "x", "max_epochs": 1e9} for n in "abcd"},
            "train": {"seq_len": seq_len, "batch_tokens": batch_tokens},
            "eval": {"tokens_per_domain": seq_len},
            "stages": [
                {"name": "old", "tokens": stage_tokens, "mix": {"a": 0.5, "b": 0.5}},
                {
                    "name": "new",
                    "tokens": stage_tokens,
                    "mix": {"c": 0.7, "d": 0.3},
                    "replay": {"fraction": 0.1, "policy": "uniform"},
                },
            ],
        },
        source="bench",
    )
    sampler = MixtureSampler(cfg, domains)
    sampler.start_stage(1)  # stage 0 fast-forwarded: its windows are the replay pool
    file_before = _status_mib("RssFile")  # shared libraries, before any shard page
    for _ in range(5):
        sampler.next_batch()
    t0 = time.perf_counter()
    replay_rows = rows = 0
    for _ in range(batches):
        b = sampler.next_batch()
        replay_rows += int(b.replay.sum())
        rows += b.tokens.shape[0]
    elapsed = time.perf_counter() - t0
    return {
        "seq_len": seq_len,
        "batch_tokens": batch_tokens,
        "batches": batches,
        "tokens_per_s": rows * seq_len / elapsed,
        "batches_per_s": batches / elapsed,
        "replay_share": replay_rows / rows,
        "peak_rss_mib": _status_mib("VmHWM"),
        "rss_anon_mib": _status_mib("RssAnon"),
        "rss_file_mib": _status_mib("RssFile"),
        "shard_pages_mib": _status_mib("RssFile") - file_before,
        "windows_read": rows + 5 * sampler.per_rank,
    }


def _evict(root: Path) -> None:
    """Drop our shard files from the page cache (POSIX_FADV_DONTNEED on each file).

    A freshly written file sits in the page cache in large folios, and the kernel
    maps a whole folio into a reader's address space, so the first windows read
    would count most of the file as resident. Evicting first makes the probe
    read cold pages one at a time (the shards are opened with MADV_RANDOM), as
    training on a corpus larger than memory would.
    """
    if not hasattr(os, "posix_fadvise"):
        return
    for path in root.glob("*/*.bin"):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def _run_child(root: Path, seq_len: int, batch_tokens: int, batches: int) -> dict:
    argv = [sys.executable, __file__, "--child", str(root), str(seq_len), str(batch_tokens)]
    out = subprocess.run(argv + [str(batches)], check=True, capture_output=True, text=True)
    return json.loads(out.stdout)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small corpus, few batches")
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        root, seq, bt, n = args.child
        print(json.dumps(child(root, int(seq), int(bt), int(n))))
        return 0
    base = 2_000_000 if args.quick else 10_000_000
    time_budget_tokens = 20_000_000 if args.quick else 100_000_000
    runs = []
    probes = []
    with tempfile.TemporaryDirectory(prefix="rewarm-bench-data-") as tmp:
        for scale in (1, 10):
            root = Path(tmp) / f"x{scale}"
            write_corpus(root, base * scale)
            for seq_len, batch_tokens in SHAPES:
                n = max(20, time_budget_tokens // batch_tokens)
                result = _run_child(root, seq_len, batch_tokens, n)
                result["corpus_tokens"] = base * scale * 4
                runs.append(result)
            # Memory probe: the same 2,048 windows at both sizes, so the shard pages
            # touched are comparable; what remains must not grow with the corpus.
            _evict(root)
            probe = _run_child(root, 1024, 131072, PROBE_WINDOWS // 128)
            probe["corpus_tokens"] = base * scale * 4
            probes.append(probe)
            shutil.rmtree(root)
    print(
        f"{'corpus tokens':>14} {'seq_len':>8} {'batch tokens':>12} {'Mtok/s':>8} "
        f"{'batches/s':>10} {'replay':>7} {'peak RSS MiB':>13} {'anon MiB':>9} {'shard MiB':>9}"
    )
    for r in runs:
        print(
            f"{r['corpus_tokens']:>14,} {r['seq_len']:>8} {r['batch_tokens']:>12,} "
            f"{r['tokens_per_s'] / 1e6:>8.1f} {r['batches_per_s']:>10.0f} "
            f"{r['replay_share']:>7.3f} {r['peak_rss_mib']:>13.1f} {r['rss_anon_mib']:>9.1f} "
            f"{r['shard_pages_mib']:>9.1f}"
        )
    growth = {}
    for seq_len, batch_tokens in SHAPES:
        small, big = (
            r for r in runs if (r["seq_len"], r["batch_tokens"]) == (seq_len, batch_tokens)
        )
        growth[f"{seq_len}x{batch_tokens}"] = {
            "peak_rss": big["peak_rss_mib"] / small["peak_rss_mib"],
            "rss_anon": big["rss_anon_mib"] / small["rss_anon_mib"],
        }
    for k, v in growth.items():
        print(
            f"10x corpus / 1x, {k}: anonymous memory x{v['rss_anon']:.3f}, "
            f"peak RSS incl. touched shard pages x{v['peak_rss']:.3f}"
        )
    print("memory probe (the same windows of 1025 tokens at both sizes, cold page cache):")
    for p in probes:
        print(
            f"  corpus {p['corpus_tokens']:>13,} tokens: peak RSS {p['peak_rss_mib']:.1f} MiB, "
            f"anonymous {p['rss_anon_mib']:.1f} MiB, shard pages {p['shard_pages_mib']:.1f} MiB "
            f"({p['windows_read']} windows read)"
        )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "benchmark": "data",
                "quick": args.quick,
                "cpu_count": os.cpu_count(),
                "target_tokens_per_s": TARGET_TOKENS_PER_S,
                "runs": runs,
                "peak_rss_ratio_10x": growth,
                "memory_probe": probes,
            },
            indent=1,
        )
        + "\n"
    )
    print(f"wrote {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
