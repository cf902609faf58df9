"""Hierarchical labels: paths such as ``质量##混凝土##养护``, their node set, consistent decoding, metrics.

Every prefix of a path is a node (``质量``, ``质量##混凝土``, ``质量##混凝土##养护``). The model
gives each node an independent sigmoid logit (multi-label over all nodes, as PaddleNLP does): a
text's training target is 1 for every node on its gold path and 0 elsewhere. Because the sigmoids
are independent, their thresholded set can be inconsistent (a child without its parent); decoding
therefore picks one whole path: the one maximising the sum of its nodes' logits shifted by their
thresholds' logits. Under independent node probabilities that path is the most probable label set
that is a path (``P(set) ∝ Π_{n ∈ set} p_n / (1 - p_n)``), and a path goes one level deeper exactly
when the child's probability is above its threshold.

A label file for a hierarchy lists paths, one per line, optionally with words for the verbalizer::

    质量##混凝土##养护==养护
    质量##混凝土##浇筑
    进度==工期

Ancestors not listed are added; a node without words uses its own name (the last segment).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Sequence, Union

import numpy as np

from ..data.fields import delimiter_hint
from ..data.labels import label_lines
from ..data.lines import PathLike
from ..errors import DataError, LabelFileError
from .base import ThresholdTask, softmax
from .metrics import per_class_table

DEFAULT_PATH_DELIMITER = "##"
_PROB_CLIP = 1e-7


@dataclass
class Hierarchy:
    """The nodes of a label hierarchy, parents before children, and their label words.

    ``nodes[i]`` is a full path string; ``parent[i]`` is the index of its parent (-1 at the top);
    ``depth[i]`` is 1 for top-level nodes.
    """

    nodes: List[str]
    words: Dict[str, List[str]]
    delimiter: str = DEFAULT_PATH_DELIMITER
    parent: List[int] = field(init=False)
    depth: List[int] = field(init=False)

    def __post_init__(self) -> None:
        self.index = {node: i for i, node in enumerate(self.nodes)}
        self.parent, self.depth = [], []
        for node in self.nodes:
            segments = self.split(node)
            parent = self.delimiter.join(segments[:-1])
            if parent and (parent not in self.index or self.index[parent] >= self.index[node]):
                raise LabelFileError(f"hierarchy: node '{node}' must come after its parent '{parent}'")
            self.parent.append(self.index[parent] if parent else -1)
            self.depth.append(len(segments))
        self.children = {i: [j for j, p in enumerate(self.parent) if p == i] for i in range(-1, len(self.nodes))}

    def split(self, path: str) -> List[str]:
        """``"质量##混凝土"`` → ``["质量", "混凝土"]`` (segments stripped)."""
        return [segment.strip() for segment in path.split(self.delimiter)]

    def is_leaf(self, node: int) -> bool:
        return not self.children[node]

    def path_nodes(self, path: str) -> List[int]:
        """Node indices from the top down to ``path``: ``"a##b"`` → ``[index("a"), index("a##b")]``."""
        segments = self.split(path)
        return [self.index[self.delimiter.join(segments[: k + 1])] for k in range(len(segments))]

    def check_path(self, where: str, path: str) -> str:
        """Validate a gold path from a data row; returns it normalised (segments stripped).

        Raises ``DataError`` prefixed by ``where``: an empty segment, a segment that is not a child of
        the previous one (naming the known children), or a path written with another delimiter.
        """
        segments = self.split(path)
        for k, segment in enumerate(segments):
            prefix = self.delimiter.join(segments[:k])
            if not segment:
                raise DataError(f"{where}: empty level {k + 1} in path '{path}' (levels are separated by {self.delimiter!r})")
            node = self.delimiter.join(segments[: k + 1])
            if node not in self.index:
                raise DataError(f"{where}: {self._unknown_node_message(path, segments, k, prefix)}")
        return self.delimiter.join(segments)

    def _unknown_node_message(self, path: str, segments: List[str], k: int, prefix: str) -> str:
        siblings = [self.split(self.nodes[c])[-1] for c in self.children[self.index[prefix] if prefix else -1]]
        prefix_parts = [prefix] if prefix else []
        hint = delimiter_hint(segments[k], lambda parts: self.delimiter.join(prefix_parts + list(parts)) in self.index,
                              self.delimiter, "levels are separated by")
        where = f"under '{prefix}'" if prefix else "at the top level"
        shown = ", ".join(siblings[:10]) + (", ..." if len(siblings) > 10 else "")
        return f"unknown node '{segments[k]}' {where} in path '{path}'{hint} (known: {shown})"

    def target(self, path: str) -> List[float]:
        """Training target over all nodes: 1 on the path's nodes (ancestors included), else 0."""
        out = np.zeros(len(self.nodes), dtype="float32")
        out[self.path_nodes(path)] = 1.0
        return out.tolist()

    def ancestor_matrix(self) -> np.ndarray:
        """``A[n, m] = 1`` when node ``m`` is ``n`` or one of its ancestors."""
        matrix = np.zeros([len(self.nodes)] * 2, dtype="float64")
        for n in range(len(self.nodes)):
            m = n
            while m >= 0:
                matrix[n, m] = 1.0
                m = self.parent[m]
        return matrix

    def decode(self, probs: np.ndarray, thresholds: Any = 0.5, complete_paths: bool = False) -> List[str]:
        """The most probable consistent path of each row of node probabilities ``[n, nodes]``.

        A path's score is the sum over its nodes of ``logit(p) - logit(threshold)``; the best path
        may end at any node, or only at leaves with ``complete_paths=True``. Two top-level nodes
        ``a`` (0.9) and ``b`` (0.6), ``a``'s child ``a##x`` (0.3), ``b``'s child ``b##y`` (0.95):
        ``a`` alone scores 2.20, ``a##x`` 1.35, ``b##y`` 0.41 + 2.94 = 3.35 → ``"b##y"``.
        """
        return [self.nodes[i] for i in self.path_scores(probs, thresholds, complete_paths).argmax(axis=1)]

    def path_scores(self, probs: np.ndarray, thresholds: Any = 0.5, complete_paths: bool = False) -> np.ndarray:
        """``[n, nodes]``: the score of the path ending at each node (``-inf`` for inner nodes with
        ``complete_paths``); :meth:`decode` takes the argmax, and their softmax is the probability of
        each path among the paths under the independent-node model."""
        probs = np.clip(np.asarray(probs, dtype="float64"), _PROB_CLIP, 1 - _PROB_CLIP)
        thresholds = np.broadcast_to(np.asarray(thresholds, dtype="float64"), (len(self.nodes),))
        scores = np.log(probs) - np.log1p(-probs) - (np.log(thresholds) - np.log1p(-thresholds))
        totals = scores @ self.ancestor_matrix().T
        if complete_paths:
            leaves = np.array([self.is_leaf(n) for n in range(len(self.nodes))])
            totals = np.where(leaves, totals, -np.inf)
        return totals

    def config(self) -> Dict[str, Any]:
        """JSON-ready description, read back by :meth:`from_config`."""
        return {"delimiter": self.delimiter, "nodes": list(self.nodes), "words": self.words}

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> "Hierarchy":
        return cls(list(config["nodes"]), {k: list(v) for k, v in config["words"].items()}, config["delimiter"])


