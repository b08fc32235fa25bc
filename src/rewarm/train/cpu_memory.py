"""Keep freed memory in the process heap while training on the CPU.

glibc's malloc serves every block larger than its mmap threshold (dynamic, at most
32 MiB on 64-bit Linux) with a fresh `mmap` and gives it back with `munmap` on
free. A training step allocates and frees the same large buffers every step
(llama-small at 8192 tokens with a 4096-token vocabulary: 128 MiB of logits and
their gradient, 32 MiB per MLP activation), so every step the kernel maps,
page-faults and zeroes about a gigabyte of fresh pages: ~260,000 minor page
faults and ~0.2 s of kernel time per step, measured (docs/performance.md).

`keep_freed_memory()` turns that off for the process: no `mmap` for large
blocks (`M_MMAP_MAX = 0`) and no trimming of the heap top
(`M_TRIM_THRESHOLD` = 2 GiB), so after the first steps every buffer comes back
from the heap already mapped and steady-state steps take no page faults. Peak
resident memory is unchanged (the same buffers, reused instead of remapped);
memory freed by training stays with the process until it exits, as with a GPU
caching allocator. Set `REWARM_MALLOC_TUNING=0` to leave malloc alone.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os

# mallopt parameter numbers from glibc's <malloc.h>.
M_TRIM_THRESHOLD = -1
M_MMAP_MAX = -4
TRIM_THRESHOLD_BYTES = 2**31 - 1

_done = False


def keep_freed_memory() -> bool:
    """Apply the settings once per process; True if glibc accepted them."""
    global _done
    if _done:
        return True
    if os.environ.get("REWARM_MALLOC_TUNING", "1") == "0":
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (macOS, musl): nothing to tune
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    _done = bool(mallopt(M_MMAP_MAX, 0)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES))
    return _done
