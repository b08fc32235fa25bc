"""`keep_freed_memory`: large freed buffers come back without page faults.

Each case runs in a child process: malloc settings are process-wide and must not
leak into the test runner.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

CHILD = """
import json, resource, sys
import torch
from rewarm.train.cpu_memory import keep_freed_memory

applied = keep_freed_memory()
def faults_of_one_step():
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    x = torch.ones(64 * 2**20 // 4)  # 64 MiB: above glibc's largest mmap threshold
    del x
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
# The first few allocations map fresh pages in any case (the heap settles where the
# block fits); a training loop then repeats the same sizes for thousands of steps.
for _ in range(12):
    faults_of_one_step()
print(json.dumps({"applied": applied, "faults": min(faults_of_one_step() for _ in range(4))}))
"""


def run_child(env_value: str | None) -> dict:
    env = dict(os.environ)
    env.pop("REWARM_MALLOC_TUNING", None)
    if env_value is not None:
        env["REWARM_MALLOC_TUNING"] = env_value
    out = subprocess.run(
        [sys.executable, "-c", CHILD], env=env, capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc mallopt")
def test_reused_buffer_takes_no_page_faults() -> None:
    tuned = run_child(None)
    default = run_child("0")
    assert tuned["applied"] is True
    assert default["applied"] is False
    pages = 64 * 2**20 // 4096
    # Default glibc maps a fresh 64 MiB block every time (one fault per 4 KiB page, or
    # per 2 MiB where the kernel happens to back it with transparent huge pages, so
    # the default count is not asserted). Tuned: the freed block is reused from the
    # heap, already mapped.
    assert tuned["faults"] < pages // 20
