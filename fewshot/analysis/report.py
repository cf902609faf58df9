"""One self-contained HTML report of a classifier on labelled data: no server, no CDN, no external URL.

Sections (each an ``<section id=…>``): ``overview``; ``metrics`` (the task's own: accuracy and
macro-F1, micro-F1 and exact match, or per-level accuracy with exact and tolerant match for
hierarchies); ``per-class`` precision/recall/F1; ``confusion`` (a picture: gold rows, predicted
columns; for multi-label rows, gold label × predicted label co-occurrence, ``(none)`` for rows
predicted empty); ``confused-pairs`` (the most frequent gold → predicted mistakes, with texts);
``calibration`` (a reliability diagram at temperature 1 and at the classifier's, with their
ECE); ``explanations`` (texts with each character shaded by its occlusion attribution: orange
supports the predicted label, blue speaks against it); ``label-issues`` (rows of the training
data flagged by k-fold confident learning, when training data are given).

Pictures are drawn with matplotlib's Agg canvas (no pyplot, no global backend change) and
embedded as base64 PNG. Class names that the default font cannot draw (Chinese hierarchy paths)
become numbers in the pictures, with a key beside them.

>>> html = build_report(clf, read_examples("test.txt", labels=clf.task.check), title="test.txt")
>>> write_report("report.html", html)
"""

from __future__ import annotations

import base64
import html
import io
import os
from collections import Counter, defaultdict
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from ..atomic import atomic_file
from ..data import Example
from ..errors import FewshotError
from ..tasks.calibration import calibration_bins
from .label_issues import DEFAULT_FOLDS, LabelIssue, find_label_issues

SECTIONS = ("overview", "metrics", "per-class", "confusion", "confused-pairs", "calibration", "explanations",
            "label-issues")
DEFAULT_EXPLAINED = 20
DEFAULT_PAIRS = 8
EXAMPLES_PER_PAIR = 3
NONE_COLUMN = "(none)"

STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI","Noto Sans CJK SC","WenQuanYi Zen Hei",sans-serif;
margin:2em auto;max-width:1100px;color:#222;line-height:1.45;padding:0 1em}
h1{font-size:1.6em}h2{font-size:1.25em;border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:1.8em}
table{border-collapse:collapse;margin:.6em 0}td,th{border:1px solid #ddd;padding:.25em .6em;text-align:left;
vertical-align:top}th{background:#f4f4f4}td.n{text-align:right;font-variant-numeric:tabular-nums}
.pic{display:flex;gap:1.5em;align-items:flex-start;flex-wrap:wrap}.pic img{max-width:100%;height:auto}
.muted{color:#777}.u{border-radius:2px;padding:0 1px}.expl td{font-size:1.05em}
.key td{font-size:.9em;padding:.1em .5em}
"""


def _matplotlib() -> Tuple[Any, Any]:
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise FewshotError('the report needs matplotlib: pip install "fewshot[analysis]"') from None
    return Figure, FigureCanvasAgg


def _png(figure: Any, canvas_class: Any) -> str:
    """The figure as a ``data:`` URI of a PNG."""
    canvas_class(figure)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def drawable(names: Sequence[str]) -> bool:
    """Whether matplotlib's default font has a glyph for every character of ``names``."""
    from matplotlib import font_manager
    from matplotlib.ft2font import FT2Font

    charmap = FT2Font(font_manager.findfont(font_manager.FontProperties())).get_charmap()
    return all(ord(c) in charmap for name in names for c in name if not c.isspace())


def _columns(labels: Sequence[str], decoded: Any) -> List[int]:
    """Column indices of one decoded label (a label, a path) or label list."""
    index = {label: i for i, label in enumerate(labels)}
    return [index[x] for x in decoded] if isinstance(decoded, list) else [index[decoded]]


def confusion_counts(task: Any, gold: Sequence[str], decoded: Sequence[Any]) -> Tuple[List[str], List[str], np.ndarray]:
    """``(row names, column names, counts)``: gold class × predicted class (exclusive tasks), or gold
    label × predicted label co-occurrence with a ``(none)`` column for empty predictions."""
    labels = list(task.labels)
    given = task.given_classes(gold)
    columns = labels if task.exclusive else labels + [NONE_COLUMN]
    counts = np.zeros((len(labels), len(columns)), dtype="int64")
    for g, d in zip(given, decoded):
        predicted = _columns(labels, d) or [len(labels)]
        for row in (g if isinstance(g, list) else [g]):
            for column in predicted:
                counts[row, column] += 1
    return labels, columns, counts


def confused_pairs(task: Any, examples: Sequence[Example], decoded: Sequence[Any], top: int = DEFAULT_PAIRS
                   ) -> List[Tuple[str, str, int, List[Example]]]:
    """The most frequent ``(gold, predicted)`` mistakes: for each row, every gold class it missed paired
    with every class predicted wrongly (``(none)`` when nothing wrong was predicted), with example rows."""
    labels = list(task.labels)
    counts: Counter = Counter()
    texts: Dict[Tuple[str, str], List[Example]] = defaultdict(list)
    for example, g, d in zip(examples, task.given_classes([e.label for e in examples]), decoded):
        gold = set(g) if isinstance(g, list) else {g}
        predicted = set(_columns(labels, d))
        wrong = sorted(predicted - gold)
        for missed in sorted(gold - predicted) or ([None] if wrong else []):
            for extra in wrong or [None]:
                key = (labels[missed] if missed is not None else NONE_COLUMN,
                       labels[extra] if extra is not None else NONE_COLUMN)
                counts[key] += 1
                if len(texts[key]) < EXAMPLES_PER_PAIR:
                    texts[key].append(example)
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:top]
    return [(g, p, n, texts[(g, p)]) for (g, p), n in ranked]


def confusion_picture(rows: Sequence[str], columns: Sequence[str], counts: np.ndarray, named: bool) -> str:
    """A heat map of ``counts`` with the numbers written in; ticks are names when ``named``, else 1..K."""
    Figure, Canvas = _matplotlib()
    size = max(4.0, 0.42 * len(columns) + 2.5)
    figure = Figure(figsize=(size, size * len(rows) / len(columns) + 0.6))
    axes = figure.add_subplot()
    axes.imshow(counts, cmap="Blues", aspect="auto")
    ticks = (lambda names: list(names)) if named else (lambda names: [str(i + 1) if n != NONE_COLUMN else n
                                                                         for i, n in enumerate(names)])
    # parse_math=False: a label is text, never matplotlib math ("a$\\x$b" would not draw)
    axes.set_xticks(range(len(columns)), ticks(columns), rotation=90 if named else 0, fontsize=8, parse_math=False)
    axes.set_yticks(range(len(rows)), ticks(rows), fontsize=8, parse_math=False)
    axes.set_xlabel("predicted")
    axes.set_ylabel("gold")
    peak = counts.max() or 1
    if len(columns) <= 30:
        for (r, c), value in np.ndenumerate(counts):
            if value:
                axes.text(c, r, str(value), ha="center", va="center", fontsize=7,
                          color="white" if value > peak / 2 else "black")
    return _png(figure, Canvas)


def reliability_picture(curves: Sequence[Tuple[str, Sequence[Mapping[str, float]]]]) -> str:
    """Mean outcome against mean confidence per bin, one line per ``(legend, bins)``, and the diagonal."""
    Figure, Canvas = _matplotlib()
    figure = Figure(figsize=(5, 4.6))
    axes = figure.add_subplot()
    axes.plot([0, 1], [0, 1], linestyle="--", color="#999", label="perfect calibration")
    for (legend, bins), marker in zip(curves, "os"):
        axes.plot([b["confidence"] for b in bins], [b["outcome"] for b in bins], marker=marker, label=legend)
    axes.set_xlim(0, 1)
    axes.set_ylim(0, 1)
    axes.set_xlabel("confidence (mean per bin)")
    axes.set_ylabel("accuracy / positive rate")
    axes.legend(loc="best", fontsize=8)
    return _png(figure, Canvas)


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _label_text(task: Any, label: Any) -> str:
    return task.label_field(label) if isinstance(label, list) else str(label)


def _text(example: Example) -> str:
    return example.text_a if example.text_b is None else f"{example.text_a} / {example.text_b}"


def _number(value: float) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def _metrics_html(metrics: Mapping[str, Any], calibration: Mapping[str, float]) -> str:
    rows = [(k, v) for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)]
    rows += [(f"calibration: {k}", v) for k, v in calibration.items()]
    body = "".join(f"<tr><th>{_e(k)}</th><td class=n>{_number(v)}</td></tr>" for k, v in rows)
    return f"<table>{body}</table>"


def _per_class_html(report: Mapping[str, Any]) -> str:
    if not report:
        return "<p class=muted>no per-class report</p>"
    head = "<tr><th>class</th><th>precision</th><th>recall</th><th>F1</th><th>support</th></tr>"
    body = []
    for name, row in report.items():
        if isinstance(row, Mapping):
            body.append(f"<tr><td>{_e(name)}</td>" + "".join(
                f"<td class=n>{row[k]:.3f}</td>" for k in ("precision", "recall", "f1-score"))
                + f"<td class=n>{int(row['support'])}</td></tr>")
    return f"<table>{head}{''.join(body)}</table>"


