"""A character vocabulary for a model pretrained from scratch (and the tiny test models)."""

from __future__ import annotations

from collections import Counter
from typing import Iterable, List, Sequence

from paddlenlp.transformers import BasicTokenizer

SPECIAL_TOKENS = ("[PAD]", "[CLS]", "[SEP]", "[MASK]", "[UNK]")
"""Ids 0..4 of every vocabulary fewshot builds (pretraining from scratch, tiny test models), in ERNIE's order."""


def build_vocab(documents: Iterable[Sequence[str]], min_freq: int = 1, special_tokens: Sequence[str] = ()) -> List[str]:
    """A character vocabulary for a model trained from scratch: ``special_tokens`` then frequent characters.

    Text is split as ERNIE's basic tokenizer does (lower-cased, CJK characters and punctuation
    apart); every character seen ``min_freq`` times and its ``##`` form (for characters inside
    ASCII words) enter, most frequent first, so WordPiece can spell any word from them.
    """
    basic = BasicTokenizer(do_lower_case=True)
    counts: Counter = Counter()
    for doc in documents:
        for sentence in doc:
            for word in basic.tokenize(sentence):
                counts[word[0]] += 1
                counts.update("##" + char for char in word[1:])
    kept = [token for token, count in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])) if count >= min_freq]
    return list(special_tokens) + [token for token in kept if token not in set(special_tokens)]
