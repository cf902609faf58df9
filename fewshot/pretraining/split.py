"""PaddleNLP's ``--split``: train / eval / test shares of a pretraining corpus's documents.

``"198,1,1"`` keeps 198/200 of the documents for training, 1/200 for the held-out evaluation run
every ``--eval-steps`` and 1/200 for the test evaluation at the end. As in PaddleNLP, the split
is by contiguous ranges of the documents in corpus order (shuffle the corpus beforehand if it is
sorted), and a positive share keeps at least one document.

>>> parse_split("198,1,1")
(0.99, 0.005, 0.005)
>>> split_documents(list("abcdefghij"), parse_split("8,1,1"))
(['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h'], ['i'], ['j'])
"""

from __future__ import annotations

import math
from typing import List, Sequence, Tuple, TypeVar

from ..errors import FewshotError

T = TypeVar("T")
Shares = Tuple[float, float, float]


class SplitError(FewshotError):
    """A ``--split`` value that is not three non-negative numbers with a positive training share."""


def parse_split(text: str) -> Shares:
    """``"949,50,1"`` → the three shares as fractions of their sum (a missing part counts as 0)."""
    parts = [p.strip() for p in str(text).split(",")]
    if not 1 <= len(parts) <= 3:
        raise SplitError(f"--split {text!r}: expected train,eval,test shares such as 198,1,1")
    try:
        values = [float(p) for p in parts] + [0.0] * (3 - len(parts))
    except ValueError:
        raise SplitError(f"--split {text!r}: expected numbers such as 198,1,1") from None
    if any(not math.isfinite(v) or v < 0 for v in values) or values[0] <= 0:
        raise SplitError(f"--split {text!r}: shares must be finite, non-negative, and the training share positive")
    total = sum(values)
    return values[0] / total, values[1] / total, values[2] / total


def split_documents(documents: Sequence[T], shares: Shares) -> Tuple[List[T], List[T], List[T]]:
    """Contiguous train / eval / test ranges of ``documents`` in the proportions ``shares``."""
    count = len(documents)
    held = [_size(share, count) for share in shares[1:]]
    if sum(held) >= count:
        raise SplitError(
            f"--split: {count} document(s) are too few to hold out {held[0]} for evaluation and {held[1]} for test "
            "and still train; add text or lower the held-out shares"
        )
    train_end = count - sum(held)
    eval_end = train_end + held[0]
    return list(documents[:train_end]), list(documents[train_end:eval_end]), list(documents[eval_end:])


def _size(share: float, count: int) -> int:
    return max(1, int(round(share * count))) if share > 0 else 0
