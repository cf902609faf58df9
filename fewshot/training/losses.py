"""Training losses, all batched tensor operations: each task activation's loss and R-Drop form, and RGL.

``OBJECTIVES[task.activation]`` is what the trainer uses: cross-entropy and symmetric-KL R-Drop
for softmax tasks, binary cross-entropy and Bernoulli R-Drop for sigmoid tasks. Both losses take
hard targets (class ids; 0/1 rows) or soft ones (label distributions; per-label probabilities),
which is what distillation from an ensemble trains on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Dict

import paddle
import paddle.nn.functional as F


def cross_entropy(logits: paddle.Tensor, labels: paddle.Tensor) -> paddle.Tensor:
    """Mean cross-entropy of ``[batch, classes]`` logits against class ids ``[batch]`` or target
    distributions ``[batch, classes]`` (soft labels).

    Against a distribution ``q`` the loss is ``-sum(q * log softmax(logits))``: the KL divergence
    from ``q`` plus ``q``'s entropy, a constant, so the gradients are those of the KL. A one-hot
    row gives the loss of its class id.
    """
    if labels.ndim == logits.ndim:
        # Not F.log_softmax: Paddle's CPU kernel clips it at -64.
        log_probs = logits - paddle.logsumexp(logits, axis=-1, keepdim=True)
        return -(labels.astype(logits.dtype) * log_probs).sum(axis=-1).mean()
    return F.cross_entropy(logits, labels.reshape([-1, 1]).astype("int64"))


def rdrop_loss(logits_a: paddle.Tensor, logits_b: paddle.Tensor) -> paddle.Tensor:
    """Symmetric KL divergence between two dropout passes over the same batch (R-Drop)."""
    logp_a = F.log_softmax(logits_a, axis=-1)
    logp_b = F.log_softmax(logits_b, axis=-1)
    kl_ab = (logp_a.exp() * (logp_a - logp_b)).sum(axis=-1)
    kl_ba = (logp_b.exp() * (logp_b - logp_a)).sum(axis=-1)
    return 0.5 * (kl_ab + kl_ba).mean()


def rgl_loss(embeddings: paddle.Tensor, labels: paddle.Tensor, scale: float = 50.0) -> paddle.Tensor:
    """Label-consistency loss over all ordered pairs ``i != j`` of the batch (RGL, Wang et al. 2022).

    Each pair's cosine similarity ``s`` gives two logits ``scale * (1 - s)`` ("different") and
    ``scale * (1 + s)`` ("same"); the target is whether the two labels agree. Computed on the
    ``[batch, batch]`` similarity matrix at once, not pair by pair. Divided by 100 as in PaddleNLP
    so that ``alpha_rgl`` values carry over. ``labels`` are class ids, or distributions
    ``[batch, classes]`` whose most probable classes are compared.
    """
    batch = embeddings.shape[0]
    if batch < 2:
        return paddle.zeros([], dtype=embeddings.dtype)
    unit = F.normalize(embeddings, axis=-1)
    sim = paddle.matmul(unit, unit, transpose_y=True)
    labels = labels.argmax(axis=-1) if labels.ndim == 2 else labels.reshape([-1])
    same = (labels.unsqueeze(0) == labels.unsqueeze(1)).astype(embeddings.dtype)
    # Two-way cross-entropy written with softplus: Paddle's log_softmax/cross_entropy clip at -64.
    margin = 2 * scale * sim
    losses = same * F.softplus(-margin) + (1 - same) * F.softplus(margin)
    off_diagonal = 1 - paddle.eye(batch, dtype=losses.dtype)
    return (losses * off_diagonal).sum() / (batch * (batch - 1)) / 100.0


def bce_loss(logits: paddle.Tensor, targets: paddle.Tensor) -> paddle.Tensor:
    """Mean binary cross-entropy of ``[batch, labels]`` logits against 0/1 targets or per-label
    probabilities (soft targets)."""
    return F.binary_cross_entropy_with_logits(logits, targets.astype(logits.dtype))


def bernoulli_rdrop_loss(logits_a: paddle.Tensor, logits_b: paddle.Tensor) -> paddle.Tensor:
    """R-Drop for independent sigmoids: symmetric KL between the two passes' Bernoulli distributions."""
    logp_a, logq_a = F.log_sigmoid(logits_a), F.log_sigmoid(-logits_a)
    logp_b, logq_b = F.log_sigmoid(logits_b), F.log_sigmoid(-logits_b)
    diff = (logp_a.exp() - logp_b.exp()) * (logp_a - logp_b) + (logq_a.exp() - logq_b.exp()) * (logq_a - logq_b)
    return 0.5 * diff.sum(axis=-1).mean()


def pool_window_logits(logits: paddle.Tensor, weights: paddle.Tensor, activation: str) -> paddle.Tensor:
    """Logits of texts from the logits of their windows, ``weights`` ``[texts, windows]`` holding ``1/k``
    for a text's ``k`` windows: the mean of the windows' log-probabilities (softmax) or log odds
    (sigmoid) — the differentiable form of ``fewshot.tasks.pooling``'s ``logprob_mean``, so that a
    long text trains as it is predicted. ``[windows, labels]`` → ``[texts, labels]``."""
    if activation == "softmax":
        logits = logits - paddle.logsumexp(logits, axis=-1, keepdim=True)
    return paddle.matmul(weights.astype(logits.dtype), logits)


@dataclass(frozen=True)
class Objective:
    """A task activation's training loss and the R-Drop consistency loss between two dropout passes."""

    loss: Callable[[paddle.Tensor, paddle.Tensor], paddle.Tensor]
    rdrop: Callable[[paddle.Tensor, paddle.Tensor], paddle.Tensor]


OBJECTIVES: Dict[str, Objective] = {
    "softmax": Objective(cross_entropy, rdrop_loss),
    "sigmoid": Objective(bce_loss, bernoulli_rdrop_loss),
}
