"""Bringing models trained elsewhere over as fewshot classifiers (PaddleNLP's few-shot checkpoints)."""
