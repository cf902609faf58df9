"""Automatic label words: choose each label's words from the masked LM's own predictions at the mask slots.

In the spirit of LM-BFF's automatic label selection (Gao et al. 2021) and PETAL (Schick et al.
2020): the labelled training texts go through the template, and the masked LM gives, at each
``[MASK]`` slot, a log-probability for every token of its vocabulary. For label ``y``, slot ``s``
and candidate character ``c``::

    A = mean over y's texts of log P_s(c | text)          how likely c is for y
    B = mean over the other texts of log P_s(c | text)    how likely it is anyway
    slot score = A - B                                    log-likelihood ratio

Not every character is scored (the ratio of a character the model never predicts is noise): the
candidates of a label at a slot are its ``candidates`` most likely characters there (LM-BFF's
pruning) and the characters that occur in at least ``min_texts`` of the label's own texts. A small
model's most likely characters at a mask are function characters (不, 好, 了, 吗 for every TNEWS
label with zh-ernie-tiny), while the topical ones (车 in car news) occur in the texts and get a
positive ratio there. A word fills the first ``length`` slots with distinct characters and scores
the mean of its characters' slot scores — the verbalizer scores a word by the mean of its
characters' log-probabilities, so this is the mean difference between the word's logit on the
label's texts and on the others. Words are built by a beam over the slots and must read back as
the same tokens; every label gets its ``top`` best words, no word given to two labels (the
better-scoring label keeps it). Candidates are the vocabulary's single-token words of letters (CJK
characters, or whole words in an English vocabulary), never special tokens, ``##`` pieces, single
Latin letters, digits or punctuation. Label names are not used, so English ids (``news_car``) and
long phrases work alike.

>>> choice = search_label_words(plm, tokenizer, rows, membership, labels, LabelWordSearch(top=2))
>>> choice.label_words["news_car"]
['汽车', '车型']
"""

from __future__ import annotations

import heapq
from dataclasses import asdict, dataclass
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import paddle

from ..errors import FewshotError
from ..template import pad_batch
from .partial_encoder import encode_at_positions
from .verbalizers import LMHeadTransform