def _key_html(names: Sequence[str], counts: np.ndarray) -> str:
    rows = "".join(f"<tr><td class=n>{i + 1}</td><td>{_e(name)}</td><td class=n>{int(counts[i].sum())}</td></tr>"
                   for i, name in enumerate(names))
    return f"<table class=key><tr><th>#</th><th>gold class</th><th>rows</th></tr>{rows}</table>"


def _pairs_html(task: Any, pairs: Sequence[Tuple[str, str, int, List[Example]]]) -> str:
    if not pairs:
        return "<p>No mistakes.</p>"
    head = "<tr><th>gold</th><th>predicted</th><th>rows</th><th>examples</th></tr>"
    body = "".join(
        f"<tr><td>{_e(g)}</td><td>{_e(p)}</td><td class=n>{n}</td><td>"
        + "<br>".join(_e(_text(e)) for e in examples) + "</td></tr>" for g, p, n, examples in pairs)
    return f"<table>{head}{body}</table>"


def _shade(attribution: float, scale: float) -> str:
    alpha = min(abs(attribution) / scale, 1.0) * 0.85 if scale > 0 else 0.0
    rgb = "235,120,30" if attribution >= 0 else "40,110,220"
    return f"background:rgba({rgb},{alpha:.2f})"


def _explanations_html(task: Any, explanations: Sequence[Any], gold: Sequence[Any]) -> str:
    if not explanations:
        return "<p class=muted>no texts explained</p>"
    head = "<tr><th>text (shaded by attribution)</th><th>gold</th><th>predicted</th><th>explained label (p)</th></tr>"
    rows = []
    for explanation, label in zip(explanations, gold):
        scale = max((abs(a) for _, _, a in explanation.units), default=0.0)
        pieces, slot = [], None
        for unit_slot, piece, attribution in explanation.units:
            if slot is not None and unit_slot != slot:
                pieces.append(" <span class=muted>/</span> ")
            slot = unit_slot
            pieces.append(f'<span class=u style="{_shade(attribution, scale)}" title="{attribution:+.3f}">'
                          f"{_e(piece)}</span>")
        rows.append(f"<tr><td>{''.join(pieces)}</td><td>{_e(_label_text(task, label))}</td>"
                    f"<td>{_e(_label_text(task, explanation.prediction))}</td>"
                    f"<td>{_e(explanation.label)} ({explanation.probability:.2f})</td></tr>")
    return ("<p>Each character is hidden in turn (replaced by the unknown token). Orange: hiding it lowers the "
            "explained label's probability (it supports the prediction); blue: hiding it raises the probability. "
            "Hover for the value.</p>"
            f"<table class=expl>{head}{''.join(rows)}</table>")


def _issues_html(task: Any, issues: Optional[Sequence[LabelIssue]], rows: int) -> str:
    if issues is None:
        return "<p class=muted>Not run: give the training data (fewshot-report --train FILE) to flag likely label errors.</p>"
    if not issues:
        return f"<p>No row of the {rows} training rows is flagged.</p>"
    head = ("<tr><th>line</th><th>text</th><th>given</th><th>suggested</th><th>score</th>"
            "<th>fold accuracy</th></tr>")
    body = "".join(
        f"<tr><td class=n>{issue.line if issue.line is not None else issue.index}</td>"
        f"<td>{_e(issue.text_a if issue.text_b is None else issue.text_a + ' / ' + issue.text_b)}</td>"
        f"<td>{_e(_label_text(task, issue.given))}</td><td>{_e(_label_text(task, issue.suggested))}</td>"
        f"<td class=n>{issue.score:.3f}</td>"
        f"<td class=n>{'' if issue.fold_accuracy is None else f'{issue.fold_accuracy:.3f}'}</td></tr>"
        for issue in issues)
    folds = sorted({issue.fold_accuracy for issue in issues if issue.fold_accuracy is not None})
    note = (f" The fold models that scored them reached {', '.join(f'{a:.3f}' for a in folds)} held-out accuracy: "
            "flags from a weak fold model are weak evidence." if folds else "")
    return (f"<p>{len(issues)} of {rows} training rows flagged (lowest label quality first).{note}</p>"
            f"<table>{head}{body}</table>")


def _calibration_note(task: Any) -> str:
    if task.activation == "softmax":
        return "Each row counts once: its top probability against whether that label is right."
    return "Every (row, label) probability counts, against whether the label is in the row's gold set."


