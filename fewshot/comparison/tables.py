"""``fewshot-compare``'s tables, in Markdown and JSON, from ``evaluate``'s metrics of every run.

Table 1 has one row per checkpoint × method and, for each group (domain) and ``all``, the
headline metrics the task reports: ``accuracy`` (single-label), ``exact`` and ``tolerant``
(hierarchical), ``exact`` and ``micro-F1`` (multi-label). Table 2 has one row per group ×
checkpoint × method: the test rows, the per-level accuracies and the exact match (hierarchical;
accuracy and macro-F1 for single-label). Cells are means over the seeds, ``± std`` with several
seeds; the best mean of each column (of each group in table 2) is bold::

    | checkpoint | method | step | MLM ppl | 成本数据 exact | 成本数据 tolerant | … | all exact | all tolerant |
    |---|---|---:|---:|---:|---:|---:|---:|---:|
    | base | prompt | – | – | **0.7500** | 0.8000 | … | 0.7100 | 0.7600 |
"""

from __future__ import annotations

import re
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from .runs import ALL, CandidateResult

HEADLINE_METRICS: Tuple[Tuple[str, str], ...] = (
    ("accuracy", "accuracy"), ("exact_match", "exact"), ("tolerant_accuracy", "tolerant"), ("micro_f1", "micro-F1"),
)
"""Table 1's metrics, in column order: those the task's ``evaluate`` returns are shown."""
DETAIL_METRICS: Tuple[Tuple[str, str], ...] = (("accuracy", "accuracy"), ("exact_match", "exact"), ("macro_f1", "macro-F1"))
"""Table 2's metrics after the per-level accuracies, in column order."""
_LEVEL = re.compile(r"^level_(\d+)_accuracy$")
DASH = "–"


def _keys_present(results: Sequence[CandidateResult], groups: Sequence[str]) -> set:
    return {key for r in results for run in r.runs for g in groups for key in run.metrics.get(g, {})}


def headline_columns(results: Sequence[CandidateResult]) -> List[Tuple[str, str]]:
    """``[(metric key, title)]`` of table 1, e.g. ``[("exact_match", "exact"), ("tolerant_accuracy", "tolerant")]``."""
    present = _keys_present(results, [ALL])
    return [(key, title) for key, title in HEADLINE_METRICS if key in present]


def detail_columns(results: Sequence[CandidateResult], groups: Sequence[str],
                   level_names: Sequence[str] = ()) -> List[Tuple[str, str]]:
    """``[(metric key, title)]`` of table 2: ``level 1`` … ``level k`` accuracies (or ``level_names``:
    ``专业``, ``分部``, ``分项``), then exact match or accuracy."""
    present = _keys_present(results, groups)
    levels = sorted((int(m.group(1)), key) for key in present if (m := _LEVEL.match(key)))
    titles = [level_names[k - 1] if k <= len(level_names) else f"level {k}" for k, _ in levels]
    return [(key, title) for (_, key), title in zip(levels, titles)] + [
        (key, title) for key, title in DETAIL_METRICS if key in present]


def _cell(mean: Optional[float], std: Optional[float], show_std: bool, best: bool) -> str:
    if mean is None:
        return DASH
    text = f"**{mean:.4f}**" if best else f"{mean:.4f}"
    return f"{text} ± {std:.4f}" if show_std and std is not None else text


def _best(values: Sequence[Optional[float]]) -> Optional[float]:
    known = [v for v in values if v is not None]
    return max(known) if known else None


def _is_best(value: Optional[float], best: Optional[float]) -> bool:
    return value is not None and value == best


def _row_name(r: CandidateResult) -> List[str]:
    return [r.name, r.method]


def summary_table(results: Sequence[CandidateResult], groups: Sequence[str]) -> str:
    """Table 1: one row per checkpoint × method; per group, the headline metrics (best of each column in bold)."""
    columns = [(g, key, title) for g in groups for key, title in headline_columns(results)]
    show_std = any(len(r.runs) > 1 for r in results)
    best = {(g, key): _best([r.mean(g, key) for r in results]) for g, key, _ in columns}
    lines = [
        "| checkpoint | method | step | MLM ppl | " + " | ".join(f"{g} {title}" for g, _, title in columns) + " |",
        "|---|---|---:|---:|" + "---:|" * len(columns),
    ]
    for r in results:
        step = DASH if r.step is None else str(r.step)
        ppl = DASH if r.eval_perplexity is None else f"{r.eval_perplexity:.2f}"
        cells = [_cell(r.mean(g, key), r.std(g, key), show_std, _is_best(r.mean(g, key), best[(g, key)]))
                 for g, key, _ in columns]
        lines.append("| " + " | ".join(_row_name(r) + [step, ppl] + cells) + " |")
    return "\n".join(lines)


def level_table(results: Sequence[CandidateResult], groups: Sequence[str], sizes: Mapping[str, int],
                level_names: Sequence[str] = ()) -> str:
    """Table 2: per group × checkpoint × method, the test rows, per-level accuracies and exact match."""
    columns = detail_columns(results, groups, level_names)
    show_std = any(len(r.runs) > 1 for r in results)
    lines = [
        "| domain | n | checkpoint | method | " + " | ".join(title for _, title in columns) + " |",
        "|---|---:|---|---|" + "---:|" * len(columns),
    ]
    for g in groups:
        best = {key: _best([r.mean(g, key) for r in results]) for key, _ in columns}
        for r in results:
            cells = [_cell(r.mean(g, key), r.std(g, key), show_std, _is_best(r.mean(g, key), best[key]))
                     for key, _ in columns]
            lines.append("| " + " | ".join([g, str(sizes.get(g, DASH))] + _row_name(r) + cells) + " |")
    return "\n".join(lines)


def markdown_tables(results: Sequence[CandidateResult], sizes: Mapping[str, int], level_names: Sequence[str] = ()) -> str:
    """Both tables, separated by a blank line (``sizes``: test rows per group, ``all`` last; ``level_names``
    title table 2's per-level columns)."""
    groups = list(sizes)
    return summary_table(results, groups) + "\n\n" + level_table(results, groups, sizes, level_names)


def summary(result: CandidateResult, groups: Sequence[str]) -> Dict[str, Dict[str, Dict[str, float]]]:
    """``{group: {metric: {"mean": …, "std": …}}}`` of every numeric metric ``evaluate`` returned."""
    out: Dict[str, Dict[str, Dict[str, float]]] = {}
    for g in groups:
        keys = sorted({k for run in result.runs for k, v in run.metrics.get(g, {}).items()
                       if isinstance(v, (int, float)) and not isinstance(v, bool)})
        out[g] = {k: {"mean": result.mean(g, k), "std": result.std(g, k)} for k in keys}
    return out


def json_document(results: Sequence[CandidateResult], sizes: Mapping[str, int],
                  settings: Mapping[str, Any]) -> Dict[str, Any]:
    """The JSON ``fewshot-compare --output`` writes: settings, group sizes, and per candidate the summary
    (mean and std over seeds) and every run's ``evaluate`` metrics per group."""
    groups = list(sizes)
    return {
        "settings": dict(settings),
        "group_sizes": dict(sizes),
        "results": [dict(r.to_dict(), summary=summary(r, groups)) for r in results],
    }