def _add_path(where: str, path: str, delimiter: str, nodes: Dict[str, List[str]]) -> str:
    """Add a path and its missing ancestors to ``nodes`` (insertion order: parents first)."""
    segments = [segment.strip() for segment in path.split(delimiter)]
    for k, segment in enumerate(segments):
        if not segment:
            raise LabelFileError(f"{where}: empty level {k + 1} in path '{path}' (levels are separated by {delimiter!r})")
        nodes.setdefault(delimiter.join(segments[: k + 1]), [])
    return delimiter.join(segments)


def _fill_words(nodes: Dict[str, List[str]], delimiter: str) -> Dict[str, List[str]]:
    """Nodes without words get their own name, the last segment: ``"质量##混凝土"`` → ``["混凝土"]``."""
    return {node: words or [node.split(delimiter)[-1].strip()] for node, words in nodes.items()}


def read_hierarchy(path: PathLike, delimiter: str = DEFAULT_PATH_DELIMITER) -> Hierarchy:
    """Read a hierarchy label file: ``path`` or ``path==word`` lines (see the module docstring).

    Errors name the file and line: an empty level (``质量####养护``), an empty word after ``==``.
    """
    if not delimiter:
        raise LabelFileError("path_delimiter must be a non-empty string")
    nodes: Dict[str, List[str]] = {}
    for number, label, word in label_lines(path, what="path"):
        node = _add_path(f"{path} line {number}", label, delimiter, nodes)
        if word and word not in nodes[node]:
            nodes[node].append(word)
    if not nodes:
        raise LabelFileError(f"{path}: no paths (the file is empty or has only blank lines)")
    return Hierarchy(list(nodes), _fill_words(nodes, delimiter), delimiter)


