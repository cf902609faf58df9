"""Long texts: overlapping windows over a text longer than the template's room, and how their scores pool.

With ``long_text`` on, a text whose tokens do not fit the template's text budget is not cut: its
``text_a`` tokens are split into windows of the budget's size that overlap by ``overlap`` tokens
(a quarter of the window by default), the last window ending at the text's last token, so every
token is in at least one window. Each window is encoded through the same template; the windows'
probabilities are pooled (``fewshot.tasks.pooling``). A text that fits is one window, encoded
exactly as without ``long_text``::

    window_starts(10, size=4, overlap=1)  →  [0, 3, 6]      tokens 0-3, 3-6, 6-9

:class:`LongText` is the option as the classifier, its saved config and a bundle manifest hold it:
``{"pooling": "logprob_mean", "overlap": null}``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, List, Optional, Sequence, Tuple, Type, Union

from ..errors import FewshotError
from ..tasks.pooling import POOLINGS

DEFAULT_POOLING = "logprob_mean"
"""Measured on IFLYTEK (docs/fewclue.md, long-text pooling): the best of the three poolings there."""


TRAININGS = ("pooled", "windows")
"""How a long labelled text trains: ``pooled`` — one example whose windows' mean log-probabilities
meet the label (as ``logprob_mean`` pools them at prediction); ``windows`` — every window its own
example with the text's label."""
DEFAULT_TRAINING = "pooled"


@dataclass(frozen=True)
class LongText:
    """How texts longer than the template's room are classified: window ``overlap`` (tokens; None:
    a quarter of the window), the ``pooling`` of the window probabilities (one of ``POOLINGS``) and
    how long labelled texts train (one of ``TRAININGS``; the runtime ignores it)."""

    pooling: str = DEFAULT_POOLING
    overlap: Optional[int] = None
    training: str = DEFAULT_TRAINING

    def __post_init__(self) -> None:
        if self.pooling not in POOLINGS:
            raise FewshotError(f"long_text: pooling must be one of {', '.join(POOLINGS)}, got {self.pooling!r}")
        if self.training not in TRAININGS:
            raise FewshotError(f"long_text: training must be one of {', '.join(TRAININGS)}, got {self.training!r}")
        if self.overlap is not None and (
            not isinstance(self.overlap, int) or isinstance(self.overlap, bool) or self.overlap < 0
        ):
            raise FewshotError(f"long_text: overlap must be a non-negative number of tokens, got {self.overlap!r}")

    def overlap_for(self, size: int) -> int:
        """Tokens that neighbouring windows of ``size`` tokens share: the option, at most ``size - 1``."""
        overlap = size // 4 if self.overlap is None else self.overlap
        return max(0, min(overlap, size - 1))

    def config(self) -> dict:
        """JSON-ready: ``{"pooling": "logprob_mean", "overlap": null, "training": "pooled"}``."""
        return asdict(self)

    @classmethod
    def from_config(
        cls, value: Any, where: str = "long_text", error: Type[FewshotError] = FewshotError
    ) -> Optional["LongText"]:
        """``None``/``False`` (off), ``True`` (defaults), a pooling name, a mapping or a ``LongText``.

        ``"max"`` → ``LongText(pooling="max")``; anything malformed is ``error`` naming ``where``.
        """
        if value is None or value is False:
            return None
        if isinstance(value, LongText):
            return value
        try:
            if value is True:
                return cls()
            if isinstance(value, str):
                return cls(pooling=value)
            if isinstance(value, dict):
                unknown = sorted(set(value) - {"pooling", "overlap", "training"})
                if unknown:
                    raise FewshotError(f"long_text: unknown key(s) {', '.join(unknown)}")
                return cls(**value)
        except FewshotError as exc:
            raise error(f"{where}: {exc}") from None
        raise error(f"{where}: long_text must be true, a pooling name or an object with pooling/overlap/training, "
                    f"got {value!r}")


LongTextArg = Union[None, bool, str, dict, LongText]


def window_starts(length: int, size: int, overlap: int) -> List[int]:
    """Start offsets of windows of ``size`` tokens over ``length`` tokens, neighbours sharing ``overlap``.

    The last window ends at ``length``; one window (start 0) when the text fits.
    ``window_starts(10, 4, 1)`` → ``[0, 3, 6]``; ``window_starts(11, 4, 1)`` → ``[0, 3, 6, 7]``.
    """
    if size < 1 or not 0 <= overlap < size:
        raise FewshotError(f"window_starts: need size >= 1 and 0 <= overlap < size, got {size}, {overlap}")
    if length <= size:
        return [0]
    stride = size - overlap
    starts = list(range(0, length - size + 1, stride))
    if starts[-1] + size < length:
        starts.append(length - size)
    return starts


def flatten_windows(items: Sequence[Sequence[Any]]) -> Tuple[List[Any], List[int]]:
    """The rows of every text in order, and how many each text has: ``[[a, b], [c]]`` → ``([a, b, c], [2, 1])``."""
    rows = [row for item in items for row in item]
    return rows, [len(item) for item in items]
