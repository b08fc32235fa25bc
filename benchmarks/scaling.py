"""How cost grows: with model size (3 presets) and with corpus size (data memory).

    python benchmarks/scaling.py [--quick]

Model size: for each preset, one rewarm training run in a fresh process (the
`rewarm` worker of throughput.py: two stages, replay in stage 2) gives the median
steady-state step time, the process's peak resident memory and the size of its
stage-end checkpoint (weights + AdamW moments + state).

Activation checkpointing (`train.activation_checkpointing`): for a preset, the same
rewarm run with "none", "full" and "selective", interleaved in fresh processes: the
median step time and the process's peak resident memory side by side; and, in one
process, the bytes one forward pass of the whole batch keeps for the backward pass
(the CPU allocator's events, as `torch.profiler` records them: the activations
alone, without the weights, AdamW moments and allocator slack that peak RSS
includes) and the step time with the three modes taking turns step by step (the
figure: on a loaded machine, separate runs minutes apart see different loads).

Corpus size: for each corpus size, a fresh process opens the prepared shards,
builds the `MixtureSampler` and draws batches; the resident memory it adds is
split into anonymous pages (heap: must stay flat) and file-backed pages (the
memory-mapped shards the batches touched: page cache the kernel can drop, bounded
by the windows read, not by the corpus).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import common
import workload

from rewarm import atomic

PRESETS = ("llama-tiny", "llama-small", "llama-medium")
RECOMPUTE = ("none", "full", "selective")


def corpus_of(mb: float) -> dict[str, Path]:
    """Two domains of `mb` MB each, by repeating the standard-library text."""
    base = workload.write_corpus(workload.WORK_DIR / "corpus")
    root = workload.WORK_DIR / f"corpus-{mb:g}mb"
    root.mkdir(parents=True, exist_ok=True)
    out = {}
    for name, src in base.items():
        dst = root / f"{name}.txt"
        if not dst.exists():
            text = src.read_text(encoding="utf-8")
            reps = int(mb * 1e6 // max(len(text), 1)) + 1
            body = "\n\n".join([text] * reps)[: int(mb * 1e6)]
            atomic.write_text(dst, body)
        out[name] = dst
    return out


def worker_datamem(a: argparse.Namespace) -> dict[str, Any]:
    """RSS added by opening the shards of an `a.mb` corpus and drawing `a.batches` batches."""
    from rewarm.config import config_from_dict
    from rewarm.data import prepare as prep
    from rewarm.data.mixture import MixtureSampler
    from rewarm.data.shards import open_domain

    raw = workload.rewarm_config(
        name="datamem",
        preset="llama-tiny",
        seq_len=a.seq_len,
        batch_tokens=a.batch_tokens,
        stage1_steps=a.batches,
        stage2_steps=a.batches,
        tokenizer="byte",
        out_dir=workload.WORK_DIR / "runs",
        corpus=corpus_of(a.mb),
        data_dir=workload.WORK_DIR / f"data-{a.mb:g}mb",
    )
    cfg = config_from_dict(raw, source="scaling.py")
    if a.prepare_only:
        prep.prepare(cfg, progress=False)
        return {}
    before = common.rss_mb()
    domains = {name: open_domain(cfg.data_dir / name) for name in cfg.domains}
    corpus_tokens = sum(int(d.train.size) for d in domains.values())
    sampler = MixtureSampler(cfg, domains)
    t0 = time.perf_counter()
    for stage in range(len(cfg.stages)):
        sampler.start_stage(stage)
        for _ in range(a.batches):
            sampler.next_batch()
    per_batch = (time.perf_counter() - t0) / (2 * a.batches)
    after = common.rss_mb()
    return {
        "corpus_tokens": corpus_tokens,
        "shard_mb": sum(d.train.nbytes for d in domains.values()) / 2**20,
        "anon_added_mb": after["anon"] - before["anon"],
        "file_added_mb": after["file"] - before["file"],
        "rss_added_mb": after["rss"] - before["rss"],
        "batch_ms": per_batch * 1e3,
    }


def worker_actmem(a: argparse.Namespace) -> dict[str, Any]:
    """Per mode: bytes one training forward of `a.batch_tokens` tokens keeps for backward,
    and the step time with the modes taking turns step by step in this one process (a
    loaded machine slows all three alike; the median of `a.rounds` turns each)."""
    import time

    import torch
    from torch.profiler import ProfilerActivity, profile

    from rewarm.train import activation_checkpointing, cpu_memory
    from rewarm.train.step import NextTokenLoss

    cpu_memory.keep_freed_memory()  # as the trainer does on a CPU
    rows = a.batch_tokens // a.seq_len
    tokens = torch.randint(0, a.vocab_size, (rows, a.seq_len + 1))
    held, steps = {}, {}
    for mode in RECOMPUTE:
        model = workload.build_model(a.preset, a.vocab_size, a.seq_len)
        model.train()
        activation_checkpointing.apply(model, mode)
        with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
            loss = NextTokenLoss(model)(tokens)  # kept alive: its graph holds the activations
        held[mode] = sum(e.self_cpu_memory_usage for e in prof.events()) / 2**20
        del loss
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-6, fused=True)
        steps[mode] = (NextTokenLoss(model), optimizer, [])

    def step(mode: str) -> float:
        fn, optimizer, _ = steps[mode]
        t0 = time.perf_counter()
        fn(tokens).backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return time.perf_counter() - t0

    for rnd in range(a.rounds + 1):
        for mode in RECOMPUTE:
            seconds = step(mode)
            if rnd > 0:  # the first turn is warm-up
                steps[mode][2].append(seconds)
    return {"held_mb": held, "step_s": {m: steps[m][2] for m in RECOMPUTE}}


def recompute_scaling(args: argparse.Namespace, vocab: int) -> list[dict[str, Any]]:
    """Step time and peak RSS with each activation-checkpointing mode, interleaved."""
    runs: dict[str, list[dict[str, Any]]] = {m: [] for m in RECOMPUTE}
    for rnd in range(args.recompute_rounds):
        for mode in RECOMPUTE:
            res = common.run_worker(
                [
                    "benchmarks/throughput.py",
                    "--worker",
                    "rewarm",
                    "--preset",
                    args.recompute_preset,
                    "--vocab-size",
                    str(vocab),
                    "--steps",
                    str(args.steps),
                    "--warmup",
                    str(args.warmup),
                    "--batch-tokens",
                    str(args.batch_tokens),
                    "--tag",
                    f"recompute{rnd}",
                    "--activation-checkpointing",
                    mode,
                ]
            )
            res["load_1min"] = common.load_average()
            runs[mode].append(res)
            print(
                f"  {args.recompute_preset} {mode}: {common.median(res['step_s']):.2f} s/step, "
                f"{res['peak_rss_mb']:.0f} MiB (load {res['load_1min']:.1f})",
                flush=True,
            )
    inproc = common.run_worker(
        ["benchmarks/scaling.py", "--worker", "actmem", "--preset", args.recompute_preset]
        + ["--vocab-size", str(vocab), "--batch-tokens", str(args.batch_tokens)]
        + ["--rounds", str(args.recompute_turns)]
    )
    held = inproc["held_mb"]
    out = []
    for mode in RECOMPUTE:
        out.append(
            {
                "preset": args.recompute_preset,
                "mode": mode,
                "step_s": common.median([t for r in runs[mode] for t in r["step_s"]]),
                "peak_rss_mb": common.median([r["peak_rss_mb"] for r in runs[mode]]),
                "held_mb": held[mode],
                "turns_step_s": common.median(inproc["step_s"][mode]),
                "rounds": [
                    {"step_s": common.median(r["step_s"]), "peak_rss_mb": r["peak_rss_mb"]}
                    for r in runs[mode]
                ],
            }
        )
    base = out[0]
    for row in out:
        row["rss_saved"] = 1 - row["peak_rss_mb"] / base["peak_rss_mb"]
        row["held_saved"] = 1 - row["held_mb"] / base["held_mb"]
        row["step_x"] = row["step_s"] / base["step_s"]
        row["turns_step_x"] = row["turns_step_s"] / base["turns_step_s"]
    return out


def model_scaling(args: argparse.Namespace, vocab: int) -> list[dict[str, Any]]:
    out = []
    for preset in args.presets:
        res = common.run_worker(
            [
                "benchmarks/throughput.py",
                "--worker",
                "rewarm",
                "--preset",
                preset,
                "--vocab-size",
                str(vocab),
                "--steps",
                str(args.steps),
                "--warmup",
                str(args.warmup),
                "--batch-tokens",
                str(args.batch_tokens),
                "--tag",
                "scaling",
            ]
        )
        ckpt = res["checkpoint_files"]
        out.append(
            {
                "preset": preset,
                "params": res["params"],
                "step_s": common.median(res["step_s"]),
                "tokens_per_s": common.median(res["tokens_per_s"]),
                "peak_rss_mb": res["peak_rss_mb"],
                "checkpoint_mb": sum(ckpt.values()) / 2**20,
                "weights_mb": ckpt.get("model.safetensors", 0) / 2**20,
                "optimizer_mb": ckpt.get("optimizer.pt", 0) / 2**20,
            }
        )
        print(
            f"  {preset}: {out[-1]['step_s']:.2f} s/step, {out[-1]['peak_rss_mb']:.0f} MiB",
            flush=True,
        )
    return out


def data_scaling(args: argparse.Namespace) -> list[dict[str, Any]]:
    out = []
    for mb in args.corpus_mb:
        base = ["benchmarks/scaling.py", "--worker", "datamem", "--mb", str(mb)]
        base += ["--batch-tokens", str(args.batch_tokens), "--batches", str(args.batches)]
        common.run_worker([*base, "--prepare-only"])
        res = common.run_worker(base)
        out.append({"corpus_mb_per_domain": mb, **res})
        print(f"  corpus {mb:g} MB/domain: +{res['anon_added_mb']:.1f} MiB anon", flush=True)
    return out


def figures(
    models: list[dict[str, Any]], data: list[dict[str, Any]], recompute: list[dict[str, Any]]
) -> list[common.Figure]:
    figs = []
    for row in recompute[1:]:
        what = f"{row['preset']}: activation checkpointing {row['mode']!r}"
        figs += [
            common.Figure(
                f"{what}: activation memory saved",
                row["held_saved"],
                "",
                note=f"{row['held_mb']:.0f} vs {recompute[0]['held_mb']:.0f} MiB kept for backward",
            ),
            common.Figure(
                f"{what}: peak RSS saved",
                row["rss_saved"],
                "",
                note=f"{row['peak_rss_mb']:.0f} vs {recompute[0]['peak_rss_mb']:.0f} MiB",
            ),
            common.Figure(
                f"{what}: step time vs none",
                row["turns_step_x"],
                "x",
                note=f"modes taking turns in one process; separate runs: {row['step_x']:.2f}x",
            ),
        ]
    if len(models) >= 2:
        a, b = models[0], models[-1]
        figs.append(
            common.Figure(
                f"step time {b['preset']} / {a['preset']}",
                b["step_s"] / a["step_s"],
                "x",
                note=f"params x{b['params'] / a['params']:.1f}",
            )
        )
    if len(data) >= 2:
        lo, hi = data[0], data[-1]
        growth = hi["anon_added_mb"] - lo["anon_added_mb"]
        # "Flat": the heap the sampler adds grows by less than 5% of the extra shard bytes.
        figs.append(
            common.Figure(
                f"data heap growth, corpus x{hi['corpus_tokens'] / lo['corpus_tokens']:.0f}",
                growth,
                "MiB",
                "<=",
                0.05 * (hi["shard_mb"] - lo["shard_mb"]),
                f"shards {lo['shard_mb']:.0f} -> {hi['shard_mb']:.0f} MiB",
            )
        )
    return figs


MODEL_HEADER = [
    "preset",
    "params",
    "step s",
    "tokens/s",
    "peak RSS MiB",
    "checkpoint MiB",
    "weights MiB",
    "optimizer MiB",
]
RECOMPUTE_HEADER = [
    "preset",
    "activation_checkpointing",
    "step s (runs)",
    "vs none",
    "step s (turns)",
    "vs none ",
    "peak RSS MiB",
    "peak RSS saved",
    "kept for backward MiB",
    "saved",
]
DATA_HEADER = [
    "corpus MB/domain",
    "corpus tokens",
    "shard MiB",
    "anon added MiB",
    "file-backed added MiB",
    "ms/batch",
]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--presets", default=",".join(PRESETS))
    p.add_argument("--steps", type=int, default=4)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--batch-tokens", type=int, default=8192)
    p.add_argument("--corpus-mb", default="2,8,32")
    p.add_argument("--batches", type=int, default=50)
    p.add_argument("--seq-len", type=int, default=256)
    p.add_argument("--recompute-preset", default="llama-small")
    p.add_argument("--recompute-rounds", type=int, default=2, help="separate runs per mode")
    p.add_argument("--recompute-turns", type=int, default=6, help="steps per mode, in turns")
    p.add_argument("--rounds", type=int, default=6, help=argparse.SUPPRESS)
    # internal
    p.add_argument("--worker", choices=["datamem", "actmem"], help=argparse.SUPPRESS)
    p.add_argument("--preset", default="llama-small", help=argparse.SUPPRESS)
    p.add_argument("--vocab-size", type=int, default=4096, help=argparse.SUPPRESS)
    p.add_argument("--mb", type=float, default=1.0, help=argparse.SUPPRESS)
    p.add_argument("--prepare-only", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        work = worker_actmem if args.worker == "actmem" else worker_datamem
        common.emit_result(work(args))
        return 0
    args.presets = args.presets.split(",")
    args.corpus_mb = [float(x) for x in args.corpus_mb.split(",")]
    if args.quick:
        args.presets, args.steps, args.warmup = ["llama-tiny", "llama-small"], 2, 1
        args.corpus_mb, args.batches = [1.0, 4.0], 20
        args.recompute_rounds, args.recompute_turns = 1, 3
    print(f"scaling: presets {args.presets}; corpus sizes {args.corpus_mb} MB per domain")
    prep = common.run_worker(
        ["benchmarks/throughput.py", "--worker", "prepare", "--tokenizer", "bpe"]
    )
    models = model_scaling(args, prep["vocab_size"])
    recompute = recompute_scaling(args, prep["vocab_size"])
    data = data_scaling(args)
    figs = figures(models, data, recompute)
    print(
        common.table(
            [
                [
                    m[k]
                    for k in (
                        "preset",
                        "params",
                        "step_s",
                        "tokens_per_s",
                        "peak_rss_mb",
                        "checkpoint_mb",
                        "weights_mb",
                        "optimizer_mb",
                    )
                ]
                for m in models
            ],
            MODEL_HEADER,
        )
    )
    print(
        common.table(
            [
                [
                    r[k]
                    for k in (
                        "preset",
                        "mode",
                        "step_s",
                        "step_x",
                        "turns_step_s",
                        "turns_step_x",
                        "peak_rss_mb",
                        "rss_saved",
                        "held_mb",
                        "held_saved",
                    )
                ]
                for r in recompute
            ],
            RECOMPUTE_HEADER,
        )
    )
    print(
        common.table(
            [
                [
                    d[k]
                    for k in (
                        "corpus_mb_per_domain",
                        "corpus_tokens",
                        "shard_mb",
                        "anon_added_mb",
                        "file_added_mb",
                        "batch_ms",
                    )
                ]
                for d in data
            ],
            DATA_HEADER,
        )
    )
    print(common.figures_table(figs))
    path = common.write_json(
        "scaling",
        {
            "machine": common.machine_info(),
            "argv": sys.argv,
            "models": models,
            "recompute": recompute,
            "data": data,
            "figures": figs,
        },
    )
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
