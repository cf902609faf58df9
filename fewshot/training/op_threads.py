"""Independent Paddle CPU ops on several threads at once, with the numbers of one thread.

Many of Paddle's CPU kernels run on one thread whatever ``OMP_NUM_THREADS`` says: the squared
norm and the in-place scale that clip a gradient are two (30-35 ms each per step of a base-sized
model, on one core while the other waits). Paddle's eager ops release the GIL while their kernel
runs, so ops on different tensors can run side by side in Python threads. ``map_ops`` splits a
list of tensors into as many contiguous runs of about equal size as Paddle has CPU threads
(``fewshot.cpu_env.kernel_threads``) and applies the op to each run on its own thread, the
caller's included. Every op is the same kernel on the same inputs, and each worker takes the
caller's floating-point control register (denormals flushed or not) and gradient mode, so the
results are bit-identical to a loop on one thread (tested). With one Paddle thread (Paddle's
defaults, ``FEWSHOT_CPU_DEFAULTS=0``) it is that loop.

Only for kernels that run on one thread: an op that uses OpenMP itself would start one OpenMP
team per worker and oversubscribe the cores.

>>> norms = map_ops(_C_ops.squared_l2_norm, grads)    # [norm of grads[0], norm of grads[1], ...]
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor, wait
from typing import Callable, Dict, List, Optional, Sequence, TypeVar

import paddle

from ..cpu_env import kernel_threads
from .float_env import get_mxcsr, set_mxcsr

Result = TypeVar("Result")

_POOLS: Dict[int, ThreadPoolExecutor] = {}
_POOLS_LOCK = threading.Lock()


def _pool(workers: int) -> ThreadPoolExecutor:
    """This process's pool of ``workers`` threads, made on first use."""
    with _POOLS_LOCK:
        if workers not in _POOLS:
            _POOLS[workers] = ThreadPoolExecutor(workers, thread_name_prefix="fewshot-ops")
        return _POOLS[workers]


def contiguous_runs(sizes: Sequence[int], parts: int) -> List[range]:
    """Split indices ``0..len(sizes)-1`` into at most ``parts`` contiguous runs of about equal total size.

    ``contiguous_runs([30, 10, 10, 10], 2)`` → ``[range(0, 1), range(1, 4)]``.
    """
    total = sum(sizes)
    runs, start, done = [], 0, 0
    for index, size in enumerate(sizes):
        done += size
        if done * parts >= total * (len(runs) + 1) and len(runs) < parts - 1:
            runs.append(range(start, index + 1))
            start = index + 1
    runs.append(range(start, len(sizes)))
    return [run for run in runs if len(run)]


def map_ops(
    op: Callable[[paddle.Tensor], Result], tensors: Sequence[paddle.Tensor], threads: Optional[int] = None
) -> List[Result]:
    """``[op(t) for t in tensors]``, run on ``threads`` threads (default: Paddle's CPU thread count).

    Errors raised by ``op`` reach the caller, after every thread has finished.
    """
    threads = kernel_threads() if threads is None else threads
    runs = contiguous_runs([int(t.size) for t in tensors], threads)
    if len(runs) <= 1:
        return [op(t) for t in tensors]
    mxcsr, grad_enabled = get_mxcsr(), paddle.is_grad_enabled()

    def run_on_worker(run: range) -> List[Result]:
        if mxcsr is not None:
            set_mxcsr(mxcsr)
        with paddle.set_grad_enabled(grad_enabled):
            return [op(tensors[i]) for i in run]

    futures = [_pool(len(runs) - 1).submit(run_on_worker, run) for run in runs[1:]]
    try:
        results = [op(tensors[i]) for i in runs[0]]
    finally:
        wait(futures)
    for future in futures:
        results.extend(future.result())
    return results
