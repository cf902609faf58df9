"""op_threads.map_ops: independent ops on several threads, with the numbers and settings of one."""

import platform
import threading

import numpy as np
import paddle
import pytest
from paddle import _C_ops

from fewshot.cpu_env import kernel_threads
from fewshot.training.cpu_math import fast_cpu_math
from fewshot.training.op_threads import contiguous_runs, map_ops

DENORMAL = np.float32(1e-39)
"""A float32 denormal: read as zero where denormals are flushed."""


@pytest.mark.parametrize(
    "sizes, parts, runs",
    [
        ([30, 10, 10, 10], 2, [range(0, 1), range(1, 4)]),
        ([5, 5, 5, 5], 4, [range(0, 1), range(1, 2), range(2, 3), range(3, 4)]),
        ([5, 5, 5, 5], 2, [range(0, 2), range(2, 4)]),
        ([10, 10, 10, 100], 2, [range(0, 4)]),
        ([7, 7], 1, [range(0, 2)]),
        ([], 2, []),
    ],
)
def test_contiguous_runs_of_about_equal_size(sizes, parts, runs):
    assert contiguous_runs(sizes, parts) == runs


def _tensors(count=6, seed=0):
    rng = np.random.default_rng(seed)
    return [paddle.to_tensor(rng.standard_normal((64, 33 + i)).astype("float32")) for i in range(count)]


def test_results_in_order_bit_identical_and_computed_on_two_threads():
    tensors = _tensors()
    seen = []

    def norm(tensor):
        seen.append(threading.get_ident())
        return _C_ops.squared_l2_norm(tensor)

    threaded = map_ops(norm, tensors, threads=2)
    serial = [_C_ops.squared_l2_norm(t) for t in tensors]
    assert [r.numpy().tobytes() for r in threaded] == [r.numpy().tobytes() for r in serial]
    assert len(set(seen)) == 2 and threading.get_ident() in seen


def test_in_place_ops_change_every_tensor_once():
    tensors = _tensors()
    expected = [t.numpy() * np.float32(0.5) for t in tensors]
    with paddle.no_grad():
        map_ops(lambda t: t.scale_(0.5), tensors, threads=2)
    for tensor, want in zip(tensors, expected):
        np.testing.assert_array_equal(tensor.numpy(), want)


def test_one_thread_is_a_loop_on_the_caller():
    seen = []
    map_ops(lambda t: seen.append(threading.get_ident()), _tensors(), threads=1)
    assert set(seen) == {threading.get_ident()}


def test_default_threads_are_paddles_cpu_threads(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    seen = []
    map_ops(lambda t: seen.append(threading.get_ident()), _tensors())
    assert set(seen) == {threading.get_ident()}
    assert kernel_threads({"OMP_NUM_THREADS": "3"}) == 3
    assert kernel_threads({}) == kernel_threads({"OMP_NUM_THREADS": "x"}) == kernel_threads({"OMP_NUM_THREADS": "0"}) == 1


@pytest.mark.parametrize("enabled", [True, False])
def test_workers_take_the_callers_gradient_mode(enabled):
    with paddle.set_grad_enabled(enabled):
        modes = map_ops(lambda t: paddle.is_grad_enabled(), _tensors(), threads=2)
    assert modes == [enabled] * 6


@pytest.mark.skipif(
    not (platform.system() == "Linux" and platform.machine() == "x86_64"), reason="denormals are flushed on x86-64 Linux"
)
def test_workers_take_the_callers_denormal_setting():
    tensors = [paddle.full([4], DENORMAL, dtype="float32") for _ in range(2)]
    with fast_cpu_math():
        inside = map_ops(lambda t: (t * 1.0).numpy().view(np.uint32), tensors, threads=2)
    outside = map_ops(lambda t: (t * 1.0).numpy().view(np.uint32), tensors, threads=2)
    assert [r.tolist() for r in inside] == [[0] * 4] * 2, "the worker reads denormals as zero like the caller"
    assert [r.tolist() for r in outside] == [[DENORMAL.view(np.uint32)] * 4] * 2


def test_an_error_on_a_worker_reaches_the_caller_after_all_finish():
    tensors = _tensors()
    done = []

    def op(tensor):
        if tensor is tensors[-1]:
            raise ValueError("bad tensor")
        done.append(tensor)

    with pytest.raises(ValueError, match="bad tensor"):
        map_ops(op, tensors, threads=2)
    assert len(done) == len(tensors) - 1
