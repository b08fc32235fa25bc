"""One thread for the small numerical work of the laws (fits, schedule optimisation).

The tensors and matrices of a fit are tiny, so threads only contend: on this
workplace's busy 2-core CPU, OpenBLAS threads spinning inside scipy's L-BFGS-B made
20 ten-parameter minimisations take 10.2 s instead of 0.2 s. `single_thread()` limits
torch and the BLAS libraries numpy and scipy load (threadpoolctl) for its duration.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from threadpoolctl import threadpool_limits


@contextmanager
def single_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with threadpool_limits(limits=1):
            yield
    finally:
        torch.set_num_threads(threads)
