"""Likely mislabelled rows: out-of-fold probabilities from k-fold training, ranked by confident learning.

Every labelled row gets probabilities from a classifier that never saw it: the rows are split into
``folds`` parts, and for each part a fresh classifier (``build()``, e.g. ``clf.untrained_copy``) is
trained on the others and predicts it. ``cleanlab.filter.find_label_issues`` (Northcutt et al.,
confident learning) then flags the rows whose given label the out-of-fold probabilities contradict,
and ``cleanlab``'s label quality score (the out-of-fold probability of the given label) ranks them,
worst first::

    line  text                                   given       suggested     score
    134   排爆专家的秘密武器：“以爆制爆”射孔弹   news_story  news_culture  0.0078

What a "class" is comes from the task: a single-label row's label; a hierarchical row's whole path
(the node it ends at, with the decoder's path probabilities, see ``Task.class_distribution``) —
so a row whose leaf is wrong under the right parent is flagged too; a multi-label row's label set
(cleanlab's multi-label mode: each label's own probability).

cleanlab is an optional dependency (``pip install "fewshot[analysis]"``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Sequence

import numpy as np

from ..data import Example
from ..errors import FewshotError
from ..tasks import Task

DEFAULT_FOLDS = 3
"""Three trainings on two thirds of the rows each: what a 2-core CPU affords for a few hundred rows."""


@dataclass
class LabelIssue:
    """One row: ``index`` in the data, its file ``line`` (None for in-memory rows), the given and suggested
    label, ``score`` — cleanlab's label quality, low is suspicious (0..1) — and whether cleanlab flags it."""

    index: int
    line: Optional[int]
    text_a: str
    text_b: Optional[str]
    given: Any
    suggested: Any
    score: float
    flagged: bool = True
    fold_accuracy: Optional[float] = None
    """Held-out accuracy of the fold model that scored this row: a flag from a weak fold means little."""


@dataclass
class OutOfFold:
    """Out-of-fold ``probs`` ``[n, labels]`` of ``task``, the ``fold`` that held out each row, and each
    fold model's held-out accuracy (``fold_accuracy[k]``; exact match for multi-label and hierarchical rows)."""

    probs: np.ndarray
    task: Task
    fold: np.ndarray
    fold_accuracy: List[float]

    def row_accuracy(self) -> List[float]:
        """The held-out accuracy of the fold of each row."""
        return [self.fold_accuracy[k] for k in self.fold]


def _cleanlab() -> Any:
    try:
        import cleanlab.filter
        import cleanlab.multilabel_classification
        import cleanlab.multilabel_classification.filter
        import cleanlab.rank
    except ImportError:
        raise FewshotError('label issues need cleanlab: pip install "fewshot[analysis]"') from None
    return cleanlab


def fold_indices(given: Sequence[Any], folds: int, split_seed: int) -> List[np.ndarray]:
    """The held-out row indices of each fold: stratified by class where rows have one class, else plain
    shuffled folds (multi-label rows)."""
    from sklearn.model_selection import KFold, StratifiedKFold

    if not 2 <= folds <= len(given):
        raise FewshotError(f"label issues: folds must be between 2 and the {len(given)} rows, got {folds}")
    rows = np.arange(len(given))
    if given and isinstance(given[0], list):
        splits = KFold(folds, shuffle=True, random_state=split_seed).split(rows)
    else:
        classes = np.asarray(given)
        counts = np.bincount(classes)
        splitter = StratifiedKFold if counts[counts > 0].min() >= folds else KFold
        splits = splitter(folds, shuffle=True, random_state=split_seed).split(rows, classes)
    return [held_out for _, held_out in splits]


def out_of_fold_probabilities(
    build: Callable[[], Any], examples: Sequence[Example], folds: int = DEFAULT_FOLDS, split_seed: int = 0,
    batch_size: int = 32, **fit_args: Any,
) -> OutOfFold:
    """``[n, labels]`` probabilities, each row from the fold classifier that did not train on it, the
    task they belong to and each fold's held-out accuracy. ``build()`` returns a fresh untrained
    ``PromptClassifier``; ``fit_args`` go to each ``fit`` (``seed`` among them seeds training);
    ``split_seed`` shuffles the folds."""
    examples = list(examples)
    first = build()
    given = first.task.given_classes([e.label for e in examples])
    out = np.zeros((len(examples), len(first.labels)), dtype="float32")
    fold = np.zeros(len(examples), dtype=int)
    accuracy: List[float] = []
    for k, held_out in enumerate(fold_indices(given, folds, split_seed)):
        clf = first if k == 0 else build()
        keep = np.setdiff1d(np.arange(len(examples)), held_out)
        clf.fit([examples[i] for i in keep], **fit_args)
        out[held_out] = clf.predict_proba([examples[i] for i in held_out], batch_size=batch_size)
        fold[held_out] = k
        decoded = first.task.decode(out[held_out])
        accuracy.append(float(np.mean([_same(d, examples[i].label) for d, i in zip(decoded, held_out)])))
    return OutOfFold(out, first.task, fold, accuracy)


