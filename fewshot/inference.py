"""Where ``OnnxPredictor`` lived before the runtime became its own package; kept so that
``from fewshot.inference import OnnxPredictor`` keeps working. See :mod:`fewshot.runtime`."""

from .runtime import OnnxPredictor, PredictSummary, predict_file

__all__ = ["OnnxPredictor", "PredictSummary", "predict_file"]
