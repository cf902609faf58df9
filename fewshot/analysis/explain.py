"""Why a text got its label: occlusion attributions, one number per character, through the real template.

Each text is cut into pieces — one per character, an ASCII word or number kept whole, whitespace
left out — and every piece is deleted in turn. The variants go through the same template,
tokenizer and model as the text itself (all variants of all texts batched together), and a
piece's attribution is how much the explained label's probability drops without it::

    "的球上赛多" predicted sports (0.91):  的 +0.01  球 +0.38  上 0.00  赛 +0.22  多 -0.01

The explained label is the prediction: the argmax, the most probable label of a multi-label
prediction (the top column when the set is empty), the node a hierarchical path ends at.
A text of ``m`` pieces costs ``m + 1`` rows of model inference.

>>> explain_pairs([("的球上赛多", None)], classifier_probabilities, task)[0].top_piece()
'球'
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable, List, Optional, Sequence, Tuple

import numpy as np

from ..tasks import Task

PIECE = re.compile(r"[A-Za-z0-9]+|\s+|.", re.S)
"""A piece to occlude: an ASCII word or number, a whitespace run, or any other single character."""

Pair = Tuple[str, Optional[str]]
Probabilities = Callable[[List[Pair]], np.ndarray]
"""``(text_a, text_b)`` pairs → probabilities ``[n, labels]`` (e.g. the classifier's, batched)."""


@dataclass
class Explanation:
    """One text's attributions toward ``label``; ``units`` are ``(slot, piece, attribution)`` in text order."""

    text_a: str
    text_b: Optional[str]
    prediction: Any
    label: str
    probability: float
    units: List[Tuple[str, str, float]]

    def top_piece(self) -> str:
        """The piece whose deletion lowers the explained probability most."""
        return max(self.units, key=lambda unit: unit[2])[1]


def split_pieces(text: str) -> List[str]:
    """``"用iPhone 15拍的"`` → ``["用", "iPhone", " ", "15", "拍", "的"]`` (joined, they are the text)."""
    return PIECE.findall(text)


def explained_columns(task: Task, probs: np.ndarray) -> List[int]:
    """The column each row's explanation is about (see the module docstring)."""
    column = {label: i for i, label in enumerate(task.labels)}
    out = []
    for row, decoded in zip(probs, task.decode(probs)):
        if isinstance(decoded, list):
            out.append(max((column[x] for x in decoded), key=lambda c: row[c]) if decoded else int(row.argmax()))
        else:
            out.append(column[decoded])
    return out


def _variants(pair: Pair, filler: str) -> List[Tuple[str, int, List[str], Pair]]:
    """``(slot, piece index, pieces, variant pair)`` for every non-blank piece of both slots, the piece
    replaced by ``filler`` (``""``: deleted)."""
    out = []
    for slot, text in (("text_a", pair[0]), ("text_b", pair[1])):
        if text is None:
            continue
        pieces = split_pieces(text)
        for i, piece in enumerate(pieces):
            if piece.strip():
                kept = "".join(pieces[:i] + [filler] + pieces[i + 1:])
                out.append((slot, i, pieces, (kept, pair[1]) if slot == "text_a" else (pair[0], kept)))
    return out


def explain_pairs(pairs: Sequence[Pair], probabilities: Probabilities, task: Task, filler: str = "") -> List[Explanation]:
    """Occlusion explanations of ``(text_a, text_b)`` pairs (``text_b`` None for one-text templates).

    ``filler`` takes an occluded piece's place: the tokenizer's unknown token (``"[UNK]"``) keeps every
    other token where it was; ``""`` deletes the piece.
    """
    if not pairs:
        return []
    base = probabilities(list(pairs))
    columns = explained_columns(task, base)
    variants = [_variants(pair, filler) for pair in pairs]
    flat = [variant[3] for row in variants for variant in row]
    occluded = probabilities(flat) if flat else np.zeros((0, len(task.labels)))
    explanations, start = [], 0
    for pair, row, column, probs, decoded in zip(pairs, variants, columns, base, task.decode(base)):
        drops = {(slot, i): float(probs[column] - occluded[start + k, column]) for k, (slot, i, _, _) in enumerate(row)}
        start += len(row)
        units = []
        for slot, text in (("text_a", pair[0]), ("text_b", pair[1])):
            if text is not None:
                units.extend((slot, piece, drops.get((slot, i), 0.0)) for i, piece in enumerate(split_pieces(text)))
        explanations.append(Explanation(pair[0], pair[1], decoded, task.labels[column], float(probs[column]), units))
    return explanations
