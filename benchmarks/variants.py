"""Step variants A/B'd in one process: what was tried to speed up a CPU training step.

    python benchmarks/variants.py [--quick] [--variants eager,compile,...] [--rounds 8]
    python benchmarks/variants.py --profile --variants eager,compile   # where the time goes

Every variant runs the same training step (Hugging Face `LlamaForCausalLM` from a
rewarm preset, 4096-id vocabulary, 8192 tokens of 256-token sequences, fp32, summed
cross-entropy, clipping, fused AdamW with a tiny LR so the weights barely move) on
the same random batch. Variants take turns step by step (A B C A B C ...), after
two warm-up steps each, so they share the machine's load; the table gives each
variant's median step time and its speed relative to the first variant.

Variants (join with `+`, e.g. `fce+mb4096`):

| name        | what changes                                                               |
| ----------- | -------------------------------------------------------------------------- |
| eager       | nothing: the eager step rewarm runs by default                             |
| compile     | torch.compile of model + loss as one function (rewarm's `train.compile`)   |
| layers      | torch.compile of each decoder layer only (loss and head eager)             |
| fce         | chunked fused LM head + cross-entropy (no full logits tensor), chunk rows  |
| chN         | chunk of N rows for `fce` (default 1024)                                   |
| mbN         | micro-batches of N tokens (gradient accumulation)                          |
| rmsnorm     | `F.rms_norm` in place of the Hugging Face RMSNorm                          |
| math        | eager ("math") attention in place of SDPA                                  |

glibc is told to keep freed memory first, as rewarm's trainer does.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

import common

VOCAB, SEQ, BATCH = 4096, 256, 8192


class FusedHeadLoss:
    """Summed cross-entropy of `h @ w.T` computed in row chunks, gradients in forward.

    Each chunk's logits live only inside the loop: log-sum-exp, the loss, then the
    softmax minus one-hot turned into the gradients of `h` and `w` at once.
    """

    @staticmethod
    def build() -> Any:
        import torch

        class Fn(torch.autograd.Function):
            @staticmethod
            def forward(ctx: Any, h: Any, w: Any, y: Any, chunk: int) -> Any:
                gh, gw = torch.empty_like(h), torch.zeros_like(w)
                total = torch.zeros((), dtype=torch.float32)
                for s in range(0, h.shape[0], chunk):
                    hc, yc = h[s : s + chunk], y[s : s + chunk]
                    logits = hc @ w.t()
                    lse = torch.logsumexp(logits, dim=-1)
                    total += (lse - logits.gather(1, yc[:, None]).squeeze(1)).sum()
                    logits.sub_(lse[:, None]).exp_()
                    logits[torch.arange(len(yc)), yc] -= 1
                    torch.mm(logits, w, out=gh[s : s + chunk])
                    gw.addmm_(logits.t(), hc)
                ctx.save_for_backward(gh, gw)
                return total

            @staticmethod
            def backward(ctx: Any, g: Any) -> Any:
                gh, gw = ctx.saved_tensors
                return gh * g, gw * g, None, None

        return Fn


def parse(variant: str) -> dict[str, Any]:
    opts: dict[str, Any] = {"name": variant, "mb": BATCH, "ch": 1024, "flags": set()}
    for part in variant.split("+"):
        if part.startswith("mb") and part[2:].isdigit():
            opts["mb"] = int(part[2:])
        elif part.startswith("ch") and part[2:].isdigit():
            opts["ch"] = int(part[2:])
        elif part in ("eager", "compile", "layers", "fce", "rmsnorm", "math"):
            opts["flags"].add(part)
        else:
            raise SystemExit(f"variants.py: unknown variant part {part!r} in {variant!r}")
    return opts


def run(
    variants: list[str], rounds: int, preset: str, profile: bool = False
) -> dict[str, list[float]]:
    import torch
    import torch.nn.functional as F
    from transformers.models.llama import modeling_llama
    from workload import build_model, optimizer_groups

    from rewarm.train.cpu_memory import keep_freed_memory

    keep_freed_memory()
    model = build_model(preset, VOCAB, SEQ)
    model.train()
    plans = {v: parse(v) for v in variants}
    state = {"rmsnorm": False}
    original_norm = modeling_llama.LlamaRMSNorm.forward

    def norm_forward(self: Any, x: Any) -> Any:
        if state["rmsnorm"]:
            return F.rms_norm(x, (x.shape[-1],), self.weight, self.variance_epsilon)
        return original_norm(self, x)

    modeling_llama.LlamaRMSNorm.forward = norm_forward  # type: ignore[method-assign]
    fused = FusedHeadLoss.build()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(optimizer_groups(model, 0.1), lr=1e-7, betas=(0.9, 0.95), fused=True)
    torch.manual_seed(0)
    data = torch.randint(0, VOCAB, (BATCH // SEQ, SEQ + 1))

    def loss_eager(x: Any, y: Any) -> Any:
        return F.cross_entropy(model(input_ids=x).logits.flatten(0, 1), y, reduction="sum")

    compiled_loss = torch.compile(loss_eager)
    layer_compiled = False
    compiled_calls: list[Any] = []

    def set_attention(kind: str) -> None:
        for m in model.modules():
            if hasattr(m, "config"):
                m.config._attn_implementation = kind

    def step(o: dict[str, Any]) -> None:
        nonlocal layer_compiled
        flags = o["flags"]
        state["rmsnorm"] = "rmsnorm" in flags
        set_attention("eager" if "math" in flags else "sdpa")
        if "layers" in flags and not layer_compiled:
            for layer in model.model.layers:
                layer.compile()
                compiled_calls.append(layer._compiled_call_impl)
            layer_compiled = True
        # nn.Module.compile() works through this private attribute: toggle it per step.
        for layer, call in zip(model.model.layers, compiled_calls, strict=False):
            layer._compiled_call_impl = call if "layers" in flags else None
        total = torch.zeros(())
        for tok in data.split(o["mb"] // SEQ):
            x, y = tok[:, :-1], tok[:, 1:].flatten()
            if "fce" in flags:
                h = model.model(input_ids=x).last_hidden_state.flatten(0, 1)
                loss = fused.apply(h, model.lm_head.weight, y, o["ch"])
            elif "compile" in flags:
                loss = compiled_loss(x, y)
            else:
                loss = loss_eager(x, y)
            loss = loss / BATCH
            loss.backward()
            total += loss.detach()
        torch.nn.utils.clip_grad_norm_(params, 1.0, foreach=True)
        float(total)
        opt.step()
        opt.zero_grad(set_to_none=True)

    if profile:
        from torch.profiler import ProfilerActivity
        from torch.profiler import profile as torch_profile

        for v in variants:
            step(plans[v])
            step(plans[v])
            with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
                step(plans[v])
            print(f"== {v}: one step, self CPU time by op")
            print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=15))
        return {}
    times: dict[str, list[float]] = {v: [] for v in variants}
    for v in variants:
        t0 = time.perf_counter()
        step(plans[v])
        step(plans[v])
        print(f"  warm-up {v}: {time.perf_counter() - t0:.1f} s", flush=True)
    for _ in range(rounds):
        for v in variants:
            t0 = time.perf_counter()
            step(plans[v])
            times[v].append(time.perf_counter() - t0)
    return times


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--variants", default="eager,compile,fce,fce+ch256,mb4096,mb2048,rmsnorm,math")
    p.add_argument("--rounds", type=int, default=8)
    p.add_argument("--preset", default="llama-small")
    p.add_argument(
        "--profile", action="store_true", help="print a torch.profiler table of one step instead"
    )
    args = p.parse_args(argv)
    if args.quick:
        args.variants, args.rounds = "eager,compile", 4
    variants = args.variants.split(",")
    print(f"variants: {variants}, {args.rounds} rounds, {args.preset}, {BATCH} tokens/step")
    if args.profile:
        run(variants, 0, args.preset, profile=True)
        return 0
    times = run(variants, args.rounds, args.preset)
    base = common.median(times[variants[0]])
    rows = [
        [v, common.median(ts), min(ts), BATCH / common.median(ts), base / common.median(ts)]
        for v, ts in times.items()
    ]
    print(common.table(rows, ["variant", "median s", "min s", "tokens/s", f"vs {variants[0]}"]))
    path = common.write_json(
        "variants",
        {"machine": common.machine_info(), "argv": sys.argv, "times": times, "rows": rows},
    )
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
