"""Fast CPU defaults for Paddle, set in the environment before Paddle loads. Imports no Paddle.

Paddle runs its CPU kernels on one thread unless told otherwise: at import it sets
``OMP_NUM_THREADS=1`` when the variable is unset, and both its OpenMP kernels (elementwise ops,
layer norm, ...) and the MKL it ships (matrix multiplies) take their thread count from it. On AMD
processors that MKL (2019.0.5) also picks a slow generic code path unless ``MKL_DEBUG_CPU_TYPE=5``
is set before it loads. ``fewshot/__init__.py`` calls :func:`apply_once` first thing, so
every ``import fewshot...`` sets, for variables the user has not set:

- ``OMP_NUM_THREADS`` = :func:`usable_cores` (divided among the node's processes when a Paddle
  launcher says how many there are, ``PADDLE_LOCAL_SIZE``; ``paddle.distributed.launch``
  itself passes on the ``OMP_NUM_THREADS=1`` it got from importing Paddle, which is kept);
- ``MKL_DEBUG_CPU_TYPE=5`` on AMD (and Hygon, AMD-derived) processors only.

``FEWSHOT_CPU_DEFAULTS=0`` turns this off. A variable already set is never changed. When Paddle
was imported before fewshot, nothing is set and one warning says what to do instead.

>>> apply_cpu_defaults(environ={}, modules={}).describe()    # on a 2-core Intel machine
'Intel(R) Xeon(R) Processor (GenuineIntel), 2 usable cores; OMP_NUM_THREADS=2 (fewshot), MKL_DEBUG_CPU_TYPE unset (not AMD)'
"""

from __future__ import annotations

import os
import platform
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Mapping, MutableMapping, Optional, Tuple, Union

PathLike = Union[str, "os.PathLike[str]"]

SWITCH = "FEWSHOT_CPU_DEFAULTS"
"""Set to ``0`` (or ``false``, ``no``, ``off``) to leave Paddle's CPU defaults alone."""
THREADS = "OMP_NUM_THREADS"
MKL_CPU_TYPE = "MKL_DEBUG_CPU_TYPE"
MKL_CPU_TYPE_AVX2 = "5"
LOCAL_PROCESSES = "PADDLE_LOCAL_SIZE"
AMD_VENDORS = ("AuthenticAMD", "HygonGenuine")
CPUINFO = "/proc/cpuinfo"
CGROUP_ROOT = "/sys/fs/cgroup"
SELF_CGROUP = "/proc/self/cgroup"

FEWSHOT, USER, OPTED_OUT, NOT_AMD, PADDLE_FIRST = "fewshot", "user", "opted out", "not AMD", "paddle imported first"
"""Where a variable's value came from (``Setting.source``)."""


@dataclass(frozen=True)
class CpuInfo:
    """The processor, e.g. ``CpuInfo("AuthenticAMD", "AMD EPYC 7B13 64-Core Processor")``."""

    vendor: str
    model: str

    @property
    def is_amd(self) -> bool:
        return self.vendor in AMD_VENDORS


@dataclass(frozen=True)
class Setting:
    """One variable after :func:`apply_cpu_defaults`: its value (None: unset) and where it came from."""

    name: str
    value: Optional[str]
    source: str

    def describe(self) -> str:
        """``OMP_NUM_THREADS=2 (fewshot)`` or ``MKL_DEBUG_CPU_TYPE unset (not AMD)``."""
        shown = self.name if self.value is None else f"{self.name}={self.value}"
        return f"{shown}{' unset' if self.value is None else ''} ({self.source})"


@dataclass(frozen=True)
class CpuDefaults:
    """What :func:`apply_cpu_defaults` found and did; benchmarks print ``describe()``."""

    cpu: CpuInfo
    usable_cores: int
    settings: Tuple[Setting, ...]

    def set_by_fewshot(self) -> List[str]:
        """Names of the variables fewshot set, e.g. ``['OMP_NUM_THREADS']``."""
        return [s.name for s in self.settings if s.source == FEWSHOT]

    def describe(self) -> str:
        """One line: processor, usable cores, each variable with its source."""
        settings = ", ".join(s.describe() for s in self.settings)
        return f"{self.cpu.model} ({self.cpu.vendor}), {self.usable_cores} usable cores; {settings}"


