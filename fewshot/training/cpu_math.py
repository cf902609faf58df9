"""Three process-wide CPU settings that make Paddle's training and inference much faster, applied around our loops.

``fast_cpu_math()`` turns them on for the duration of a block (a ``fit``, an evaluation, a
pretraining run) and restores what was there before:

- **Contiguous view kernels** (``FLAGS_use_stride_kernel=False``). Paddle 3 makes ``transpose`` a
  strided view; the reshape that follows it in every attention layer, and matmuls fed with such
  views, then go through a generic strided copy that is slow on CPU. Turned off, ``transpose``
  copies at once with its own kernel. The results are bit-identical.
- **Flush denormals to zero** (FTZ and DAZ bits of the x86-64 SSE control register, through
  glibc's ``fegetenv``/``fesetenv``). Backward passes produce float32 values below 1.2e-38 (the
  tails of GELU's gradient, small loss scales), and a CPU matrix multiply that meets them runs
  up to a hundred times slower. With the bits set they read as zero, the usual setting of CPU
  deep-learning runtimes; values that small are below anything an optimizer step can resolve.
  Intel's OpenMP runtime, which Paddle ships, copies the setting to its worker threads.
- **Freed memory kept for reuse** (glibc's ``mallopt``: ``M_MMAP_MAX=0``, ``M_TRIM_THRESHOLD``
  2 GiB). Paddle's CPU allocator is plain ``malloc``/``free``, so every tensor of 32 MiB or more
  (an embedding gradient) is a fresh ``mmap``, and smaller ones come from heap memory that
  glibc hands back to the kernel as soon as it is freed: each training step of a base-sized
  model page-faulted about 150,000 fresh pages (600 MB), and the large matrix-multiply
  gradients, written into fresh pages, ran no faster on two cores than on one (a feed-forward
  weight's gradient: 23 ms on one thread, 25-27 ms on two, 13 ms once the memory is reused).
  Inside the block freed memory stays in the heap and is reused (15,000-40,000 faults a step).
  glibc keeps no record of its previous settings, so on leaving the outermost block fewshot
  sets the values a long-running glibc process ends up with
  (``M_MMAP_MAX`` 65,536, ``M_MMAP_THRESHOLD`` 32 MiB, ``M_TRIM_THRESHOLD`` 64 MiB: glibc's
  sliding thresholds at their 64-bit maximum) and, when the heap then holds more free memory
  than that trim threshold (after a ``fit``), returns it to the kernel (``malloc_trim``). A
  ``predict`` call frees far less: trimming after each one made the next page-fault its memory
  again (4.6 instead of 3.7 ms a one-text call on zh-ernie-tiny). The numbers computed do not
  change.

Measured on zh-ernie-tiny (``benchmarks/train_speed.py``, ``benchmarks/pretrain_speed.py``,
``benchmarks/inference.py``): prompt training 1.3-1.4x faster, a masked-LM pretraining step 1.8-2x,
dynamic-graph inference 1.7-2x. On a GPU device nothing changes; the denormal bits are set on
x86-64 Linux only, the malloc settings with 64-bit glibc only.
"""

from __future__ import annotations

import ctypes
import platform
import sys
import threading
from contextlib import contextmanager
from typing import Any, Iterator, Optional, Tuple

import paddle

from .float_env import FTZ_DAZ_BITS, get_mxcsr, set_mxcsr
from .grad_clip import use_global_norm_clip

STRIDE_FLAG = "FLAGS_use_stride_kernel"


M_TRIM_THRESHOLD, M_MMAP_THRESHOLD, M_MMAP_MAX = -1, -3, -4
"""glibc's ``mallopt`` parameters (``malloc.h``)."""
KEEP_FREED_MEMORY: Tuple[Tuple[int, int], ...] = ((M_MMAP_MAX, 0), (M_TRIM_THRESHOLD, 2**31 - 1))
"""Inside ``fast_cpu_math``: no ``mmap`` allocations, the heap is trimmed only past 2 GiB free."""
STEADY_TRIM_THRESHOLD = 64 << 20
GLIBC_STEADY_STATE: Tuple[Tuple[int, int], ...] = (
    (M_MMAP_MAX, 65536),
    (M_MMAP_THRESHOLD, 32 << 20),
    (M_TRIM_THRESHOLD, STEADY_TRIM_THRESHOLD),
)
"""After it: glibc's default ``mmap`` count and its sliding thresholds at their 64-bit maximum."""