def explained_rows(task: Any, gold: Sequence[str], decoded: Sequence[Any], probs: np.ndarray, count: int) -> List[int]:
    """Up to ``count`` rows to explain: the most confident mistakes first, then the most confident hits."""
    confidence = task.class_distribution(probs).max(axis=1)
    given = task.given_classes(gold)
    labels = list(task.labels)
    right = [sorted(_columns(labels, d)) == sorted(g if isinstance(g, list) else [g]) for g, d in zip(given, decoded)]
    order = sorted(range(len(gold)), key=lambda i: (right[i], -confidence[i], i))
    wrong = [i for i in order if not right[i]][: (count + 1) // 2]
    return (wrong + [i for i in order if right[i]])[:count]


def build_report(
    clf: Any, examples: Sequence[Example], train: Optional[Sequence[Example]] = None, title: str = "",
    explain: int = DEFAULT_EXPLAINED, folds: int = DEFAULT_FOLDS, batch_size: int = 32,
    fit_args: Optional[Mapping[str, Any]] = None, seed: int = 0,
) -> str:
    """The report's HTML for ``clf`` on labelled ``examples``; with ``train``, label issues found by
    ``folds``-fold training of ``clf.untrained_copy()`` with ``fit_args``."""
    task = clf.task
    examples = list(examples)
    gold = [e.label for e in examples]
    logits = clf.logits(examples, batch_size=batch_size)
    probs = task.activate(logits)
    decoded = task.decode(probs)
    metrics = task.metrics(probs, gold, report=True)
    calibration = task.calibration_report(logits, gold)
    rows, columns, counts = confusion_counts(task, gold, decoded)
    named = drawable(list(rows) + list(columns))
    picture = confusion_picture(rows, columns, counts, named)
    curves = [(f"temperature 1 (ECE {calibration['ece_uncalibrated']:.3f})",
               calibration_bins(*task.calibration_pairs(task.activate(logits, 1.0), gold)))]
    if task.temperature != 1.0:
        curves.append((f"temperature {task.temperature:.3g} (ECE {calibration['ece']:.3f})",
                       calibration_bins(*task.calibration_pairs(probs, gold))))
    chosen = explained_rows(task, gold, decoded, probs, explain)
    explanations = clf.explain([examples[i] for i in chosen], batch_size=batch_size)
    issues = None
    if train is not None:
        issues = find_label_issues(lambda: clf.untrained_copy(seed=seed), list(train), folds=folds, split_seed=seed,
                                   batch_size=batch_size, **dict(fit_args or {}))
    per_class = metrics.get("per_class") or metrics.get("per_node") or {}
    overview = (f"<table><tr><th>data</th><td>{_e(title or 'rows')}: {len(examples)} rows</td></tr>"
                f"<tr><th>task</th><td>{_e(task.description)}, {len(task.labels)} "
                f"{'classes' if task.exclusive else 'labels'}</td></tr>"
                f"<tr><th>model</th><td>{_e(clf.model_name)}</td></tr>"
                f"<tr><th>template</th><td>{_e(clf.template.text)}</td></tr>"
                f"<tr><th>temperature</th><td>{task.temperature:.4g}</td></tr></table>")
    key = "" if named else _key_html(rows, counts)
    bodies = {
        "overview": overview,
        "metrics": _metrics_html(metrics, calibration),
        "per-class": _per_class_html(per_class),
        "confusion": f'<div class=pic><img alt="confusion matrix" src="{picture}">{key}</div>',
        "confused-pairs": _pairs_html(task, confused_pairs(task, examples, decoded)),
        "calibration": (f"<p>Expected calibration error (10 bins): {calibration['ece_uncalibrated']:.4f} at "
                        f"temperature 1, {calibration['ece']:.4f} at the classifier's temperature "
                        f"{task.temperature:.4g}. {_calibration_note(task)}</p>"
                        f'<div class=pic><img alt="reliability diagram" src="{reliability_picture(curves)}"></div>'),
        "explanations": _explanations_html(task, explanations, [gold[i] for i in chosen]),
        "label-issues": _issues_html(task, issues, len(train) if train is not None else 0),
    }
    headings = {"overview": "Overview", "metrics": "Metrics", "per-class": "Per class",
                "confusion": "Confusion matrix", "confused-pairs": "Most confused label pairs",
                "calibration": "Calibration (reliability diagram)", "explanations": "Explained examples",
                "label-issues": "Likely label errors in the training data"}
    sections = "".join(f'<section id="{name}"><h2>{headings[name]}</h2>{bodies[name]}</section>' for name in SECTIONS)
    return (f"<!DOCTYPE html><html lang=zh><head><meta charset=utf-8><title>fewshot report: {_e(title)}</title>"
            f"<style>{STYLE}</style></head><body><h1>fewshot report: {_e(title)}</h1>{sections}</body></html>")


def write_report(path: "os.PathLike[str] | str", text: str) -> None:
    """Write the report atomically: a failed write leaves the previous file."""
    with atomic_file(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
