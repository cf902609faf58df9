"""Multi-process data parallelism (``python -m paddle.distributed.launch --nproc_per_node N``).

PaddleNLP's Trainer does the parallel part: with more than one process it wraps the model in
``paddle.DataParallel`` (gradients all-reduced: NCCL on GPUs, gloo on CPUs) and gives each process
its shard of every batch, so the effective batch is ``per_device_train_batch_size × N``. Every
process then holds the same weights; what is left to us is writing them once, and ending the
processes without Paddle aborting on the way out::

>>> write_once(lambda: save_files(directory))     # rank 0 writes; every rank returns once it is written
>>> sys.exit(end_process(main()))                 # one process: sys.exit(status); several: os._exit(status)
"""

from __future__ import annotations

import atexit
import os
import sys
from typing import Callable

import paddle


def write_once(write: Callable[[], object]) -> None:
    """Call ``write`` on rank 0 only, then wait until every process has got here (outside a
    multi-process run: just call it)."""
    if paddle.distributed.get_rank() == 0:
        write()
    if paddle.distributed.get_world_size() > 1:
        paddle.distributed.barrier()


def end_process(status: int) -> int:
    """Return ``status`` in a single-process run; end a multi-process one here with it.

    Paddle 3.3's TCP store runs in a thread of rank 0. When another rank disconnects while rank 0
    is already in C-level exit (its C++ static objects destroyed), that thread aborts the process:
    exit code -6 after a complete, saved run, which ``paddle.distributed.launch`` reports as a
    failure. So a multi-process run, once its work is done, runs Python's exit handlers (logging,
    temporary files), flushes stdout and stderr and leaves with ``os._exit``, before the C++
    destructors can run.

    >>> end_process(0)       # outside paddle.distributed.launch
    0
    """
    if paddle.distributed.get_world_size() <= 1:
        return status
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)
