"""Task kinds — single-label, multi-label, hierarchical — behind one ``Task`` interface (no Paddle).

>>> label_words, task = build_task("label.txt", multi_label=True)
>>> task.decode(task.activate(logits))
[['盗窃'], []]
"""

from .base import TASKS, Task, ThresholdTask, sigmoid, softmax, task_from_config
from .build import LabelsArg, build_task, resolve_label_words
from .hierarchy import (
    DEFAULT_PATH_DELIMITER,
    HierarchicalTask,
    Hierarchy,
    hierarchy_from_labels,
    hierarchy_metrics,
    read_hierarchy,
)
from .metrics import classification_metrics, multilabel_metrics
from .multi_label import DEFAULT_LABEL_DELIMITER, MultiLabelTask
from .single_label import SingleLabelTask
from .thresholds import DEFAULT_THRESHOLD, apply_thresholds, check_thresholds, tune_thresholds

__all__ = [
    "DEFAULT_LABEL_DELIMITER", "DEFAULT_PATH_DELIMITER", "DEFAULT_THRESHOLD", "HierarchicalTask", "Hierarchy",
    "LabelsArg", "MultiLabelTask", "SingleLabelTask", "TASKS", "Task", "ThresholdTask", "apply_thresholds",
    "build_task", "check_thresholds", "classification_metrics", "hierarchy_from_labels", "hierarchy_metrics",
    "multilabel_metrics", "read_hierarchy", "resolve_label_words", "sigmoid", "softmax", "task_from_config",
    "tune_thresholds",
]
