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


def test_soft_cross_entropy_of_one_hot_rows_is_the_class_id_loss():
    rng = np.random.default_rng(2)
    logits = paddle.to_tensor(rng.normal(size=(4, 3)).astype("float32"))
    ids = paddle.to_tensor([2, 0, 1, 1])
    one_hot = paddle.to_tensor(np.eye(3, dtype="float32")[[2, 0, 1, 1]])
    assert abs(float(cross_entropy(logits, one_hot)) - float(cross_entropy(logits, ids))) < 1e-5


def test_soft_cross_entropy_has_the_gradient_of_the_kl_divergence():
    rng = np.random.default_rng(3)
    raw = rng.normal(size=(5, 4)).astype("float32")
    target = _softmax(rng.normal(size=(5, 4)))
    logits = paddle.to_tensor(raw, stop_gradient=False)
    loss = cross_entropy(logits, paddle.to_tensor(target.astype("float32")))
    loss.backward()
    p = _softmax(raw)
    expected_loss = -(target * np.log(p)).sum(-1).mean()
    kl = (target * np.log(target / p)).sum(-1).mean()
    entropy = -(target * np.log(target)).sum(-1).mean()
    assert abs(float(loss) - expected_loss) < 1e-5 and abs(float(loss) - (kl + entropy)) < 1e-5
    np.testing.assert_allclose(logits.grad.numpy(), (p - target) / 5, atol=1e-6)


def test_rgl_reads_distributions_by_their_most_probable_class():
    rng = np.random.default_rng(4)
    emb = paddle.to_tensor(rng.normal(size=(4, 6)).astype("float32"))
    ids = np.array([0, 1, 0, 2])
    soft = np.full((4, 3), 0.1, dtype="float32")
    soft[np.arange(4), ids] = 0.8
    assert abs(float(rgl_loss(emb, paddle.to_tensor(soft))) - float(rgl_loss(emb, paddle.to_tensor(ids)))) < 1e-6
