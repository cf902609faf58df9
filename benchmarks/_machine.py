"""What the speed benchmarks share: the machine line, numpy's matmul rate, encoder FLOPs, and one
child process per CPU setting.

Paddle fixes its CPU thread count (``OMP_NUM_THREADS``) and MKL's code path
(``MKL_DEBUG_CPU_TYPE``) when it loads, so a script compares fewshot's CPU defaults
(``fewshot.cpu_env``) with Paddle's own by running itself again, once per setting and round,
alternating (``fewshot``, ``paddle``, ``fewshot``, ...), so that a busy machine slows both alike:

    python benchmarks/train_speed.py --cpu-setting fewshot    # a child: Paddle loads with our defaults
    python benchmarks/train_speed.py --cpu-setting paddle     # FEWSHOT_CPU_DEFAULTS=0: Paddle's defaults

A child prints its results as one ``RESULT {...}`` JSON line, with its machine line in it.
Import this module before Paddle: it imports ``fewshot`` (which applies the defaults) and numpy.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

from _paths import ROOT

if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from fewshot.cpu_env import apply_once, environ_for_child  # noqa: E402  (before anything imports Paddle)

SETTINGS = ("fewshot", "paddle")
"""``fewshot``: our CPU defaults; ``paddle``: Paddle's own (``FEWSHOT_CPU_DEFAULTS=0``)."""
SETTING_FLAG = "--cpu-setting"
RESULT_PREFIX = "RESULT "


ISA_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_tile", "amx_bf16", "amx_int8")
"""The vector and matrix extensions that decide which fp32/bf16/int8 kernels a CPU runs (``/proc/cpuinfo`` names)."""


def isa_features() -> List[str]:
    """Which of ``ISA_FLAGS`` this CPU has: ``['avx2', 'avx512f', 'avx512_vnni', 'avx512_bf16']``; [] where unreadable."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return []
    flags = next((line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")), [])
    return [flag for flag in ISA_FLAGS if flag in flags]


def isa_line() -> str:
    """``ISA avx2 avx512f avx512_vnni avx512_bf16 (VNNI yes, AMX no)``."""
    found = isa_features()
    vnni = "yes" if any("vnni" in f for f in found) else "no"
    amx = "yes" if any(f.startswith("amx") for f in found) else "no"
    return f"ISA {' '.join(found) or 'unknown'} (AVX-512 {'yes' if 'avx512f' in found else 'no'}, VNNI {vnni}, AMX {amx})"


def machine_line(settings: Optional[Dict[str, Any]] = None) -> str:
    """``machine: Intel(R) Xeon(R) Processor (GenuineIntel), 2 usable cores; OMP_NUM_THREADS=2 (fewshot), ...; ISA ...``

    ``settings`` (``{"onnxruntime threads": 2}``), the CPU's ISA features and the 1-minute load average follow.
    """
    extra = "".join(f"; {name} {value}" for name, value in (settings or {}).items())
    load = f"; load average {os.getloadavg()[0]:.2f}" if hasattr(os, "getloadavg") else ""
    return f"machine: {apply_once().describe()}{extra}; {isa_line()}{load}"


def add_setting_arguments(parser: Any, rounds: int = 2) -> None:
    """``--setting-rounds`` (children per CPU setting) and ``--cpu-setting`` (run as one such child)."""
    parser.add_argument("--setting-rounds", type=int, default=rounds,
                        help=f"child processes per CPU setting, alternating (default {rounds})")
    parser.add_argument(SETTING_FLAG, choices=SETTINGS, help="run as a child with one CPU setting (internal)")


def print_result(payload: Dict[str, Any]) -> None:
    """A child's last line: its results and machine line as JSON."""
    print(RESULT_PREFIX + json.dumps({**payload, "machine": machine_line()}), flush=True)


def run_child(script: Path, setting: str, argv: Sequence[str]) -> Dict[str, Any]:
    """Run ``script`` with ``--cpu-setting setting`` in the environment Paddle should see; its result."""
    env = environ_for_child(setting == "fewshot")
    command = [sys.executable, str(script), SETTING_FLAG, setting, *argv]
    proc = subprocess.run(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines = [line for line in proc.stdout.splitlines() if line.startswith(RESULT_PREFIX)]
    if proc.returncode != 0 or not lines:
        sys.stderr.write(proc.stdout[-3000:] + proc.stderr[-3000:])
        raise SystemExit(f"{script.name}: child with --cpu-setting {setting} failed (exit {proc.returncode})")
    return json.loads(lines[-1][len(RESULT_PREFIX):])


def busy_cpu_seconds() -> Optional[float]:
    """CPU seconds the whole machine has spent busy since boot (``/proc/stat``), None where unreadable."""
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    except OSError:
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def alternate(script: Path, argv: Sequence[str], rounds: int) -> Dict[str, List[Dict[str, Any]]]:
    """``rounds`` children per setting, alternating; ``{setting: [result, ...]}``.

    Prints one line per child with its wall time and how many cores other processes kept busy
    meanwhile (the machine's busy time less the child's own, over the wall time): a run measured
    beside other work is slower, and this says by how much to distrust it.
    """
    results: Dict[str, List[Dict[str, Any]]] = {s: [] for s in SETTINGS}
    for round_ in range(1, rounds + 1):
        for setting in SETTINGS:
            start, busy, own = time.perf_counter(), busy_cpu_seconds(), children_cpu_seconds()
            result = run_child(script, setting, argv)
            wall = time.perf_counter() - start
            others = None if busy is None else (busy_cpu_seconds() - busy - (children_cpu_seconds() - own)) / wall
            result["other_cores_busy"] = others
            results[setting].append(result)
            load = "" if others is None else f", other processes kept {max(others, 0.0):.2f} cores busy"
            print(f"round {round_} {setting:<8} {wall:.0f} s{load}", flush=True)
    return results


def print_settings(results: Dict[str, List[Dict[str, Any]]]) -> None:
    """One line per setting: the machine line its children reported."""
    for setting in SETTINGS:
        print(f"{setting + ' setting':<17}{results[setting][0]['machine']}")


def numpy_matmul_gflops(size: int = 2048, repeats: int = 5) -> float:
    """Best float32 ``size``² numpy matmul rate in GFLOP/s (numpy's BLAS on its default threads)."""
    import numpy as np

    a = np.random.default_rng(0).random((size, size), dtype=np.float32)
    a @ a
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        for _ in range(repeats):
            a @ a
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 * repeats / best / 1e9


def encoder_flops(config: Any, shapes: Sequence[Tuple[int, int]], positions: int) -> float:
    """Forward matmul FLOPs of the transformer encoder on batches of ``(batch, length)``.

    Per layer and token: the four attention projections (``2 * 4h²``), the feed-forward pair
    (``2 * 2h·inner``) and attention scores and context (``2 * 2nh``). The last layer runs its keys
    and values over every token but everything else only at the ``positions`` the head reads
    (``fewshot.prompt.partial_encoder``), so only that work is counted. Embeddings and heads are not.
    """
    h, inner, layers = config.hidden_size, config.intermediate_size, config.num_hidden_layers
    total = 0.0
    for b, n in shapes:
        tokens, read = b * n, b * positions
        total += (layers - 1) * (2 * tokens * (4 * h * h + 2 * h * inner) + 4 * b * n * n * h)
        total += 2 * tokens * 2 * h * h + 2 * read * (2 * h * h + 2 * h * inner) + 4 * read * n * h
    return total
