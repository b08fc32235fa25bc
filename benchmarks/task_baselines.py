"""What the built-in tasks measure: their items on the demo's data, the accuracy of
baselines that know only token statistics, and what one task evaluation costs.

    python benchmarks/task_baselines.py [--quick] [--work DIR]

For `rewarm demo --tasks` (default or `--quick` sizes), it prepares the demo's data
(with the `--tasks` held-out split) under DIR, makes every built-in task of both
domains (docs/tasks.md) and reports per task its items (and the mean characters of
context and answer) and the accuracy of these baselines over all of them:

- `unigram`: the choice with the highest log-probability under the domain's training
  unigram distribution (add-one smoothed): what token frequencies alone achieve;
- `longest` / `shortest`: always the choice with the most / fewest tokens;
- `overlap`: the choice sharing the most words with the context (for `next-line`,
  a measure of how much coherence alone gives);
- `untrained`: the demo's model before training (its first evaluation), through the
  harness, on up to UNTRAINED_ITEMS items.

Chance is 0.25; each accuracy's standard error is about sqrt(0.25 * 0.75 / n). Last,
the seconds (wall and CPU) of one evaluation of the demo's tasks (`limit` items
each) on that model through `rewarm.tasks.harness`, the cost of one evaluation point
in a `--tasks` run, also in CPU seconds of the demo's training steps.

Writes `benchmarks/results/task_baselines[_quick].json`.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
import time
from pathlib import Path
from typing import Any

import common
import numpy as np

UNTRAINED_ITEMS = 300
"""Items per task the untrained model is evaluated on (the baselines use all)."""


def baselines(items: list[dict], tok: Any, counts: np.ndarray) -> dict[str, float]:
    """Accuracy of each context-free (or word-overlap) scorer on `items`."""
    logp = np.log((counts + 1.0) / (counts.sum() + counts.size))
    hits = {"unigram": 0, "longest": 0, "shortest": 0, "overlap": 0}
    for it in items:
        ids = [tok.encode(c) for c in it["choices"]]
        uni = [float(logp[np.asarray(x, dtype=np.int64)].sum()) if x else -math.inf for x in ids]
        lengths = [len(x) for x in ids]
        words = set(re.findall(r"\w+", it["context"]))
        overlap = [len(words & set(re.findall(r"\w+", c))) for c in it["choices"]]
        for name, scores in (
            ("unigram", uni),
            ("longest", lengths),
            ("shortest", [-n for n in lengths]),
            ("overlap", overlap),
        ):
            hits[name] += int(np.argmax(scores) == it["label"])
    return {k: v / len(items) for k, v in hits.items()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="the demo's --quick sizes")
    p.add_argument("--work", default="task-baselines-work", metavar="DIR", help="data goes here")
    a = p.parse_args()

    import torch

    from rewarm.config import TaskSection
    from rewarm.data import prepare, tokenizer
    from rewarm.demo import tasks as demo_tasks
    from rewarm.demo.arms import Layout, arm_config
    from rewarm.demo.settings import load_settings
    from rewarm.model.hf import build_model
    from rewarm.runconfig import from_dict
    from rewarm.tasks import harness
    from rewarm.tasks.spec import KINDS, parse_builtin

    settings = load_settings(quick=a.quick)
    size = settings.size
    where = Layout(runs=a.work, data=f"{a.work}/data")
    raw = arm_config("naive", where, 0, size, old=settings.old, new=settings.new)
    cfg = from_dict(demo_tasks.with_tasks(raw, settings))
    domains = prepare.prepare(cfg, progress=False)
    tok = tokenizer.load_tokenizer(cfg)
    every = [
        f"rewarm:{kind}:{domain}"
        for domain in (settings.old.name, settings.new.name)
        for kind in KINDS
    ]
    entries = [TaskSection(task=t, limit=UNTRAINED_ITEMS) for t in every]
    tasks = harness.resolve(entries, "tasks", cfg=cfg, domains=domains, tok=tok)
    rows = []
    for entry, task in zip(entries, tasks, strict=True):
        items_path = Path(task.spec).parent / "items.jsonl"
        items = [json.loads(line) for line in items_path.read_text().splitlines()]
        domain = entry.task.split(":")[2]
        counts = np.bincount(np.asarray(domains[domain].train), minlength=tok.vocab_size)
        answer = [len(it["choices"][it["label"]]) for it in items]
        rows.append(
            {
                "task": entry.task,
                "items": len(items),
                "context_chars": float(np.mean([len(it["context"]) for it in items])),
                "answer_chars": float(np.mean(answer)),
                **baselines(items, tok, counts.astype(np.float64)),
            }
        )
    torch.manual_seed(0)
    model = build_model(cfg, tok.vocab_size, tok.eos_id)
    hf_tok = tok.to_hf()
    batch_size = cfg.eval.task_batch_size
    results = harness.TaskEvaluator(tasks, hf_tok, batch_size=batch_size).evaluate(model)
    untrained = {(r.task, r.samples): r.value for r in results}
    for row, task in zip(rows, tasks, strict=True):
        b = parse_builtin(task.label, "tasks")
        hit = [v for (name, _n), v in untrained.items() if b is not None and name == b.name]
        row["untrained_model"] = hit[0] if hit else None
        row["untrained_items"] = min(row["items"], UNTRAINED_ITEMS)

    # What one evaluation point of `rewarm demo --tasks` costs.
    names = demo_tasks.task_names(settings.old.name, settings.new.name)
    demo = [TaskSection(task=t, limit=demo_tasks.LIMIT) for t in names]
    evaluator = harness.TaskEvaluator(
        harness.resolve(demo, "demo tasks", cfg=cfg, domains=domains, tok=tok),
        hf_tok,
        batch_size=batch_size,
    )
    evaluator.evaluate(model)  # warm-up: dataset caches
    wall, cpu = time.perf_counter(), time.process_time()
    evaluator.evaluate(model)
    cost = {"wall_s": time.perf_counter() - wall, "cpu_s": time.process_time() - cpu}
    # One training step of the demo (forward and backward over batch_tokens) for scale.
    seqs = size.batch_tokens // size.seq_len
    batch = torch.randint(0, tok.vocab_size, (seqs, size.seq_len + 1))
    steps = []
    for _ in range(4):
        tick = time.process_time()
        logits = model(input_ids=batch[:, :-1]).logits  # (seqs, seq_len, vocab)
        loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1), batch[:, 1:].flatten())
        loss.backward()
        steps.append(time.process_time() - tick)
    cost["train_step_cpu_s"] = float(np.median(steps[1:]))
    cost["evaluation_in_train_steps"] = cost["cpu_s"] / cost["train_step_cpu_s"]
    print(
        f"{'task':<24} {'items':>5} {'unigram':>8} {'longest':>8} {'shortest':>8} "
        f"{'overlap':>8} {'untrained':>9}"
    )
    for r in rows:
        print(
            f"{r['task']:<24} {r['items']:>5} {r['unigram']:>8.3f} {r['longest']:>8.3f} "
            f"{r['shortest']:>8.3f} {r['overlap']:>8.3f} {r['untrained_model']:>9.3f}"
        )
    print(
        f"one evaluation of the demo's {len(demo)} tasks ({demo_tasks.LIMIT} items each at "
        f"most): {cost['wall_s']:.1f} s wall, {cost['cpu_s']:.1f} s CPU = the CPU of "
        f"{cost['evaluation_in_train_steps']:.0f} training steps, "
        f"{torch.get_num_threads()} threads"
    )
    payload = {
        "size": "quick" if a.quick else "default",
        "tasks": rows,
        "evaluation": cost,
        "load_average": common.load_average(),
        "argv": sys.argv[1:],
    }
    common.write_json("task_baselines_quick" if a.quick else "task_baselines", payload)


if __name__ == "__main__":
    main()
