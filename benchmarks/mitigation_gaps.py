"""Where the averages stand on the stability gap: the trained model's and each
average's deepest gap and final loss on the old domain, from demo runs' logs.

    python benchmarks/mitigation_gaps.py OUT/runs OLD_DOMAIN

For every run directory under OUT/runs: the deepest stability gap of OLD_DOMAIN over
the stages after the first (`rewarm.continual.metrics.stability_gaps`, De Lange et al.
2023) and its final bits per byte, for the model being trained and for every set of
weights evaluated alongside it (`eval` records with `weights`, docs/mitigations.md):
the side records replace the trained model's at the points where both exist.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from rewarm.continual import metrics
from rewarm.continual.timeline import build_timeline, timeline_of
from rewarm.runlog import EvalRecord, RunLog, read_run


def side_view(log: RunLog, label: str) -> list[EvalRecord]:
    """The run's evaluations with those of `label` in place of the trained model's."""
    side = {(e.step, e.stage, e.domain): e for e in log.side_evals if e.weights == label}
    return [
        dataclasses.replace(side[key], weights=None) if (key := (e.step, e.stage, e.domain)) in side
        else e
        for e in log.evals
    ]  # fmt: skip


def row(name: str, tl, old: str) -> str:
    gaps = [g.gap for g in metrics.stability_gaps(tl) if g.domain == old]
    rb, r = metrics.loss_matrix(tl, "bits_per_byte"), metrics.loss_matrix(tl)
    i = rb.domains.index(old)
    to_bpb = rb.values[-1, i] / r.values[-1, i]
    gap = f"{max(gaps) * to_bpb:+.3f}" if gaps else "-"
    return f"{name:<34} {gap:>12} {rb.values[-1, i]:>12.3f}"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("runs", type=Path)
    p.add_argument("old")
    a = p.parse_args()
    print(f"{'run [weights]':<34} {'deepest gap':>12} {'final bpb':>12}")
    for run_dir in sorted(d for d in a.runs.iterdir() if (d / "metrics.jsonl").is_file()):
        log = read_run(run_dir)
        print(row(run_dir.name, timeline_of(log), a.old))
        for label in dict.fromkeys(e.weights for e in log.side_evals if e.weights != "trained"):
            assert label is not None
            tl = build_timeline(side_view(log, label), log.stages, log.config)
            print(row(f"{run_dir.name} [{label}]", tl, a.old))


if __name__ == "__main__":
    main()
