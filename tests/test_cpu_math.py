"""fast_cpu_math: contiguous kernels and flushed denormals inside, the previous settings after."""

import platform
import resource

import numpy as np
import paddle
import pytest
from paddlenlp.transformers import AutoModelForMaskedLM

from fewshot.classifier import PromptClassifier
from fewshot.training import cpu_math
from fewshot.training.cpu_math import STRIDE_FLAG, fast_cpu_math
from fewshot.training.float_env import denormals_flushed
from fewshot.training.trainer import PromptTrainer

X86_LINUX = platform.system() == "Linux" and platform.machine() == "x86_64"
needs_x86_linux = pytest.mark.skipif(not X86_LINUX, reason="denormal flushing is set on x86-64 Linux only")
DENORMAL = np.float32(1e-39)


def _stride_kernels() -> bool:
    return paddle.get_flags([STRIDE_FLAG])[STRIDE_FLAG]


def test_settings_apply_inside_and_are_restored_after_nesting_and_errors():
    before = (_stride_kernels(), denormals_flushed())
    assert before[0], "Paddle's default is stride kernels on"
    with pytest.raises(RuntimeError, match="inside"):
        with fast_cpu_math():
            assert not _stride_kernels() and denormals_flushed() == X86_LINUX
            with fast_cpu_math():
                assert not _stride_kernels()
            assert not _stride_kernels() and denormals_flushed() == X86_LINUX
            raise RuntimeError("inside")
    assert (_stride_kernels(), denormals_flushed()) == before


@needs_x86_linux
def test_denormals_read_as_zero_inside_only():
    value = paddle.to_tensor(np.array([DENORMAL, 1.0], dtype="float32"))
    with fast_cpu_math():
        assert denormals_flushed()
        inside = (value * 1.0).numpy()
    outside = (value * 1.0).numpy()
    np.testing.assert_array_equal(inside, [0.0, 1.0])
    np.testing.assert_array_equal(outside, [DENORMAL, 1.0])
    assert not denormals_flushed()


needs_glibc = pytest.mark.skipif(cpu_math._GLIBC is None, reason="the malloc settings are made with 64-bit glibc only")


def _page_faults_of_large_tensors(count: int = 4) -> int:
    """Minor page faults of making and dropping ``count`` 64 MiB tensors (after two to warm the heap)."""
    for _ in range(2):
        paddle.zeros([16 << 20])
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(count):
        paddle.zeros([16 << 20])
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before


@needs_glibc
def test_freed_memory_is_reused_inside_and_returned_after():
    pages = 4 * (64 << 20) // resource.getpagesize()
    assert _page_faults_of_large_tensors() > pages * 0.9, "outside, every 64 MiB tensor is a fresh mmap"
    with fast_cpu_math():
        with fast_cpu_math():
            nested = _page_faults_of_large_tensors()
        inner_exit = _page_faults_of_large_tensors()
    after = _page_faults_of_large_tensors()
    assert nested < pages * 0.05 and inner_exit < pages * 0.05, "inside, the freed memory is reused"
    assert after > pages * 0.9, "after the outermost block, large tensors are mmapped (and returned) again"


class _RecordingGlibc:
    """Stands in for glibc: reports ``free`` bytes held by the heap and records ``malloc_trim`` calls."""

    def __init__(self, free):
        self.free, self.trims, self.settings = free, [], []

    def mallopt(self, parameter, value):
        self.settings.append((parameter, value))

    def mallinfo2(self):
        return cpu_math._MallInfo2(fordblks=self.free)

    def malloc_trim(self, pad):
        self.trims.append(pad)


@pytest.mark.parametrize("free, trimmed", [(cpu_math.STEADY_TRIM_THRESHOLD + 1, True), (8 << 20, False)])
def test_free_memory_returned_only_when_the_heap_holds_much(monkeypatch, free, trimmed):
    glibc = _RecordingGlibc(free)
    monkeypatch.setattr(cpu_math, "_GLIBC", glibc)
    with fast_cpu_math():
        assert glibc.settings == list(cpu_math.KEEP_FREED_MEMORY)
    assert glibc.settings[-3:] == list(cpu_math.GLIBC_STEADY_STATE)
    assert glibc.trims == ([0] if trimmed else []), "a predict call's few freed MiB stay for the next call"


@needs_glibc
@pytest.mark.skipif(not hasattr(cpu_math._GLIBC, "mallinfo2"), reason="mallinfo2 needs glibc 2.33+")
def test_free_heap_bytes_counts_memory_freed_inside_the_block():
    with fast_cpu_math():
        tensor = paddle.zeros([16 << 20])
        held = cpu_math.free_heap_bytes()
        del tensor
        assert cpu_math.free_heap_bytes() >= held + (64 << 20) * 0.99


def _loss_and_grads(model_dir, ids):
    paddle.seed(0)
    model = AutoModelForMaskedLM.from_pretrained(model_dir)
    model.eval()
    logits = model(input_ids=paddle.to_tensor(ids))
    logits = logits[0] if isinstance(logits, (tuple, list)) else logits
    loss = (logits.astype("float32") ** 2).mean()
    loss.backward()
    return float(loss), {n: p.grad.numpy() for n, p in model.named_parameters() if p.grad is not None}


def test_forward_and_backward_give_the_same_numbers(tiny_model_dir):
    ids = np.random.default_rng(0).integers(5, 40, size=(3, 11)).astype("int64")
    loss, grads = _loss_and_grads(tiny_model_dir, ids)
    with fast_cpu_math():
        fast_loss, fast_grads = _loss_and_grads(tiny_model_dir, ids)
    assert fast_loss == pytest.approx(loss, rel=1e-6)
    assert fast_grads.keys() == grads.keys() and len(grads) > 10
    for name, grad in grads.items():
        np.testing.assert_allclose(fast_grads[name], grad, rtol=1e-5, atol=1e-7, err_msg=name)


class _RecordingTrainer(PromptTrainer):
    seen = []

    def compute_loss(self, model, inputs, return_outputs=False):
        self.seen.append((_stride_kernels(), denormals_flushed()))
        return super().compute_loss(model, inputs, return_outputs)


def test_training_evaluation_and_prediction_run_with_fast_cpu_math(tiny_model_dir, separable_task, monkeypatch):
    train, test, words = separable_task
    monkeypatch.setattr("fewshot.classifier.PromptTrainer", _RecordingTrainer)
    clf = PromptClassifier(tiny_model_dir, labels=words, template="{'text': 'text_a'}{'mask'}{'mask'}", seed=0)
    clf.fit(train[:8], eval_data=test[:4], max_steps=2, per_device_train_batch_size=4,
            disable_tqdm=True, report_to=[], evaluation_strategy="steps", eval_steps=1)
    assert len(_RecordingTrainer.seen) >= 4
    assert {stride for stride, _ in _RecordingTrainer.seen} == {False}
    if X86_LINUX:
        assert {flushed for _, flushed in _RecordingTrainer.seen} == {True}
    assert _stride_kernels()

    seen_in_forward = []
    hook = clf.model.register_forward_post_hook(lambda *_: seen_in_forward.append(_stride_kernels()))
    clf.predict([e.text_a for e in test[:3]])
    hook.remove()
    assert seen_in_forward == [False]
