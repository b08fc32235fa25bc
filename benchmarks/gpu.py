"""The GPU check: train, kill, resume, evaluate and export a ~100M-300M Llama on one GPU.

    python benchmarks/gpu.py [--out DIR] [--preset llama-base|llama-350m]   # a CUDA machine
    python benchmarks/gpu.py --tiny                                          # any CPU, ~1 min

One script, meant to run in under 8 minutes on one modern GPU (H100/H200 class),
every measurement in a fresh process (`--worker`), in order of importance so a
time budget (`--budget-s`) cuts the least important last:

1. the device's bf16 matmul peak, measured (`rewarm.model.peak_flops`);
2. `ref`: the two-stage run (stage 2 replays 25% of stage 1) in bf16 (`train.precision
   = "auto"`) with `train.compile = true`, continual evaluation (`eval.every_tokens =
   "auto"`) and periodic checkpoints;
3. `killed`: the same run with sharded checkpoints (`checkpoint.format = "sharded"`,
   torch.distributed.checkpoint on CUDA tensors), SIGKILLed mid-stage, then resumed by
   a second process: its loss curve against `ref`'s (a GPU's kernels need not be
   bitwise deterministic, so within a tolerance, and the largest gap is reported);
4. the evaluation and export path on `ref`'s final checkpoint: `rewarm eval`'s
   evaluator reproduces the run's last `eval` records, and `rewarm export` loads in
   transformers with the checkpoint's logits;
5. short runs for the speed and memory grid: compile on/off x activation
   checkpointing none/full (and selective, eager).

Per training run: tokens/s (the trainer's own, median over steady-state steps),
peak GPU memory (`torch.cuda.max_memory_allocated`; peak RSS on a CPU), MFU against
the measured peak and against the trainer's own peak (the vendor table). Prints a
table and writes `results/gpu.json` (and `DIR/gpu.json` with `--out`).

`--tiny` runs the same steps on a CPU with `llama-tiny`, the byte tokenizer, fp32,
eager only and a few steps (tests/test_benchmark_gpu.py runs it): the script is
checked everywhere, the figures mean something only on a GPU.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import common
import workload

# name: (compile, activation_checkpointing); the grid of short runs, in budget order.
GRID = {
    "compile-full": (True, "full"),
    "eager": (False, "none"),
    "eager-full": (False, "full"),
    "eager-selective": (False, "selective"),
}
RESUME_RTOL = 1e-2  # bf16 on a GPU: resumed vs uninterrupted losses, step by step


def settings(a: argparse.Namespace) -> dict[str, Any]:
    """Sizes of the runs: a GPU's, or `--tiny`'s."""
    if a.tiny:
        return dict(
            preset="llama-tiny", tokenizer="byte", seq_len=64, batch_tokens=512,
            stage1=6, stage2=4, kill_after=7, ckpt_every=2, grid_steps=4, warmup=1,
            eval_tokens=128, compile=False,
        )  # fmt: skip
    return dict(
        preset=a.preset, tokenizer="bpe", seq_len=1024, batch_tokens=65536,
        stage1=a.steps * 3 // 5, stage2=a.steps - a.steps * 3 // 5, kill_after=a.steps // 2 + 5,
        ckpt_every=a.steps // 4, grid_steps=40, warmup=10, eval_tokens=16384, compile=True,
    )  # fmt: skip


def run_config(a: argparse.Namespace, name: str, steps: tuple[int, int], **train: Any) -> dict:
    s = settings(a)
    raw = workload.rewarm_config(
        name=name,
        preset=s["preset"],
        seq_len=s["seq_len"],
        batch_tokens=s["batch_tokens"],
        stage1_steps=steps[0],
        stage2_steps=steps[1],
        tokenizer=s["tokenizer"],
        out_dir=workload.WORK_DIR / "gpu-runs",
        eval_tokens=s["eval_tokens"],
        checkpoint_every_tokens=s["ckpt_every"] * s["batch_tokens"],
        data_dir=workload.WORK_DIR / f"data-gpu-{s['tokenizer']}",
    )
    raw["eval"]["every_tokens"] = "auto"
    raw["checkpoint"]["keep"] = 2
    raw["train"].update(device="auto", precision="auto", **train)
    if not a.tiny:
        raw["train"]["micro_batch_tokens"] = a.micro_batch_tokens
    for domain in raw["domains"].values():
        domain["max_epochs"] = 1000.0  # a 2 MB corpus, repeated: speed does not care
    return raw


# -- workers (each a fresh process) ----------------------------------------------------


def worker_train(a: argparse.Namespace) -> dict[str, Any]:
    """One training run of the config in `a.config` (JSON); its figures."""
    import torch

    from rewarm.config import config_from_dict
    from rewarm.runlog import read_run
    from rewarm.train import trainer

    cfg = config_from_dict(json.loads(a.config), source="gpu.py")
    if a.kill_after:
        real = trainer.log_train

        def log_then_die(s: Any, *args: Any) -> None:
            real(s, *args)
            if s.state.step == a.kill_after:
                os.kill(os.getpid(), signal.SIGKILL)

        trainer.log_train = log_then_die  # type: ignore[assignment]
    cuda = torch.cuda.is_available()
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    trainer.train(cfg, progress=False)
    wall = time.perf_counter() - t0
    log = read_run(cfg.run_dir)
    start = log.start
    steady = log.trains[a.warmup :] if len(log.trains) > a.warmup + 1 else log.trains[-1:]
    tps = common.median([t.tokens_per_s for t in steady])
    return {
        "wall_s": wall,
        "steps": len(log.trains),
        "losses": [t.loss for t in log.trains],
        "tokens_per_s": tps,
        "step_s": common.median([t.seconds.step for t in steady if t.seconds is not None]),
        "trainer_mfu": common.median([t.mfu for t in steady]),
        "flops_per_token": start.flops_per_token if start else float("nan"),
        "params": start.params if start else 0,
        "trainer_peak_flops": start.peak_flops if start else float("nan"),
        "device": start.device if start else "",
        "peak_memory_mb": (
            torch.cuda.max_memory_allocated() / 2**20 if cuda else common.peak_rss_mb()
        ),
        "memory_kind": "cuda max_memory_allocated" if cuda else "peak RSS",
        "events": [r.event for r in log.events],
    }


def worker_check(a: argparse.Namespace) -> dict[str, Any]:
    """`rewarm eval`'s evaluator and `rewarm export` on the final checkpoint of a run."""
    import torch
    from transformers import AutoModelForCausalLM

    from rewarm.config import config_from_dict
    from rewarm.data.prepare import prepare
    from rewarm.evaluation.evaluator import build_evaluator
    from rewarm.model.export import export
    from rewarm.model.hf import load_checkpoint_model, resolve_checkpoint_dir
    from rewarm.runlog import read_run
    from rewarm.train.distributed import pick_device

    cfg = config_from_dict(json.loads(a.config), source="gpu.py")
    ckpt = resolve_checkpoint_dir(cfg.run_dir, "gpu.py")
    device = pick_device(cfg.train.device, 0)
    model = load_checkpoint_model(ckpt).to(device)
    domains = prepare(cfg, progress=False)
    got = {r.domain: r.loss for r in build_evaluator(cfg, domains, device=device).evaluate(model)}
    log = read_run(cfg.run_dir)
    last = max(e.step for e in log.evals)
    want = {e.domain: e.loss for e in log.evals if e.step == last}
    out = workload.WORK_DIR / "gpu-export"
    export(ckpt, out, force=True)
    exported = AutoModelForCausalLM.from_pretrained(out).to(device).eval()
    tokens = torch.arange(2 * 64, device=device).reshape(2, 64) % 200
    with torch.no_grad():
        gap = (exported(input_ids=tokens).logits - model.eval()(input_ids=tokens).logits).abs()
    return {
        "eval_rel_gap": max(abs(got[d] - want[d]) / abs(want[d]) for d in want),
        "export_max_logit_gap": float(gap.max()),
        "checkpoint": str(ckpt),
    }


