"""Baselines in the same code base and budget as the prompt methods: embeddings + logistic regression, SetFit.

>>> from fewshot.baselines import EmbeddingClassifier, BASELINE_METHODS
>>> sorted(BASELINE_METHODS)
['embed-lr', 'setfit']
"""

from .embedding import EmbeddingClassifier

BASELINE_METHODS = {"embed-lr": {"contrastive_steps": 0}, "setfit": {"contrastive_steps": 100}}
"""Each baseline method's settings of :class:`EmbeddingClassifier` (SetFit: 100 contrastive steps by default)."""

__all__ = ["BASELINE_METHODS", "EmbeddingClassifier"]