class _MallInfo2(ctypes.Structure):
    """glibc's ``struct mallinfo2`` (glibc 2.33+); ``fordblks`` is the free memory the heap holds."""

    _fields_ = [
        (name, ctypes.c_size_t)
        for name in ("arena", "ordblks", "smblks", "hblks", "hblkhd")
        + ("usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")
    ]




def _glibc() -> Optional[Any]:
    """The C library when it is 64-bit glibc (``mallopt`` semantics as above); None elsewhere."""
    if platform.libc_ver()[0] != "glibc" or sys.maxsize < 2**32:
        return None
    try:
        libc = ctypes.CDLL(None)
    except OSError:
        return None
    if not (hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim")):
        return None
    if hasattr(libc, "mallinfo2"):
        libc.mallinfo2.restype = _MallInfo2
    return libc


_GLIBC = _glibc()
_MALLOC_LOCK = threading.Lock()
_malloc_depth = 0


def _set_malloc(settings: Tuple[Tuple[int, int], ...]) -> None:
    for parameter, value in settings:
        _GLIBC.mallopt(parameter, value)


def free_heap_bytes() -> Optional[int]:
    """Free memory glibc's heaps hold for reuse (``mallinfo2().fordblks``); None without glibc 2.33+."""
    if _GLIBC is None or not hasattr(_GLIBC, "mallinfo2"):
        return None
    return int(_GLIBC.mallinfo2().fordblks)


def _return_free_memory() -> None:
    """``malloc_trim(0)`` when the heap holds more free memory than ``STEADY_TRIM_THRESHOLD`` (or cannot say)."""
    free = free_heap_bytes()
    if free is None or free > STEADY_TRIM_THRESHOLD:
        _GLIBC.malloc_trim(0)


@contextmanager
def _freed_memory_kept() -> Iterator[None]:
    """Within the outermost such block, glibc keeps freed memory for reuse (``KEEP_FREED_MEMORY``)."""
    global _malloc_depth
    if _GLIBC is None:
        yield
        return
    with _MALLOC_LOCK:
        _malloc_depth += 1
        if _malloc_depth == 1:
            _set_malloc(KEEP_FREED_MEMORY)
    try:
        yield
    finally:
        with _MALLOC_LOCK:
            _malloc_depth -= 1
            if _malloc_depth == 0:
                _set_malloc(GLIBC_STEADY_STATE)
                _return_free_memory()


@contextmanager
def fast_cpu_math() -> Iterator[None]:
    """Within the block, Paddle on CPU uses contiguous view kernels, flushes denormals to zero and
    reuses freed memory.

    Nests, and restores the previous settings on exit, errors included. A no-op on GPU devices.
    """
    if not paddle.device.get_device().startswith("cpu"):
        yield
        return
    stride_before = paddle.get_flags([STRIDE_FLAG])[STRIDE_FLAG]
    mxcsr_before = get_mxcsr()
    paddle.set_flags({STRIDE_FLAG: False})
    if mxcsr_before is not None:
        set_mxcsr(mxcsr_before | FTZ_DAZ_BITS)
    try:
        with _freed_memory_kept():
            yield
    finally:
        paddle.set_flags({STRIDE_FLAG: stride_before})
        if mxcsr_before is not None:
            set_mxcsr(mxcsr_before)


class FastCpuMathTrainer:
    """Mixin for a PaddleNLP ``Trainer``: ``train``, ``evaluate`` and ``predict`` run in ``fast_cpu_math``,
    and the optimizer clips gradients with ``GlobalNormClip`` (the same numbers, faster on CPU)."""

    def create_optimizer(self, *args: Any, **kwargs: Any) -> Any:
        return use_global_norm_clip(super().create_optimizer(*args, **kwargs))

    def train(self, *args: Any, **kwargs: Any) -> Any:
        with fast_cpu_math():
            return super().train(*args, **kwargs)

    def evaluate(self, *args: Any, **kwargs: Any) -> Any:
        with fast_cpu_math():
            return super().evaluate(*args, **kwargs)

    def predict(self, *args: Any, **kwargs: Any) -> Any:
        with fast_cpu_math():
            return super().predict(*args, **kwargs)