WORKERS = {"train": worker_train, "check": worker_check}


# -- the check -------------------------------------------------------------------------


def worker(a: argparse.Namespace, kind: str, raw: dict, **extra: Any) -> dict[str, Any]:
    """`kind`'s result for config `raw`: in a fresh process on a GPU (its own peak
    memory and compile caches); in this one with `--tiny` (the same code, no start-up)."""
    if a.tiny:
        ns = argparse.Namespace(config=json.dumps(raw), warmup=settings(a)["warmup"], kill_after=0)
        return WORKERS[kind](ns)
    args = ["benchmarks/gpu.py", "--worker", kind, "--config", json.dumps(raw)]
    args += ["--warmup", str(settings(a)["warmup"])] + (["--tiny"] if a.tiny else [])
    for k, v in extra.items():
        args += [f"--{k.replace('_', '-')}", str(v)]
    return common.run_worker(args, timeout=a.budget_s)


def killed_then_resumed(a: argparse.Namespace, raw: dict) -> dict[str, Any]:
    """Train `raw` in a process that SIGKILLs itself mid-stage; resume it in another."""
    s = settings(a)
    cmd = [sys.executable, "benchmarks/gpu.py", "--worker", "train", "--config", json.dumps(raw)]
    cmd += ["--kill-after", str(s["kill_after"]), "--warmup", str(s["warmup"])]
    # --tiny shares a CPU with whatever else runs: one thread, as in this process.
    env = {**os.environ, "OMP_NUM_THREADS": "1"} if a.tiny else None
    proc = subprocess.run(
        cmd, cwd=common.REPO_ROOT, capture_output=True, text=True, check=False, env=env
    )
    if proc.returncode != -signal.SIGKILL:
        raise RuntimeError(f"the killed run ended with {proc.returncode}: {proc.stderr[-2000:]}")
    return worker(a, "train", raw)


