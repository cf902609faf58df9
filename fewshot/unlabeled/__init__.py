"""Learning from unlabelled text: an ensemble of prompt members, their soft labels, one distilled classifier.

>>> from fewshot.unlabeled import DistillationConfig, distill
>>> result = distill(model, task, label_words, "train.json", texts, "out/", DistillationConfig(patterns=[t1, t2]))
>>> result.classifier.predict("文登区这些公路及危桥将进入封闭施工")
['news_car']

See ``fewshot.unlabeled.distill`` for the phases and the run directory.
"""

from .config import DistillationConfig
from .distill import Distillation, DistillationResult, Member, distill, plan_members
from .soft_labels import class_counts, confident_rows, ensemble_soft_labels

__all__ = [
    "Distillation", "DistillationConfig", "DistillationResult", "Member", "class_counts", "confident_rows", "distill",
    "ensemble_soft_labels", "plan_members",
]
