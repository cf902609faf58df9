"""Packing tokenized sentences into ``[CLS] … [SEP]`` sequences and masking whole units for masked-LM pretraining."""

from __future__ import annotations

from typing import Any, Iterable, List, Sequence, Tuple

import numpy as np

from .corpus import CONTINUATION, SPECIAL, START, CorpusError, TokenizedSentence


def pack_sequences(
    documents: Iterable[Sequence[TokenizedSentence]], max_seq_len: int, cls_id: int, sep_id: int
) -> List[TokenizedSentence]:
    """Pack sentences, in order, into ``[CLS] … [SEP]`` sequences of at most ``max_seq_len`` tokens.

    Sentences are never split unless one alone is longer than ``max_seq_len - 2`` tokens; then it
    is cut into pieces that fill whole sequences. A sentence that does not fit starts a new
    sequence. Documents sharing a sequence are separated by ``[SEP]``. With ``max_seq_len=8``,
    documents ``[["ab", "c"], ["de"]]`` and ``[["fghij"]]`` (one token per letter) give
    ``[CLS] a b c [SEP] d e [SEP]`` and ``[CLS] f g h i j [SEP]``.
    """
    if max_seq_len < 3:
        raise CorpusError(f"max_seq_len must be at least 3 ([CLS], one token, [SEP]), got {max_seq_len}")
    capacity = max_seq_len - 2
    packer = _Packer(capacity, cls_id, sep_id)
    for doc in documents:
        for sentence in doc:
            for start in range(0, len(sentence), capacity):
                packer.add(sentence.ids[start : start + capacity], sentence.kinds[start : start + capacity])
        packer.end_document()
    packer.flush()
    return packer.sequences


class _Packer:
    """Greedy packing state for :func:`pack_sequences`."""

    def __init__(self, capacity: int, cls_id: int, sep_id: int):
        self.capacity, self.cls_id, self.sep_id = capacity, cls_id, sep_id
        self.ids: List[np.ndarray] = []
        self.kinds: List[np.ndarray] = []
        self.length = 0
        self.separate = False
        self.sequences: List[TokenizedSentence] = []

    def add(self, ids: np.ndarray, kinds: np.ndarray) -> None:
        """Append one sentence (or piece of one), starting a new sequence when it does not fit."""
        if len(ids) == 0:
            return
        if self.length + len(ids) + int(self.separate) > self.capacity:
            self.flush()
        if self.separate:
            self._append(np.array([self.sep_id], dtype="int64"), np.array([SPECIAL], dtype="int8"))
            self.separate = False
        kinds = kinds.copy()
        if kinds[0] == CONTINUATION:
            kinds[0] = START
        self._append(ids, kinds)

    def end_document(self) -> None:
        """The next sentence, if it joins this sequence, follows a [SEP]."""
        self.separate = self.length > 0

    def flush(self) -> None:
        if self.ids:
            ids = np.concatenate([[self.cls_id], *self.ids, [self.sep_id]]).astype("int64")
            kinds = np.concatenate([[SPECIAL], *self.kinds, [SPECIAL]]).astype("int8")
            self.sequences.append(TokenizedSentence(ids=ids, kinds=kinds))
        self.ids, self.kinds, self.length, self.separate = [], [], 0, False

    def _append(self, ids: np.ndarray, kinds: np.ndarray) -> None:
        self.ids.append(ids)
        self.kinds.append(kinds)
        self.length += len(ids)


def mask_sequence(
    ids: np.ndarray,
    kinds: np.ndarray,
    rng: Any,
    mask_id: int,
    random_ids: np.ndarray,
    ratio: float = 0.15,
) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mask whole units: return ``(masked_ids, positions, labels)``.

    Units are drawn in random order until ``round(ratio × maskable tokens)`` tokens (at least
    one unit) are chosen; a unit that would overshoot is passed over. Each chosen unit becomes
    ``[MASK]`` (80%), random tokens from ``random_ids`` (10%) or stays (10%). ``labels`` are the
    original ids at ``positions`` (sorted). ``rng`` is a ``numpy.random.Generator``.
    """
    starts = np.flatnonzero(kinds == START)
    if len(starts) == 0:
        raise CorpusError("a sequence has no maskable token")
    boundaries = np.append(np.flatnonzero(kinds != CONTINUATION), len(kinds))
    ends = boundaries[np.searchsorted(boundaries, starts, side="right")]
    target = max(1, int(round(ratio * int((kinds != SPECIAL).sum()))))
    chosen = _choose_units(ends - starts, target, rng)
    masked = ids.copy()
    spans = [np.arange(starts[u], ends[u]) for u in chosen]
    draws = rng.random(len(chosen))
    for span, draw in zip(spans, draws):
        if draw < 0.8:
            masked[span] = mask_id
        elif draw < 0.9:
            masked[span] = random_ids[rng.integers(0, len(random_ids), size=len(span))]
    positions = np.sort(np.concatenate(spans))
    return masked, positions, ids[positions]


def _choose_units(lengths: np.ndarray, target: int, rng: Any) -> List[int]:
    chosen: List[int] = []
    covered = 0
    for unit in rng.permutation(len(lengths)):
        if covered and covered + lengths[unit] > target:
            continue
        chosen.append(int(unit))
        covered += int(lengths[unit])
        if covered >= target:
            break
    return chosen