def compare(ref: list[float], got: list[float]) -> float:
    if len(ref) != len(got):
        return float("inf")
    return max(abs(x - y) / abs(x) for x, y in zip(ref, got, strict=True))


def measure(a: argparse.Namespace) -> dict[str, Any]:
    import torch

    began = time.perf_counter()
    s = settings(a)
    out: dict[str, Any] = {"settings": s, "skipped": []}
    cuda = torch.cuda.is_available()
    out["peak_tflops"] = (
        common.cuda_bf16_peak_tflops() if cuda else common.matmul_peak_gflops() / 1e3
    )
    out["peak_kind"] = "bf16 matmul (measured)" if cuda else "fp32 matmul (measured, CPU)"
    shutil.rmtree(workload.WORK_DIR / "gpu-runs", ignore_errors=True)
    main_steps = (s["stage1"], s["stage2"])
    ref_raw = run_config(a, "ref", main_steps, compile=s["compile"])
    out["runs"] = {"ref": worker(a, "train", ref_raw)}
    print(f"  ref: {out['runs']['ref']['tokens_per_s']:,.0f} tokens/s", flush=True)
    killed_raw = run_config(a, "killed", main_steps, compile=s["compile"])
    killed_raw["checkpoint"]["format"] = "sharded"
    resumed = killed_then_resumed(a, killed_raw)
    out["resume"] = {
        "max_rel_gap": compare(out["runs"]["ref"]["losses"], resumed["losses"]),
        "events": resumed["events"],
        "killed_after_step": s["kill_after"],
        "tolerance": RESUME_RTOL,
    }
    print(f"  kill/resume: max relative loss gap {out['resume']['max_rel_gap']:.2e}", flush=True)
    out["check"] = worker(a, "check", ref_raw)
    print(f"  eval/export: {out['check']}", flush=True)
    for name, (compiled, ac) in GRID.items():
        if time.perf_counter() - began > a.budget_s * 0.8:
            out["skipped"].append(name)
            continue
        compiled = compiled and s["compile"]
        half = s["grid_steps"] // 2
        raw = run_config(
            a, name, (half, s["grid_steps"] - half), compile=compiled,
            activation_checkpointing=ac,
        )  # fmt: skip
        raw["checkpoint"]["every_tokens"] = 0
        out["runs"][name] = worker(a, "train", raw)
        print(f"  {name}: {out['runs'][name]['tokens_per_s']:,.0f} tokens/s", flush=True)
    out["seconds"] = time.perf_counter() - began
    return out


