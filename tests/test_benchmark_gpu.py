"""`benchmarks/gpu.py --tiny`: the GPU check's every step runs on a CPU (the figures only
mean something on a GPU; docs/performance.md)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_gpu_check_runs_tiny_on_a_cpu(tmp_path):
    env = {**os.environ, "REWARM_BENCH_RESULTS": str(tmp_path), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "benchmarks/gpu.py", "--tiny", "--out", str(tmp_path / "out")],
        cwd=REPO, capture_output=True, text=True, check=False, env=env, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = json.loads((tmp_path / "out" / "gpu.json").read_text(encoding="utf-8"))
    assert set(out["runs"]) == {"ref", "compile-full", "eager", "eager-full", "eager-selective"}
    ref = out["runs"]["ref"]
    assert ref["steps"] == 10 and ref["tokens_per_s"] > 0 and ref["peak_memory_mb"] > 0
    # Killed after step 7, resumed from the sharded checkpoint of step 6: the same curve.
    assert out["resume"]["max_rel_gap"] == 0.0
    assert out["resume"]["events"] == ["start", "resume", "end"]
    assert out["check"]["eval_rel_gap"] == 0.0 and out["check"]["export_max_logit_gap"] == 0.0
    status = {f["name"]: f["status"] for f in out["figures"]}
    assert [s for s in status.values() if s == "MISS"] == []
    assert "memory saved, eager-full vs eager" in status
