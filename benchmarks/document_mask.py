"""What document masking (`train.document_mask`) costs per training step on a CPU.

    python benchmarks/document_mask.py [--quick] [--preset llama-small]

One process, one thread pool: the same model and the same batches of packed windows
(documents of 50-400 tokens back to back, each ended by the end-of-document id, so
most windows hold a few boundaries), timed as the trainer's step runs them
(`rewarm.train.step.NextTokenLoss`: forward, cross-entropy, backward), with and
without document masking, alternating so that load on a shared machine hits both
alike. With the mask the model gets restarting position ids and transformers builds
an SDPA boolean mask per batch (`rewarm.model.packing`); without it SDPA runs its
causal kernel with no mask tensor.

Reported per sequence length: median milliseconds per step both ways and their
ratio, in wall time and in the process's CPU time (`time.process_time`, all its
threads); on a machine shared with other jobs the CPU-time ratio is the steadier of
the two. Information only: the issue asks for the cost, not a target. Results:
benchmarks/results/document_mask.json.
"""

from __future__ import annotations

import argparse
import sys
import time

import common

EOS = 256


def packed_batch(rows: int, seq_len: int, seed: int):
    import torch

    gen = torch.Generator().manual_seed(seed)
    out = torch.randint(0, EOS, (rows, seq_len + 1), generator=gen)
    for r in range(rows):
        pos = int(torch.randint(0, 200, (1,), generator=gen))
        while pos < seq_len + 1:
            out[r, pos] = EOS
            pos += int(torch.randint(50, 400, (1,), generator=gen))
    return out


def measure(preset: str, seq_len: int, rows: int, steps: int) -> dict[str, float]:
    import torch
    from transformers import AutoModelForCausalLM

    from rewarm.model.presets import preset_config
    from rewarm.train.step import NextTokenLoss

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(
        preset_config(preset, vocab_size=EOS + 1, seq_len=seq_len), attn_implementation="sdpa"
    )
    losses = {"plain": NextTokenLoss(model), "masked": NextTokenLoss(model, EOS)}
    batches = [packed_batch(rows, seq_len, s) for s in range(4)]
    times: dict[str, list[float]] = {k: [] for k in losses}
    cpu: dict[str, list[float]] = {k: [] for k in losses}
    for i in range(steps + 2):
        for name, loss in losses.items():
            x = batches[i % len(batches)]
            t0, c0 = time.perf_counter(), time.process_time()
            loss(x).backward()
            elapsed, used = time.perf_counter() - t0, time.process_time() - c0
            model.zero_grad(set_to_none=True)
            if i >= 2:  # two warm-up steps each
                times[name].append(elapsed)
                cpu[name].append(used)
    plain, masked = common.median(times["plain"]), common.median(times["masked"])
    plain_cpu, masked_cpu = common.median(cpu["plain"]), common.median(cpu["masked"])
    boundaries = sum(int((b[:, :-1] == EOS).sum()) for b in batches) / (len(batches) * rows)
    return {
        "seq_len": seq_len,
        "rows": rows,
        "plain_ms": plain * 1e3,
        "masked_ms": masked * 1e3,
        "ratio": masked / plain,
        "plain_cpu_ms": plain_cpu * 1e3,
        "masked_cpu_ms": masked_cpu * 1e3,
        "cpu_ratio": masked_cpu / plain_cpu,
        "boundaries_per_window": boundaries,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer steps, shorter windows")
    parser.add_argument("--preset", default="llama-small")
    args = parser.parse_args()
    import torch

    shapes = [(256, 8), (1024, 2)] if args.quick else [(256, 16), (1024, 4), (2048, 2)]
    steps = 5 if args.quick else 15
    rows = [measure(args.preset, s, r, steps) for s, r in shapes]
    print(
        f"{args.preset}, CPU fp32, {torch.get_num_threads()} threads, load {common.load_average():.1f}"
    )
    print(
        common.table(
            [
                [
                    r["seq_len"],
                    r["rows"],
                    r["boundaries_per_window"],
                    r["plain_ms"],
                    r["masked_ms"],
                    r["ratio"],
                    r["plain_cpu_ms"],
                    r["masked_cpu_ms"],
                    r["cpu_ratio"],
                ]
                for r in rows
            ],
            [
                "seq_len",
                "rows",
                "document ends / window",
                "causal ms",
                "document-masked ms",
                "ratio",
                "causal CPU ms",
                "document-masked CPU ms",
                "CPU ratio",
            ],
        )
    )
    figures = [
        common.Figure(f"masked / causal step{what}, seq_len {r['seq_len']}", r[key], "x")
        for r in rows
        for what, key in (("", "ratio"), (" (CPU time)", "cpu_ratio"))
    ]
    path = common.write_json(
        "document_mask",
        {
            "benchmark": "document_mask",
            "preset": args.preset,
            "quick": args.quick,
            "machine": common.machine_info(),
            "rows": rows,
            "figures": figures,
        },
    )
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