@dataclass(frozen=True)
class LabelWordSearch:
    """Settings of the search: ``top`` words per label; the characters scored at a slot for a label:
    its ``candidates`` most likely ones there and those in at least ``min_texts`` of the label's
    texts (0: none); ``length`` characters per word (None: the template's number of ``[MASK]`` slots).
    ``ngrams=True`` proposes first the runs of ``length`` characters that stand together in at least
    ``min_texts`` of the label's texts (words of the domain: ``房价``, ``比赛``), scored the same way,
    before any combination of characters (those fill in for a label with too few runs)."""

    top: int = 1
    candidates: int = 10
    min_texts: int = 2
    length: Optional[int] = None
    ngrams: bool = False

    def __post_init__(self) -> None:
        for name in ("top", "candidates", "min_texts"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < (0 if name == "min_texts" else 1):
                raise FewshotError(f"label word search: {name} must be a {'non-negative' if name == 'min_texts' else 'positive'} "
                                   f"integer, got {value!r}")
        if self.length is not None and (not isinstance(self.length, int) or self.length < 1):
            raise FewshotError(f"label word search: length must be a positive integer, got {self.length!r}")

    def config(self) -> Dict[str, Any]:
        return asdict(self)


@dataclass
class LabelWordChoice:
    """The words chosen for each label and their scores (mean log-likelihood ratio per character)."""

    label_words: Dict[str, List[str]]
    scores: Dict[str, List[float]]
    settings: LabelWordSearch
    examples: int

    def config(self) -> Dict[str, Any]:
        """What a saved classifier records about how its words were chosen."""
        return {
            "method": "masked-LM log-likelihood ratio at the mask slots (fewshot.prompt.label_search)",
            "settings": self.settings.config(),
            "examples": self.examples,
            "scores": {label: [round(s, 4) for s in scores] for label, scores in self.scores.items()},
        }


def candidate_tokens(tokenizer: Any) -> Tuple[np.ndarray, List[str]]:
    """Ids and strings of the vocabulary's tokens that can be one character of a label word."""
    special = set(getattr(tokenizer, "all_special_tokens", []))
    ids, tokens = [], []
    for token, index in tokenizer.vocab.token_to_idx.items():
        if token in special or token.startswith("##") or not token.isalpha() or (len(token) == 1 and token.isascii()):
            continue
        ids.append(index)
        tokens.append(token)
    if not ids:
        raise FewshotError("label word search: the vocabulary has no word tokens to propose")
    return np.array(ids, dtype="int64"), tokens


@paddle.no_grad()
def slot_log_prob_sums(
    plm: Any, rows: Sequence[Dict[str, Any]], membership: np.ndarray, slots: int, pad_token_id: int,
    batch_size: int = 32,
) -> Tuple[np.ndarray, np.ndarray]:
    """Per label, the sum over its rows of the vocabulary log-probabilities at the first ``slots``
    mask slots (``[labels, slots, vocab]``), and the same sum over all rows (``[slots, vocab]``).

    ``membership[i, y]`` is 1 when row ``i`` has label ``y``. Soft tokens of the template read as
    their initialising tokens (what ``input_ids`` holds at their positions).
    """
    plm.eval()
    predictions = plm.cls.predictions
    transform = LMHeadTransform(predictions)
    per_label, total = None, None
    for start in range(0, len(rows), batch_size):
        batch = pad_batch(rows[start : start + batch_size], pad_token_id)
        positions = paddle.to_tensor(batch["masked_positions"][:, :slots])
        hidden = encode_at_positions(
            plm.base_model, positions, paddle.to_tensor(batch["attention_mask"]),
            input_ids=paddle.to_tensor(batch["input_ids"]), token_type_ids=paddle.to_tensor(batch["token_type_ids"]),
            position_ids=paddle.to_tensor(batch["position_ids"]),
        )
        logits = predictions.decoder(transform(hidden))
        logp = (logits - paddle.logsumexp(logits, axis=-1, keepdim=True)).numpy().astype("float64")
        flat = logp.reshape(logp.shape[0], -1)
        weights = membership[start : start + batch_size].astype("float64")
        part = (weights.T @ flat).reshape(weights.shape[1], *logp.shape[1:])
        per_label = part if per_label is None else per_label + part
        total = logp.sum(axis=0) if total is None else total + logp.sum(axis=0)
    return per_label, total


def text_counts(texts: Sequence[Sequence[int]], membership: np.ndarray, vocab_size: int) -> np.ndarray:
    """``[labels, vocab]``: in how many of each label's texts (token ids) every token occurs."""
    counts = np.zeros([membership.shape[1], vocab_size], dtype="float64")
    for ids, member in zip(texts, membership):
        present = np.unique(np.asarray(ids, dtype="int64"))
        counts[:, present] += np.asarray(member, dtype="float64")[:, None]
    return counts


def text_ngrams(texts: Sequence[Sequence[int]], membership: np.ndarray, length: int,
                candidate_ids: np.ndarray) -> List[Dict[Tuple[int, ...], int]]:
    """Per label, in how many of its texts each run of ``length`` consecutive candidate tokens
    occurs, as candidate indices: ``{(i_汽, i_车): 5, ...}``."""
    position = {int(token): index for index, token in enumerate(candidate_ids)}
    found: List[Dict[Tuple[int, ...], int]] = [{} for _ in range(np.asarray(membership).shape[1])]
    for ids, member in zip(texts, membership):
        runs = {tuple(position[int(t)] for t in ids[i : i + length]) for i in range(len(ids) - length + 1)
                if all(int(t) in position for t in ids[i : i + length])}
        for y in np.flatnonzero(np.asarray(member) > 0):
            for run in runs:
                found[y][run] = found[y].get(run, 0) + 1
    return found


def select_label_words(
    per_label: np.ndarray, total: np.ndarray, counts: np.ndarray, num_rows: int, labels: Sequence[str],
    candidate_ids: np.ndarray, candidate_strings: Sequence[str], settings: LabelWordSearch,
    check_word: Any = None, in_texts: Optional[np.ndarray] = None,
    ngrams: Optional[Sequence[Mapping[Tuple[int, ...], int]]] = None,
) -> Tuple[Dict[str, List[str]], Dict[str, List[float]]]:
    """The ``top`` words of each label from the log-probability sums (see the module docstring).

    ``counts[y]`` is the number of the ``num_rows`` rows with label ``y``; ``check_word(word, ids)``
    (optional) says whether a joined word reads back as those token ids; ``in_texts[y, j]`` is the
    number of label ``y``'s texts that hold candidate ``j`` (see :func:`text_counts`); ``ngrams[y]``
    the label's runs of candidates with their text counts (see :func:`text_ngrams`), proposed first.
    """
    slots = per_label.shape[1]
    beams: Dict[str, List[Tuple[float, Tuple[int, ...]]]] = {}
    first: Dict[str, int] = {}
    for y, label in enumerate(labels):
        inside = counts[y]
        outside = num_rows - inside
        if inside == 0:
            raise FewshotError(f"label word search: label {label!r} has no training example")
        a = per_label[y][:, candidate_ids] / inside
        b = (total[:, candidate_ids] - per_label[y][:, candidate_ids]) / max(outside, 1)
        options = []
        frequent = np.zeros(len(candidate_ids), dtype=bool)
        if in_texts is not None and settings.min_texts:
            frequent = in_texts[y] >= min(settings.min_texts, inside)
        for s in range(slots):
            likely = np.zeros(len(candidate_ids), dtype=bool)
            likely[np.argsort(-a[s], kind="stable")[: settings.candidates]] = True
            keep = np.flatnonzero(likely | frequent)
            ratio = a[s, keep] - b[s, keep] if outside > 0 else a[s, keep]
            order = np.argsort(-ratio, kind="stable")
            options.append([(float(ratio[j]), int(keep[j])) for j in order])
        beam = best_combinations(options, width=max(4 * settings.top * len(labels), 64))
        if ngrams is not None:
            ratio = a - b if outside > 0 else a
            runs = [run for run, n in ngrams[y].items() if n >= min(max(settings.min_texts, 1), inside)]
            scored = sorted(((float(np.mean([ratio[s, j] for s, j in enumerate(run)])), run) for run in runs),
                            key=lambda item: -item[0])
            first[label] = len(scored)
            beam = scored + beam
        beams[label] = beam
    return assign_words(beams, labels, candidate_ids, candidate_strings, settings.top, check_word, first)


def best_combinations(options: Sequence[Sequence[Tuple[float, int]]], width: int) -> List[Tuple[float, Tuple[int, ...]]]:
    """The ``width`` best index tuples of distinct indices by the mean of their per-slot scores (a
    beam over the slots).

    ``options[s]`` lists ``(score, index)`` for slot ``s``, best first.
    """
    beam: List[Tuple[float, Tuple[int, ...]]] = [(0.0, ())]
    for slot in options:
        extended = [(total + score, combo + (index,)) for total, combo in beam
                    for score, index in slot[: width + len(combo)] if index not in combo]
        beam = heapq.nlargest(width, extended, key=lambda item: item[0])
    return [(total / len(options), combo) for total, combo in beam]


def join_tokens(tokens: Sequence[str]) -> str:
    """Characters join directly (``汽``, ``车`` → ``汽车``); two ASCII words with a space."""
    word = tokens[0]
    for token in tokens[1:]:
        word += (" " if word[-1].isascii() and token[0].isascii() else "") + token
    return word


def assign_words(
    beams: Dict[str, List[Tuple[float, Tuple[int, ...]]]], labels: Sequence[str], candidate_ids: np.ndarray,
    candidate_strings: Sequence[str], top: int, check_word: Any = None, first: Optional[Mapping[str, int]] = None,
) -> Tuple[Dict[str, List[str]], Dict[str, List[float]]]:
    """Give each label its ``top`` best words, best-scoring claims first, no word to two labels;
    the first ``first[label]`` words of a label's beam (its text n-grams) go before all the others."""
    leading = first or {}
    claims = sorted(
        ((score, label, combo, rank < leading.get(label, 0))
         for label, beam in beams.items() for rank, (score, combo) in enumerate(beam)),
        key=lambda item: (not item[3], -item[0]),
    )
    words: Dict[str, List[str]] = {label: [] for label in labels}
    scores: Dict[str, List[float]] = {label: [] for label in labels}
    taken = set()
    for score, label, combo, _ in claims:
        if len(words[label]) >= top:
            continue
        word = join_tokens([candidate_strings[i] for i in combo])
        ids = [int(candidate_ids[i]) for i in combo]
        if word in taken or (check_word is not None and not check_word(word, ids)):
            continue
        taken.add(word)
        words[label].append(word)
        scores[label].append(score)
    short = [label for label in labels if len(words[label]) < top]
    if short:
        raise FewshotError(f"label word search: found fewer than {top} distinct words for {', '.join(short[:5])}; "
                           "raise candidates or lower top")
    return words, scores


def search_label_words(
    plm: Any, tokenizer: Any, rows: Sequence[Dict[str, Any]], membership: np.ndarray, labels: Sequence[str],
    settings: LabelWordSearch, num_masks: int, batch_size: int = 32,
    texts: Sequence[Sequence[int]] = (), text_membership: Optional[np.ndarray] = None,
) -> LabelWordChoice:
    """Choose label words for ``labels`` from template-encoded training ``rows`` and their
    ``membership`` (``[rows, labels]``, 1 where a row has the label); ``texts`` are the examples'
    token ids with their ``text_membership``, for the ``min_texts`` candidates."""
    length = settings.length or num_masks
    if length > num_masks:
        raise FewshotError(f"label word search: words of {length} characters need {length} [MASK] slots, "
                           f"the template has {num_masks}")
    membership = np.asarray(membership, dtype="float64")
    per_label, total = slot_log_prob_sums(plm, rows, membership, length, tokenizer.pad_token_id, batch_size)
    ids, strings = candidate_tokens(tokenizer)

    def reads_back(word: str, expected: List[int]) -> bool:
        return tokenizer.convert_tokens_to_ids(tokenizer.tokenize(word)) == expected

    counts = membership.sum(axis=0)
    in_texts = None
    if len(texts):
        in_texts = text_counts(texts, np.asarray(text_membership), total.shape[-1])[:, ids]
    ngrams = text_ngrams(texts, np.asarray(text_membership), length, ids) if settings.ngrams and len(texts) else None
    words, scores = select_label_words(
        per_label, total, counts, len(rows), labels, ids, strings, settings, check_word=reads_back,
        in_texts=in_texts, ngrams=ngrams,
    )
    return LabelWordChoice(words, scores, settings, len(rows))