def hierarchy_from_labels(labels: Union[Mapping[str, Any], Sequence[str]], delimiter: str = DEFAULT_PATH_DELIMITER) -> Hierarchy:
    """A hierarchy from ``{path: word(s) or None}`` or a list of paths (ancestors added)."""
    if not delimiter:
        raise LabelFileError("path_delimiter must be a non-empty string")
    items = labels.items() if isinstance(labels, Mapping) else [(label, None) for label in labels]
    nodes: Dict[str, List[str]] = {}
    for raw_path, raw_words in items:
        if not isinstance(raw_path, str):
            raise LabelFileError(f"hierarchy: path must be a string, found {type(raw_path).__name__}")
        node = _add_path(f"hierarchy path {raw_path!r}", raw_path, delimiter, nodes)
        words = [raw_words] if isinstance(raw_words, str) else list(raw_words or [])
        nodes[node].extend(w.strip() for w in words if w.strip() and w.strip() not in nodes[node])
    if not nodes:
        raise LabelFileError("hierarchy: no paths given")
    return Hierarchy(list(nodes), _fill_words(nodes, delimiter), delimiter)


def _segments(path: Optional[str], delimiter: str) -> List[str]:
    return [] if not path else [s.strip() for s in path.split(delimiter)]


def hierarchy_metrics(
    predicted: Sequence[str],
    gold: Sequence[str],
    delimiter: str = DEFAULT_PATH_DELIMITER,
    hierarchy: Optional[Hierarchy] = None,
    report: bool = False,
) -> Dict[str, Any]:
    """Path metrics of predicted vs gold paths (strings such as ``"质量##混凝土##养护"``).

    - ``level_k_accuracy``: among rows whose gold path has a level ``k``, the share whose prediction
      has the same first ``k`` levels;
    - ``exact_match``: prediction equals the gold path (same depth);
    - ``tolerant_accuracy``: prediction agrees with the gold path at every level the gold defines
      (a deeper prediction below a correct shallower gold path counts);
    - with ``hierarchy``: ``node_micro_f1`` / ``node_macro_f1`` over all nodes, each path standing for
      its set of nodes (ancestors included), as PaddleNLP reports for hierarchical tasks; ``report=True``
      adds scikit-learn's per-node precision/recall/F1 under ``per_node``.
    """
    if len(predicted) != len(gold):
        raise ValueError(f"{len(predicted)} predictions for {len(gold)} gold paths")
    if not gold:
        raise ValueError("no rows to evaluate")
    pred_segments = [_segments(p, delimiter) for p in predicted]
    gold_segments = [_segments(g, delimiter) for g in gold]
    depth = max(len(g) for g in gold_segments)
    metrics: Dict[str, Any] = {}
    for k in range(1, depth + 1):
        rows = [(p, g) for p, g in zip(pred_segments, gold_segments) if len(g) >= k]
        metrics[f"level_{k}_accuracy"] = sum(p[:k] == g[:k] for p, g in rows) / len(rows)
    metrics["exact_match"] = sum(p == g for p, g in zip(pred_segments, gold_segments)) / len(gold)
    metrics["tolerant_accuracy"] = sum(p[: len(g)] == g for p, g in zip(pred_segments, gold_segments)) / len(gold)
    if hierarchy is not None:
        metrics.update(_node_f1(hierarchy, predicted, gold, report))
    return metrics


