"""What every benchmark prints first: the CPU model, the cores this process may use, thread settings.

>>> print(machine_line({"onnxruntime threads": 2}))
CPU Intel(R) Xeon(R) Processor; 2 usable cores of 2; onnxruntime threads 2; load average 0.12
"""

from __future__ import annotations

import os
import platform
from typing import Mapping


def cpu_model() -> str:
    """The ``model name`` of /proc/cpuinfo (Linux), else what ``platform`` knows."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def machine_line(threads: Mapping[str, object]) -> str:
    """One line: CPU model, usable/online cores, the given thread settings, the 1-minute load average."""
    settings = "; ".join(f"{name} {value}" for name, value in threads.items())
    load = f"; load average {os.getloadavg()[0]:.2f}" if hasattr(os, "getloadavg") else ""
    return f"CPU {cpu_model()}; {usable_cores()} usable cores of {os.cpu_count()}; {settings}{load}"