def read_cpu_info(cpuinfo: PathLike = CPUINFO) -> CpuInfo:
    """Vendor and model name from ``/proc/cpuinfo``, else from ``platform`` (vendor may be ``unknown``).

    ``vendor_id : GenuineIntel`` / ``model name : Intel(R) Xeon(R) Processor`` →
    ``CpuInfo("GenuineIntel", "Intel(R) Xeon(R) Processor")``.
    """
    fields: Dict[str, str] = {}
    try:
        with open(cpuinfo, encoding="utf-8", errors="replace") as handle:
            for line in handle:
                key, sep, value = line.partition(":")
                if not sep:
                    if fields:
                        break
                    continue
                fields.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    if "vendor_id" in fields and "model name" in fields:
        return CpuInfo(fields["vendor_id"], fields["model name"])
    processor = platform.processor() or platform.machine() or "unknown"  # may run ``uname -p``: only here
    vendor = fields.get("vendor_id") or next((v for v in AMD_VENDORS + ("GenuineIntel",) if v in processor), "unknown")
    return CpuInfo(vendor, fields.get("model name") or processor)


def _v2_limit(directory: Path) -> Optional[float]:
    """cgroup v2 ``cpu.max`` ``"150000 100000"`` → 1.5; ``"max 100000"`` or no file → None."""
    text = _read(directory / "cpu.max")
    parts = text.split() if text else []
    if len(parts) != 2 or parts[0] == "max":
        return None
    return _ratio(parts[0], parts[1])


def _v1_limit(directory: Path) -> Optional[float]:
    """cgroup v1 ``cpu.cfs_quota_us`` / ``cpu.cfs_period_us``; a quota of -1 or no file → None."""
    quota, period = _read(directory / "cpu.cfs_quota_us"), _read(directory / "cpu.cfs_period_us")
    return _ratio(quota, period) if quota and period else None


def _ratio(quota: str, period: str) -> Optional[float]:
    try:
        quota_us, period_us = int(quota), int(period)
    except ValueError:
        return None
    return quota_us / period_us if quota_us > 0 and period_us > 0 else None


def _read(path: Path) -> Optional[str]:
    try:
        return path.read_text(encoding="utf-8").strip()
    except OSError:
        return None


Limit = Callable[[Path], Optional[float]]


def _cpu_cgroups(root: Path, self_cgroup: PathLike) -> Iterator[Tuple[Path, str, Limit]]:
    """(hierarchy mount, this process's path in it, quota reader) for each cgroup holding the CPU controller."""
    text = _read(Path(self_cgroup))
    if text is None:
        yield root, "/", _v2_limit
        yield root / "cpu", "/", _v1_limit
        return
    for line in text.splitlines():
        hierarchy, _, rest = line.partition(":")
        controllers, _, path = rest.partition(":")
        if hierarchy == "0" and controllers == "":
            yield root, path, _v2_limit
        elif "cpu" in controllers.split(","):
            mount = root / controllers
            yield (mount if mount.is_dir() else root / "cpu"), path, _v1_limit


def cgroup_cpu_limit(cgroup_root: PathLike = CGROUP_ROOT, self_cgroup: PathLike = SELF_CGROUP) -> Optional[float]:
    """The tightest CPU quota of this process's cgroups and their ancestors, in CPUs; None when unlimited.

    A container started with ``--cpus 1.5`` has ``cpu.max`` = ``150000 100000`` → 1.5.
    """
    limits = []
    for mount, path, limit in _cpu_cgroups(Path(cgroup_root), self_cgroup):
        directory = mount / path.strip("/")
        while True:
            value = limit(directory)
            if value is not None:
                limits.append(value)
            if directory == mount or mount not in directory.parents:
                break
            directory = directory.parent
    return min(limits, default=None)


def usable_cores(cgroup_root: PathLike = CGROUP_ROOT, self_cgroup: PathLike = SELF_CGROUP) -> int:
    """Cores this process may use: its affinity mask, capped by the cgroup quota rounded down, at least 1.

    Affinity {0, 1, 2, 3} with ``cpu.max`` ``250000 100000`` → 2.
    """
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count() or 1
    limit = cgroup_cpu_limit(cgroup_root, self_cgroup)
    if limit is not None:
        cores = min(cores, int(limit))
    return max(1, cores)


def opted_out(environ: Mapping[str, str]) -> bool:
    """True when ``FEWSHOT_CPU_DEFAULTS`` is ``0``, ``false``, ``no`` or ``off`` (any case)."""
    return environ.get(SWITCH, "").strip().lower() in ("0", "false", "no", "off")


