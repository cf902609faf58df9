"""Train every checkpoint × method with every seed on the same data and score it with ``PromptClassifier.evaluate``.

Each run's test metrics are ``evaluate``'s, on the whole test set (group ``all``) and on the rows
of each group (domain), so every task kind (single-label, multi-label, hierarchical) is scored
exactly as ``evaluate`` scores it elsewhere::

    results = compare_candidates([Candidate("base", "ernie-3.0-base-zh", "prompt")], make_classifier,
                                 train, test, groups=domains, seeds=[0, 1, 2], fit_args={"max_steps": 200})
    results[0].mean("all", "accuracy")   # mean over the seeds
"""

from __future__ import annotations

import gc
import logging
import statistics
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence

from ..classifier import DEFAULT_BATCH_SIZE, PromptClassifier
from ..data import Example, PathLike, is_json_lines, parse_json_object, read_lines
from ..errors import DataError, FewshotError
from .checkpoints import checkpoint_step

logger = logging.getLogger(__name__)

ALL = "all"
"""The group of every test row."""

ClassifierFactory = Callable[[str, str, int], PromptClassifier]
"""``(checkpoint path, method, seed)`` → a new, untrained classifier."""


@dataclass
class Candidate:
    """One row of the comparison: a checkpoint trained with one method."""

    name: str
    path: str
    method: str


@dataclass
class Run:
    """One seed of a candidate: ``metrics[group]`` is ``evaluate``'s dict on that group's test rows."""

    seed: int
    seconds: float
    train_steps: int
    metrics: Dict[str, Dict[str, Any]]
    early_stopping: Optional[Dict[str, Any]] = None


@dataclass
class CandidateResult:
    """A candidate's runs (one per seed) and its pretraining step and held-out perplexity, when known."""

    name: str
    path: str
    method: str
    step: Optional[int]
    eval_perplexity: Optional[float]
    runs: List[Run] = field(default_factory=list)

    def values(self, group: str, key: str) -> List[float]:
        """``key`` of ``group`` in every run that has it."""
        return [float(run.metrics[group][key]) for run in self.runs if key in run.metrics.get(group, {})]

    def mean(self, group: str, key: str) -> Optional[float]:
        """Mean over the seeds of ``key`` on ``group`` (None when no run has it)."""
        values = self.values(group, key)
        return statistics.fmean(values) if values else None

    def std(self, group: str, key: str) -> Optional[float]:
        """Population standard deviation over the seeds (0.0 for one seed, None when no run has it)."""
        values = self.values(group, key)
        return statistics.pstdev(values) if values else None

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)


def read_groups(path: PathLike, group_field: str) -> List[str]:
    """The ``group_field`` value of each non-blank JSON line, in the order ``read_examples`` returns rows."""
    if not is_json_lines(path):
        raise DataError(f"{path}: --group-field needs JSON lines (.json/.jsonl)")
    groups = []
    for number, line in read_lines(path):
        if not line.strip():
            continue
        try:
            row = parse_json_object(line)
        except DataError as exc:
            raise DataError(f"{path} line {number}: {exc}") from None
        value = row.get(group_field)
        if not isinstance(value, (str, int, float)) or isinstance(value, bool) or str(value).strip() == "":
            raise DataError(f"{path} line {number}: no group in '{group_field}'")
        groups.append(str(value).strip())
    return groups


def group_rows(test: Sequence[Example], groups: Optional[Sequence[str]]) -> Dict[str, List[Example]]:
    """``{group: rows}`` in sorted group order, then ``all``: every row."""
    if groups is None:
        return {ALL: list(test)}
    if len(groups) != len(test):
        raise DataError(f"{len(groups)} groups for {len(test)} test rows")
    if ALL in groups:
        raise DataError(f"a group is named '{ALL}', the name of the whole test set; rename it")
    by_group: Dict[str, List[Example]] = {}
    for example, group in zip(test, groups):
        by_group.setdefault(group, []).append(example)
    return {**{g: by_group[g] for g in sorted(by_group)}, ALL: list(test)}


def compare_candidates(
    candidates: Sequence[Candidate],
    make_classifier: ClassifierFactory,
    train: Sequence[Example],
    test: Sequence[Example],
    groups: Optional[Sequence[str]] = None,
    seeds: Sequence[int] = (0,),
    fit_args: Optional[Mapping[str, Any]] = None,
    dev: Optional[Sequence[Example]] = None,
    eval_batch_size: int = DEFAULT_BATCH_SIZE,
) -> List[CandidateResult]:
    """Train each candidate with every seed (``fit(train, eval_data=dev, seed=seed, **fit_args)``) and score it.

    ``dev`` is what early stopping and threshold tuning watch (``fit_args`` say whether they run);
    the test rows are never seen in training.
    """
    if not candidates:
        raise FewshotError("no checkpoints to compare")
    if not seeds:
        raise FewshotError("no seeds given")
    rows = group_rows(test, groups)
    results = []
    for candidate in candidates:
        step, ppl = checkpoint_step(candidate.path)
        result = CandidateResult(candidate.name, candidate.path, candidate.method, step, ppl)
        for seed in seeds:
            run = _train_and_score(candidate, make_classifier, train, dev, rows, seed, dict(fit_args or {}),
                                   eval_batch_size)
            logger.info("%s / %s seed %d: %s (%.0f s)", candidate.name, candidate.method, seed,
                        ", ".join(f"{k} {v:.4f}" for k, v in run.metrics[ALL].items() if isinstance(v, float)),
                        run.seconds)
            result.runs.append(run)
        results.append(result)
    return results


def _train_and_score(
    candidate: Candidate,
    make_classifier: ClassifierFactory,
    train: Sequence[Example],
    dev: Optional[Sequence[Example]],
    rows: Mapping[str, Sequence[Example]],
    seed: int,
    fit_args: Dict[str, Any],
    eval_batch_size: int,
) -> Run:
    start = time.perf_counter()
    clf = make_classifier(candidate.path, candidate.method, seed)
    fitted = clf.fit(list(train), eval_data=list(dev) if dev else None, seed=seed, **fit_args)
    metrics = {group: clf.evaluate(list(examples), batch_size=eval_batch_size) for group, examples in rows.items()}
    run = Run(seed=seed, seconds=time.perf_counter() - start, train_steps=int(fitted.get("train_steps", 0)),
              metrics=metrics, early_stopping=fitted.get("early_stopping"))
    del clf
    gc.collect()
    return run