def table(out: dict[str, Any]) -> str:
    peak = out["peak_tflops"] * 1e12
    rows = []
    for name, r in out["runs"].items():
        compiled, ac = GRID.get(name, (out["settings"]["compile"], "none"))
        mfu = r["tokens_per_s"] * r["flops_per_token"] / peak
        rows.append(
            [name, compiled and out["settings"]["compile"], ac, r["steps"], r["tokens_per_s"],
             r["step_s"], mfu, r["trainer_mfu"], r["peak_memory_mb"]]
        )  # fmt: skip
    header = ["run", "compile", "act. ckpt", "steps", "tokens/s", "step s", "MFU (measured)",
              "MFU (trainer)", "peak memory MiB"]  # fmt: skip
    return common.table(rows, header)


def figures(out: dict[str, Any]) -> list[common.Figure]:
    runs, figs = out["runs"], []
    figs.append(
        common.Figure(
            "kill + resume: max relative loss gap to the uninterrupted run",
            out["resume"]["max_rel_gap"], "", "<=", RESUME_RTOL,
            f"killed after step {out['resume']['killed_after_step']}, sharded checkpoints",
        )
    )  # fmt: skip
    figs.append(
        common.Figure(
            "rewarm eval vs the run's last eval records", out["check"]["eval_rel_gap"], "",
            "<=", 1e-3, "relative",
        )
    )  # fmt: skip
    figs.append(
        common.Figure(
            "export vs checkpoint logits", out["check"]["export_max_logit_gap"], "", "<=", 1e-3
        )
    )
    for a, b in (("eager", "eager-full"), ("ref", "compile-full")):
        if a in runs and b in runs:
            saving = 1 - runs[b]["peak_memory_mb"] / runs[a]["peak_memory_mb"]
            cost = runs[a]["tokens_per_s"] / runs[b]["tokens_per_s"]
            figs.append(common.Figure(f"memory saved, {b} vs {a}", saving, "", note="peak"))
            figs.append(common.Figure(f"step time, {b} / {a}", cost, "x"))
    return figs


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tiny", action="store_true", help="CPU-sized: llama-tiny, a few steps")
    p.add_argument("--preset", default="llama-base", help="llama-base (~110M) or llama-350m")
    p.add_argument("--steps", type=int, default=200, help="steps of the main run (GPU)")
    p.add_argument(
        "--micro-batch-tokens",
        type=int,
        default=0,
        help="GPU runs: tokens per forward/backward (0 = the whole 65,536-token batch; "
        "16384 keeps llama-350m without recomputation within 80 GB)",
    )
    p.add_argument("--budget-s", type=float, default=450.0, help="skip grid runs past 80%%")
    p.add_argument("--out", type=Path, help="also write gpu.json here")
    p.add_argument("--worker", choices=sorted(WORKERS), help=argparse.SUPPRESS)
    p.add_argument("--config", help=argparse.SUPPRESS)
    p.add_argument("--kill-after", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--warmup", type=int, default=1, help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.worker:
        common.emit_result(WORKERS[a.worker](a))
        return 0
    if a.tiny:
        import torch

        torch.set_num_threads(1)  # a shared CPU: spinning threads only slow a tiny model
        a.budget_s = max(a.budget_s, 600.0)
    print(f"gpu check: {'--tiny (CPU)' if a.tiny else a.preset}, budget {a.budget_s:.0f} s")
    out = measure(a)
    figs = figures(out)
    print(table(out))
    print(common.figures_table(figs))
    payload = {"machine": common.machine_info(), "argv": sys.argv, **out, "figures": figs}
    path = common.write_json("gpu-tiny" if a.tiny else "gpu", payload)
    if a.out:
        a.out.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, a.out / "gpu.json")
    print(f"wrote {path}")
    misses = [f.name for f in figs if f.status == "MISS"]
    return 1 if misses else 0


if __name__ == "__main__":
    sys.exit(main())
