"""This thread's SSE floating-point control register (MXCSR) on x86-64 Linux, through glibc's libm.

``fast_cpu_math`` sets its flush-to-zero and denormals-are-zero bits; ``op_threads`` gives its
worker threads the caller's value, so an op computes the same numbers on any thread.

>>> denormals_flushed()    # outside fast_cpu_math, on x86-64 Linux
False
"""

from __future__ import annotations

import ctypes
import ctypes.util
import platform
from typing import Any, Optional

FTZ_DAZ_BITS = 0x8040
"""MXCSR bit 15 (flush to zero) and bit 6 (denormals are zero)."""


class _FloatEnv(ctypes.Structure):
    """glibc's x86-64 ``fenv_t``: the x87 environment (28 bytes), then MXCSR."""

    _fields_ = [("x87", ctypes.c_uint8 * 28), ("mxcsr", ctypes.c_uint32)]


def _libm() -> Optional[Any]:
    """glibc's libm on x86-64 Linux, where ``fenv_t`` has the layout above; None elsewhere."""
    if platform.system() != "Linux" or platform.machine() not in ("x86_64", "AMD64"):
        return None
    name = ctypes.util.find_library("m")
    if name is None:
        return None
    try:
        return ctypes.CDLL(name)
    except OSError:
        return None


_LIBM = _libm()


def _float_env() -> Optional[_FloatEnv]:
    """This thread's floating-point environment, or None where it cannot be read."""
    env = _FloatEnv()
    if _LIBM is None or _LIBM.fegetenv(ctypes.byref(env)) != 0:
        return None
    return env


def get_mxcsr() -> Optional[int]:
    """This thread's MXCSR, e.g. ``0x1f80`` (the default), or None where it cannot be read."""
    env = _float_env()
    return None if env is None else int(env.mxcsr)


def set_mxcsr(value: int) -> None:
    """Set this thread's MXCSR (nothing where it cannot be read)."""
    env = _float_env()
    if env is not None:
        env.mxcsr = value
        _LIBM.fesetenv(ctypes.byref(env))


def denormals_flushed() -> bool:
    """True when this thread flushes float denormals to zero (FTZ and DAZ both set)."""
    mxcsr = get_mxcsr()
    return mxcsr is not None and mxcsr & FTZ_DAZ_BITS == FTZ_DAZ_BITS
