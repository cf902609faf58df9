"""GlobalNormClip: Paddle's global-norm clipping, bit for bit, and the trainers use it."""

import numpy as np
import paddle
import paddle.nn as nn
import pytest

from fewshot.classifier import PromptClassifier
from fewshot.training.grad_clip import GlobalNormClip, use_global_norm_clip
from fewshot.training.trainer import PromptTrainer


def _train(max_norm: float, faster: bool):
    """Five AdamW steps on a small model with two parameter groups; the parameters after them."""
    paddle.seed(0)
    embedding = nn.Embedding(50, 16)
    head = nn.Sequential(nn.Linear(16, 64), nn.GELU(), nn.Linear(64, 5))
    groups = [
        {"params": embedding.parameters() + head[0].parameters()},
        {"params": head[2].parameters(), "weight_decay": 0.0},
    ]
    optimizer = paddle.optimizer.AdamW(
        learning_rate=1e-2, parameters=groups, weight_decay=0.01, grad_clip=nn.ClipGradByGlobalNorm(max_norm)
    )
    if faster:
        use_global_norm_clip(optimizer)
    rng = np.random.default_rng(0)
    for _ in range(5):
        ids = paddle.to_tensor(rng.integers(0, 50, size=(8, 6)))
        loss = (head(embedding(ids).mean(axis=1)) ** 2).mean()
        loss.backward()
        optimizer.step()
        optimizer.clear_grad()
    return optimizer, [p.numpy() for p in embedding.parameters() + head.parameters()]


@pytest.mark.parametrize("max_norm", [1e-3, 1e3], ids=["clipping", "within-limit"])
def test_parameters_after_training_are_bit_identical_to_paddles_clip(max_norm):
    paddles, expected = _train(max_norm, faster=False)
    ours, got = _train(max_norm, faster=True)
    assert type(paddles._grad_clip) is nn.ClipGradByGlobalNorm
    assert all(type(group["grad_clip"]) is GlobalNormClip for group in ours._param_groups)
    for a, b in zip(expected, got):
        np.testing.assert_array_equal(a, b)
    if max_norm < 1:
        unclipped = _train(1e6, faster=True)[1]
        assert not np.array_equal(got[-1], unclipped[-1]), "the clipping case must actually clip"


def test_other_clips_are_left_alone():
    layer = nn.Linear(2, 2)
    by_norm = nn.ClipGradByNorm(1.0)
    optimizer = paddle.optimizer.AdamW(parameters=layer.parameters(), grad_clip=by_norm)
    assert use_global_norm_clip(optimizer)._grad_clip is by_norm
    bare = paddle.optimizer.AdamW(parameters=layer.parameters())
    assert use_global_norm_clip(bare)._grad_clip is None


class _OptimizerRecorder(PromptTrainer):
    optimizers = []

    def create_optimizer(self, lr_scheduler=None):
        optimizer = super().create_optimizer(lr_scheduler)
        self.optimizers.append(optimizer)
        return optimizer


def test_fit_clips_with_global_norm_clip_and_releases_gradients(tiny_model_dir, separable_task, monkeypatch):
    train, _, words = separable_task
    monkeypatch.setattr("fewshot.classifier.PromptTrainer", _OptimizerRecorder)
    clf = PromptClassifier(tiny_model_dir, labels=words, template="{'text': 'text_a'}{'mask'}{'mask'}", seed=0)
    clf.fit(train[:8], max_steps=2, per_device_train_batch_size=4, disable_tqdm=True, report_to=[])
    optimizer = _OptimizerRecorder.optimizers[-1]
    assert type(optimizer._grad_clip) is GlobalNormClip and optimizer._grad_clip.clip_norm == 1.0
    assert {type(group["grad_clip"]) for group in optimizer._param_groups} == {GlobalNormClip}
    assert all(p.grad is None for p in clf.model.parameters()), "release_grads frees gradients after each step"


def test_released_and_zero_filled_gradients_train_the_same_numbers(tiny_model_dir, separable_task):
    train, test, words = separable_task
    texts = [e.text_a for e in test[:6]]
    probabilities = []
    for release in (True, False):
        clf = PromptClassifier(tiny_model_dir, labels=words, template="{'text': 'text_a'}{'mask'}{'mask'}", seed=0)
        clf.fit(train[:16], max_steps=4, per_device_train_batch_size=4, disable_tqdm=True, report_to=[],
                release_grads=release, max_grad_norm=0.05)
        probabilities.append(clf.predict_proba(texts))
    np.testing.assert_array_equal(probabilities[0], probabilities[1])
