"""Multi-process data parallelism (``python -m paddle.distributed.launch --nproc_per_node N``).

PaddleNLP's Trainer does the parallel part: with more than one process it wraps the model in
``paddle.DataParallel`` (gradients all-reduced: NCCL on GPUs, gloo on CPUs) and gives each process
its shard of every batch, so the effective batch is ``per_device_train_batch_size × N``. Every
process then holds the same weights; what is left to us is writing them once::

>>> write_once(lambda: save_files(directory))     # rank 0 writes; every rank returns once it is written
"""

from __future__ import annotations

from typing import Callable

import paddle


def write_once(write: Callable[[], object]) -> None:
    """Call ``write`` on rank 0 only, then wait until every process has got here (outside a
    multi-process run: just call it)."""
    if paddle.distributed.get_rank() == 0:
        write()
    if paddle.distributed.get_world_size() > 1:
        paddle.distributed.barrier()
