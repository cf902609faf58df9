"""R-Drop and RGL losses against direct reference computations."""

import numpy as np
import paddle
import paddle.nn.functional as F

from fewshot.training.losses import cross_entropy, rdrop_loss, rgl_loss


def _softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def test_rdrop_is_symmetric_kl():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(4, 5)).astype("float32"), rng.normal(size=(4, 5)).astype("float32")
    p, q = _softmax(a), _softmax(b)
    expected = 0.5 * ((p * np.log(p / q)).sum(-1) + (q * np.log(q / p)).sum(-1)).mean()
    got = float(rdrop_loss(paddle.to_tensor(a), paddle.to_tensor(b)))
    assert abs(got - expected) < 1e-5
    assert abs(got - float(rdrop_loss(paddle.to_tensor(b), paddle.to_tensor(a)))) < 1e-6
    assert float(rdrop_loss(paddle.to_tensor(a), paddle.to_tensor(a))) < 1e-7


def test_rgl_matches_pairwise_loop():
    """The batched RGL equals PaddleNLP's definition computed pair by pair."""
    rng = np.random.default_rng(1)
    emb = rng.normal(size=(5, 6)).astype("float32")
    labels = np.array([0, 1, 0, 2, 1])
    total = 0.0
    for i in range(5):
        for j in range(5):
            if i == j:
                continue
            s = emb[i] @ emb[j] / np.linalg.norm(emb[i]) / np.linalg.norm(emb[j])
            logits = np.array([50 * (1 - s), 50 * (1 + s)])
            target = int(labels[i] == labels[j])
            total += -np.log(_softmax(logits)[target])
    expected = total / 20 / 100
    got = float(rgl_loss(paddle.to_tensor(emb), paddle.to_tensor(labels)))
    assert abs(got - expected) < 1e-4 * max(1.0, expected)


def test_rgl_of_single_example_is_zero():
    assert float(rgl_loss(paddle.ones([1, 4]), paddle.to_tensor([0]))) == 0.0


def test_cross_entropy_matches_paddle():
    logits = paddle.to_tensor([[2.0, 0.5], [0.1, 1.0]])
    labels = paddle.to_tensor([0, 1])
    assert abs(float(cross_entropy(logits, labels)) - float(F.cross_entropy(logits, labels))) < 1e-6