def default_threads(cores: int, environ: Mapping[str, str]) -> int:
    """``cores`` shared among the node's processes when a Paddle launcher sets ``PADDLE_LOCAL_SIZE``.

    4 cores, ``PADDLE_LOCAL_SIZE=2`` → 2; no launcher → 4.
    """
    try:
        processes = max(1, int(environ.get(LOCAL_PROCESSES, "1")))
    except ValueError:
        processes = 1
    return max(1, cores // processes)


def kernel_threads(environ: Optional[Mapping[str, str]] = None) -> int:
    """Threads Paddle's CPU kernels run on: ``OMP_NUM_THREADS`` (which Paddle sets to 1 when unset).

    ``{"OMP_NUM_THREADS": "2"}`` → 2; unset or not a positive number → 1.
    """
    environ = os.environ if environ is None else environ
    try:
        return max(1, int(environ.get(THREADS, "1")))
    except ValueError:
        return 1


_WARNED = False


def apply_cpu_defaults(
    environ: Optional[MutableMapping[str, str]] = None,
    modules: Optional[Mapping[str, object]] = None,
    cpuinfo: PathLike = CPUINFO,
    cgroup_root: PathLike = CGROUP_ROOT,
    self_cgroup: PathLike = SELF_CGROUP,
) -> CpuDefaults:
    """Set ``OMP_NUM_THREADS`` (and ``MKL_DEBUG_CPU_TYPE`` on AMD) in ``environ`` where unset; say what was done.

    ``environ`` defaults to ``os.environ`` and ``modules`` to ``sys.modules`` (where Paddle being
    loaded already means it is too late: nothing is set and one warning per process says so).
    """
    global _WARNED
    environ = os.environ if environ is None else environ
    modules = sys.modules if modules is None else modules
    cpu = read_cpu_info(cpuinfo)
    cores = usable_cores(cgroup_root, self_cgroup)
    wanted = {THREADS: str(default_threads(cores, environ))}
    if cpu.is_amd:
        wanted[MKL_CPU_TYPE] = MKL_CPU_TYPE_AVX2
    skip = OPTED_OUT if opted_out(environ) else PADDLE_FIRST if "paddle" in modules else None
    settings = []
    for name in (THREADS, MKL_CPU_TYPE):
        if name in environ:
            settings.append(Setting(name, environ[name], USER))
        elif name not in wanted:
            settings.append(Setting(name, None, NOT_AMD))
        elif skip:
            settings.append(Setting(name, None, skip))
        else:
            environ[name] = wanted[name]
            settings.append(Setting(name, wanted[name], FEWSHOT))
    if skip == PADDLE_FIRST and not _WARNED and _too_late(environ, wanted):
        _WARNED = True
        advice = " ".join(f"{name}={value}" for name, value in wanted.items())
        warnings.warn(
            f"fewshot: paddle was imported before fewshot, so its CPU defaults were not applied; "
            f"set {advice} before importing paddle, or import fewshot first",
            RuntimeWarning,
            stacklevel=2,
        )
    return CpuDefaults(cpu, cores, tuple(settings))


def _too_late(environ: Mapping[str, str], wanted: Mapping[str, str]) -> bool:
    """Whether Paddle, loaded first, runs differently from the defaults (its own ``OMP_NUM_THREADS=1``)."""
    threads = environ.get(THREADS, "1") == "1" and wanted[THREADS] != "1"
    return threads or (MKL_CPU_TYPE in wanted and MKL_CPU_TYPE not in environ)


_APPLIED: Optional[CpuDefaults] = None


def apply_once() -> CpuDefaults:
    """Apply the defaults to this process the first time (``import fewshot`` does); return what was applied."""
    global _APPLIED
    if _APPLIED is None:
        _APPLIED = apply_cpu_defaults()
    return _APPLIED


def environ_for_child(defaults: bool, base: Optional[Mapping[str, str]] = None) -> Dict[str, str]:
    """This process's environment without what fewshot set, so a child applies (or skips) defaults itself.

    ``defaults=False`` also sets ``FEWSHOT_CPU_DEFAULTS=0``: the child runs with Paddle's own defaults.
    """
    env = dict(os.environ if base is None else base)
    for name in apply_once().set_by_fewshot():
        env.pop(name, None)
    if defaults:
        env.pop(SWITCH, None)
    else:
        env[SWITCH] = "0"
    return env