def _node_f1(hierarchy: Hierarchy, predicted: Sequence[str], gold: Sequence[str], report: bool) -> Dict[str, Any]:
    from sklearn.metrics import classification_report, f1_score

    pred = np.array([hierarchy.target(p) for p in predicted], dtype="int64")
    true = np.array([hierarchy.target(g) for g in gold], dtype="int64")
    metrics: Dict[str, Any] = {
        "node_micro_f1": float(f1_score(true, pred, average="micro", zero_division=0)),
        "node_macro_f1": float(f1_score(true, pred, average="macro", zero_division=0)),
    }
    if report:
        metrics["per_node"] = per_class_table(classification_report(
            true, pred, target_names=hierarchy.nodes, output_dict=True, zero_division=0
        ), hierarchy.nodes)
    return metrics


class HierarchicalTask(ThresholdTask):
    """Node columns, node targets, consistent path decoding and path metrics.

    >>> task = HierarchicalTask(hierarchy_from_labels(["质量##混凝土", "进度"]))
    >>> task.labels
    ['质量', '质量##混凝土', '进度']
    >>> task.target("质量##混凝土")
    [1.0, 1.0, 0.0]
    """

    kind = "hierarchical"
    description = "hierarchical"

    def __init__(self, hierarchy: Hierarchy, thresholds: Optional[Any] = None, complete_paths: bool = False):
        super().__init__(hierarchy.nodes, thresholds)
        self.hierarchy = hierarchy
        self.complete_paths = bool(complete_paths)

    def check(self, where: str, label: str) -> None:
        self.hierarchy.check_path(where, label)

    def gold_matrix(self, gold_labels: Sequence[str]) -> np.ndarray:
        return np.array([self.hierarchy.target(path) for path in gold_labels], dtype="float32").reshape(
            len(gold_labels), len(self.labels)
        )

    def decode(self, probs: np.ndarray) -> List[str]:
        return self.hierarchy.decode(probs, self.thresholds, self.complete_paths)

    def class_distribution(self, probs: np.ndarray) -> np.ndarray:
        """Each node's probability of ending the row's path: the softmax of the decoder's path scores."""
        return softmax(self.hierarchy.path_scores(probs, self.thresholds, self.complete_paths)).astype("float64")

    def given_classes(self, gold_labels: Sequence[str]) -> List[int]:
        """The node each gold path ends at: ``"质量##混凝土"`` → ``index("质量##混凝土")``."""
        return [self.hierarchy.index[self.hierarchy.delimiter.join(self.hierarchy.split(g))] for g in gold_labels]

    def metrics(self, probs: np.ndarray, gold_labels: Sequence[str], report: bool = False) -> Dict[str, Any]:
        gold = [self.hierarchy.delimiter.join(self.hierarchy.split(g)) for g in gold_labels]
        return hierarchy_metrics(self.decode(probs), gold, self.hierarchy.delimiter, self.hierarchy, report)

    def config(self) -> Dict[str, Any]:
        return {
            **super().config(),
            "hierarchy": self.hierarchy.config(),
            "thresholds": self.thresholds.tolist(),
            "complete_paths": self.complete_paths,
        }

    @classmethod
    def from_config(cls, labels: Sequence[str], config: Mapping[str, Any]) -> "HierarchicalTask":
        hierarchy = Hierarchy.from_config(config["hierarchy"])
        if list(labels) != hierarchy.nodes:
            raise LabelFileError("hierarchy: the task's nodes are not the classifier's labels")
        return cls(hierarchy, config.get("thresholds"), config.get("complete_paths", False))
