"""Honest ceilings: this CPU's fp32, bf16 and int8 GEMM peaks, each from the best kernel available here.

    python benchmarks/ceilings.py [--size 1024] [--threads N]

Every number type is timed on a square ``size``³ matrix product with each kernel this environment
has, and the fastest sets the ceiling: fp32 by numpy (its BLAS as shipped, and again in a child with
``OPENBLAS_CORETYPE`` naming the CPU's vector unit: numpy's bundled OpenBLAS may not recognise a new
CPU model and fall back to SSE3 kernels), onnxruntime's ``MatMul`` and OpenVINO; bf16 by OpenVINO
(inference precision bf16, on CPUs with native bf16); int8 by onnxruntime's ``MatMulInteger`` (u8×s8)
and OpenVINO (a QDQ ``MatMul``, which it runs as int8). Prints the machine line with the CPU's ISA
features, a table of every kernel's rate, and one line of ceilings with the kernel that set each.
``benchmarks/inference.py`` imports :func:`measure_ceilings` and reports each engine as a fraction
of the ceiling of its number type.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional

import _machine  # noqa: I001  (first: applies fewshot's CPU defaults)

import numpy as np

KINDS = ("fp32", "bf16", "int8")


@dataclass
class Kernel:
    """One kernel's rate: ``kind`` (fp32/bf16/int8), ``source`` (which library), GFLOP/s (GOP/s for int8)."""

    kind: str
    source: str
    gflops: float


def best_rate(run: Callable[[], object], flops: float, repeats: int = 3, min_time: float = 0.2) -> float:
    """The best rate of ``run`` in GFLOP/s over ``repeats`` timings, each of enough calls to last ``min_time``."""
    run()
    calls, start = 1, time.perf_counter()
    run()
    once = max(time.perf_counter() - start, 1e-6)
    calls = max(1, int(min_time / once))
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(calls):
            run()
        best = min(best, (time.perf_counter() - start) / calls)
    return flops / best / 1e9


def _matmul_model(path: Path, size: int, int8: str = "") -> None:
    """An ONNX graph ``Y = A @ B`` with B a constant: float32; ``int8="integer"``: ``MatMulInteger`` of u8 A
    and s8 B; ``int8="qdq"``: float A and B quantised and dequantised around a float MatMul (QDQ)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    nodes, inits = [], []
    if int8 == "integer":
        a = helper.make_tensor_value_info("A", TensorProto.UINT8, [size, size])
        y = helper.make_tensor_value_info("Y", TensorProto.INT32, [size, size])
        inits.append(numpy_helper.from_array(rng.integers(-127, 127, (size, size), dtype=np.int8), "B"))
        nodes.append(helper.make_node("MatMulInteger", ["A", "B"], ["Y"]))
    else:
        a = helper.make_tensor_value_info("A", TensorProto.FLOAT, [size, size])
        y = helper.make_tensor_value_info("Y", TensorProto.FLOAT, [size, size])
        inits.append(numpy_helper.from_array(rng.standard_normal((size, size), dtype=np.float32), "B"))
        if int8 == "qdq":
            inits += [numpy_helper.from_array(np.array(0.05, np.float32), "sa"),
                      numpy_helper.from_array(np.array(128, np.uint8), "za"),
                      numpy_helper.from_array(np.array(0.05, np.float32), "sb"),
                      numpy_helper.from_array(np.array(0, np.int8), "zb")]
            nodes += [helper.make_node("QuantizeLinear", ["A", "sa", "za"], ["qa"]),
                      helper.make_node("DequantizeLinear", ["qa", "sa", "za"], ["da"]),
                      helper.make_node("QuantizeLinear", ["B", "sb", "zb"], ["qb"]),
                      helper.make_node("DequantizeLinear", ["qb", "sb", "zb"], ["db"]),
                      helper.make_node("MatMul", ["da", "db"], ["Y"])]
        else:
            nodes.append(helper.make_node("MatMul", ["A", "B"], ["Y"]))
    graph = helper.make_graph(nodes, "matmul", [a], [y], inits)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]), str(path))


def _input(size: int, integer: bool) -> np.ndarray:
    rng = np.random.default_rng(1)
    if integer:
        return rng.integers(0, 255, (size, size), dtype=np.uint8)
    return rng.standard_normal((size, size), dtype=np.float32)


def onnxruntime_kernels(work: Path, size: int, threads: int) -> List[Kernel]:
    from fewshot.runtime.engines.onnxruntime_engine import session_options
    import onnxruntime as ort

    flops = 2.0 * size**3
    found = []
    for kind, int8 in (("fp32", ""), ("int8", "integer")):
        path = work / f"ort-{kind}.onnx"
        _matmul_model(path, size, int8)
        session = ort.InferenceSession(str(path), session_options(threads), providers=["CPUExecutionProvider"])
        feed = {"A": _input(size, bool(int8))}
        label = "onnxruntime MatMulInteger" if int8 else "onnxruntime MatMul"
        found.append(Kernel(kind, label, best_rate(lambda: session.run(None, feed), flops)))
    return found


def openvino_kernels(work: Path, size: int, threads: int) -> List[Kernel]:
    from fewshot.runtime.engines import ENGINES

    engine = ENGINES["openvino"]
    if not engine.available():
        return []
    from fewshot.runtime.engines.openvino_engine import _core

    flops = 2.0 * size**3
    found = []
    wanted = [("fp32", "", "f32"), ("int8", "qdq", "f32")]
    if "bf16" in engine.precisions("cpu"):
        wanted.append(("bf16", "", "bf16"))
    for kind, int8, hint in wanted:
        path = work / f"ov-{kind}.onnx"
        _matmul_model(path, size, int8)
        compiled = _core().compile_model(str(path), "CPU", {"INFERENCE_PRECISION_HINT": hint,
                                                             "INFERENCE_NUM_THREADS": threads,
                                                             "PERFORMANCE_HINT": "LATENCY"})
        request = compiled.create_infer_request()
        feed = {"A": _input(size, False)}
        found.append(Kernel(kind, f"openvino {kind} MatMul", best_rate(lambda: request.infer(feed), flops)))
    return found


def numpy_kernels(size: int) -> List[Kernel]:
    """numpy's float32 matmul as shipped, and in a child with ``OPENBLAS_CORETYPE`` set for this CPU."""
    found = [Kernel("fp32", "numpy (BLAS as shipped)", _numpy_rate(size))]
    coretype = "SkylakeX" if "avx512f" in _machine.isa_features() else "Haswell"
    env = {**os.environ, "OPENBLAS_CORETYPE": coretype}
    code = f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); import ceilings; print(ceilings._numpy_rate({size}))"
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    if result.returncode == 0 and result.stdout.strip():
        found.append(Kernel("fp32", f"numpy (OPENBLAS_CORETYPE={coretype})", float(result.stdout.split()[-1])))
    return found


