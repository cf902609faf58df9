"""Comparing checkpoints and methods on one task: train each with the same settings and seeds, score with ``evaluate``.

``runs`` trains and scores (every checkpoint × method × seed, overall and per group/domain),
``checkpoints`` names checkpoints and reads their pretraining step, ``tables`` writes the Markdown
and JSON tables of ``fewshot-compare``.
"""
