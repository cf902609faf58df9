"""From what the user gives (a label file, a mapping, a list; the task flags) to label words and a Task.

>>> label_words, task = build_task({"news_car": "汽车", "news_tech": "科技"})
>>> label_words, type(task).__name__
({'news_car': ['汽车'], 'news_tech': ['科技']}, 'SingleLabelTask')
"""

from __future__ import annotations

import os
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

from ..data.labels import label_words_from_mapping, read_label_words
from ..errors import FewshotError
from .base import Task
from .hierarchy import DEFAULT_PATH_DELIMITER, HierarchicalTask, hierarchy_from_labels, read_hierarchy
from .multi_label import DEFAULT_LABEL_DELIMITER, MultiLabelTask
from .single_label import SingleLabelTask

LabelsArg = Union[str, "os.PathLike[str]", Mapping[str, Any], Sequence[str]]


def resolve_label_words(labels: LabelsArg) -> Dict[str, List[str]]:
    """Label words from a label file path, a ``{label: word(s)}`` mapping or a list of label names."""
    if isinstance(labels, (str, os.PathLike)):
        return read_label_words(labels)
    if isinstance(labels, Mapping):
        return label_words_from_mapping(labels)
    return label_words_from_mapping({label: [] for label in labels})


def build_task(
    labels: LabelsArg,
    multi_label: bool = False,
    hierarchical: bool = False,
    label_delimiter: str = DEFAULT_LABEL_DELIMITER,
    path_delimiter: str = DEFAULT_PATH_DELIMITER,
    thresholds: Optional[Any] = None,
    complete_paths: bool = False,
) -> Tuple[Dict[str, List[str]], Task]:
    """Label words and the task object for the constructor's sugar flags.

    Hierarchical labels are node paths (``质量##混凝土``), read with ``read_hierarchy`` from a file or
    ``hierarchy_from_labels`` from a mapping or list; a node without words uses its last segment.
    """
    if multi_label and hierarchical:
        raise FewshotError("choose multi_label=True or hierarchical=True, not both")
    if complete_paths and not hierarchical:
        raise FewshotError("complete_paths applies to hierarchical classifiers only")
    if hierarchical:
        if isinstance(labels, (str, os.PathLike)):
            hierarchy = read_hierarchy(labels, path_delimiter)
        else:
            hierarchy = hierarchy_from_labels(labels, path_delimiter)
        return hierarchy.words, HierarchicalTask(hierarchy, thresholds, complete_paths)
    label_words = resolve_label_words(labels)
    if multi_label:
        return label_words, MultiLabelTask(list(label_words), label_delimiter, thresholds)
    task = SingleLabelTask(list(label_words))
    if thresholds is not None:
        task.require("thresholds", "thresholds")
    return label_words, task