def _same(predicted: Any, gold: Any) -> bool:
    """A prediction equals the gold label (a label set compared as a set)."""
    return (sorted(predicted) if isinstance(predicted, list) else predicted) == (
        sorted(gold) if isinstance(gold, list) else gold)


def rank_label_issues(
    task: Task, examples: Sequence[Example], probs: np.ndarray, include_unflagged: bool = False,
    fold_accuracy: Optional[Sequence[float]] = None,
) -> List[LabelIssue]:
    """The rows cleanlab flags given out-of-fold ``probs``, lowest label quality first; with
    ``include_unflagged`` every other row follows, in the same order. ``fold_accuracy`` (per row,
    :meth:`OutOfFold.row_accuracy`) is kept with each issue."""
    cleanlab = _cleanlab()
    gold = [e.label for e in examples]
    given = task.given_classes(gold)
    distribution = task.class_distribution(probs)
    if task.exclusive:
        labels, pred = np.asarray(given), _clip_rows(distribution)
        flagged = cleanlab.filter.find_label_issues(labels, pred, filter_by="prune_by_noise_rate", n_jobs=1)
        scores = cleanlab.rank.get_label_quality_scores(labels, pred)
    else:
        pred = np.clip(distribution, 1e-6, 1 - 1e-6)
        flagged = cleanlab.multilabel_classification.filter.find_label_issues(
            given, pred, filter_by="prune_by_noise_rate", n_jobs=1)
        scores = cleanlab.multilabel_classification.get_label_quality_scores(given, pred)
    suggested = task.decode(probs)
    order = sorted(range(len(examples)), key=lambda i: (not flagged[i], scores[i], i))
    accuracy = list(fold_accuracy) if fold_accuracy is not None else [None] * len(examples)
    return [LabelIssue(i, examples[i].line, examples[i].text_a, examples[i].text_b, gold[i], suggested[i],
                       float(scores[i]), bool(flagged[i]), accuracy[i])
            for i in order if include_unflagged or flagged[i]]


def _clip_rows(distribution: np.ndarray) -> np.ndarray:
    """Rows kept strictly positive and summing to 1 (cleanlab checks both)."""
    clipped = np.clip(distribution, 1e-9, None)
    return clipped / clipped.sum(axis=1, keepdims=True)


def find_label_issues(
    build: Callable[[], Any], examples: Sequence[Example], folds: int = DEFAULT_FOLDS, split_seed: int = 0,
    batch_size: int = 32, **fit_args: Any,
) -> List[LabelIssue]:
    """k-fold out-of-fold probabilities, then :func:`rank_label_issues`.

    >>> issues = find_label_issues(clf.untrained_copy, read_examples("train.txt", labels=clf.task.check),
    ...                            folds=3, max_steps=100, learning_rate=2e-4)
    >>> issues[0].line, issues[0].given, issues[0].suggested
    (134, 'news_story', 'news_culture')
    """
    oof = out_of_fold_probabilities(build, examples, folds, split_seed, batch_size, **fit_args)
    return rank_label_issues(oof.task, list(examples), oof.probs, fold_accuracy=oof.row_accuracy())


def issue_rows(issues: Sequence[LabelIssue], task_label: Callable[[Any], str]) -> List[Dict[str, Any]]:
    """The ranked file's rows: ``line`` (1-based file line, else the 0-based row index), ``text``, ``given``,
    ``suggested`` (labels as data rows write them, via ``task_label``), ``score``, ``flagged`` and
    ``fold_accuracy`` (the held-out accuracy of the fold model that scored the row; empty when unknown)."""
    return [
        {"line": issue.line if issue.line is not None else issue.index,
         "text": issue.text_a if issue.text_b is None else f"{issue.text_a} / {issue.text_b}",
         "given": task_label(issue.given), "suggested": task_label(issue.suggested), "score": issue.score,
         "flagged": "yes" if issue.flagged else "no",
         "fold_accuracy": "" if issue.fold_accuracy is None else round(issue.fold_accuracy, 4)}
        for issue in issues
    ]