def _numpy_rate(size: int) -> float:
    a, b = _input(size, False), _input(size, False)
    return best_rate(lambda: a @ b, 2.0 * size**3)


def measure_ceilings(size: int = 1024, threads: Optional[int] = None) -> Dict[str, object]:
    """Every kernel's rate and, per number type, the best: ``{"kernels": [Kernel...], "ceilings": {"fp32": Kernel...}}``."""
    from fewshot.cpu_env import usable_cores

    threads = threads or usable_cores()
    with tempfile.TemporaryDirectory(prefix="fewshot-ceilings-") as tmp:
        kernels = numpy_kernels(size) + onnxruntime_kernels(Path(tmp), size, threads)
        kernels += openvino_kernels(Path(tmp), size, threads)
    ceilings = {kind: max((k for k in kernels if k.kind == kind), key=lambda k: k.gflops)
                for kind in KINDS if any(k.kind == kind for k in kernels)}
    return {"kernels": kernels, "ceilings": ceilings, "size": size, "threads": threads}


def ceiling_line(ceilings: Dict[str, Kernel]) -> str:
    """``ceilings: fp32 150.2 GFLOP/s (onnxruntime MatMul) | bf16 ... | int8 ...``."""
    parts = [f"{kind} {k.gflops:.1f} G{'OP' if kind == 'int8' else 'FLOP'}/s ({k.source})" for kind, k in ceilings.items()]
    return "ceilings: " + " | ".join(parts)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=1024, help="matrix side (default 1024)")
    p.add_argument("--threads", type=int, default=None, help="threads for onnxruntime and OpenVINO (default: usable cores)")
    args = p.parse_args()
    result = measure_ceilings(args.size, args.threads)
    print(_machine.machine_line())
    print(f"{args.size}x{args.size} matrix products, {result['threads']} threads")
    print(f"{'kind':<6}{'kernel':<40}{'G(FL)OP/s':>10}")
    for kernel in result["kernels"]:
        print(f"{kernel.kind:<6}{kernel.source:<40}{kernel.gflops:>10.1f}")
    print(ceiling_line(result["ceilings"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
