"""Pretraining data: packed training sequences, dynamically masked batches, fixed-mask held-out rows.

``prepare_data`` tokenizes, counts and packs a corpus and splits it (``--split`` by documents, or
``--eval-ratio`` of the sequences); ``PackedDataset`` and ``EpochBatchSampler`` give each sequence
new masks every epoch yet the same ones in a resumed run; ``MaskedLMCollator`` pads and masks a batch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Sequence, Tuple

import numpy as np
from paddle.io import Dataset, DistributedBatchSampler
from paddlenlp.trainer import TrainingArguments

from .config import PretrainConfig, PretrainError
from .corpus import (
    Corpus,
    CorpusStats,
    TokenizedSentence,
    corpus_statistics,
    read_word_list,
    tokenize_corpus,
)
from .packing import mask_sequence, pack_sequences
from .split import parse_split, split_documents


@dataclass
class PretrainData:
    """Packed training and held-out sequences, and the statistics of the corpus they came from."""

    train: List[TokenizedSentence]
    heldout: List[TokenizedSentence]
    stats: CorpusStats
    test: List[TokenizedSentence] = field(default_factory=list)


class PackedDataset(Dataset):
    """Packed training sequences; each row carries the seed of its masks, ``(seed, epoch, index)``.

    Indexed by ``index`` or by ``(index, epoch)`` as :class:`EpochBatchSampler` yields, so a
    sequence gets new masks every epoch (dynamic masking), yet the same ones in a resumed run,
    whatever the data loader prefetches.
    """

    def __init__(self, sequences: Sequence[TokenizedSentence], seed: int):
        self.sequences = list(sequences)
        self.seed = seed

    def __len__(self) -> int:
        return len(self.sequences)

    def __getitem__(self, key: Any) -> Dict[str, np.ndarray]:
        index, epoch = key if isinstance(key, tuple) else (key, 0)
        seq = self.sequences[index]
        return {"ids": seq.ids, "kinds": seq.kinds, "mask_seed": np.array([self.seed, epoch, index], dtype="int64")}


class EpochBatchSampler(DistributedBatchSampler):
    """paddle's ``DistributedBatchSampler`` (order set by the epoch alone), yielding ``(index, epoch)`` keys."""

    def __iter__(self):
        epoch = self.epoch
        for batch in super().__iter__():
            yield [(int(index), epoch) for index in batch]


class MaskedLMCollator:
    """Pad a batch, mask it (unless pre-masked) and flatten the masked positions for the LM head.

    Output: ``input_ids`` ``[batch, width]``; ``masked_positions`` ``[n]`` as ``row * width + pos``
    (the index ``ErnieLMPredictionHead`` gathers with); ``labels`` ``[n]``, the original ids.
    A row's masks are drawn from ``numpy.random.default_rng(row["mask_seed"])``.
    """

    def __init__(self, pad_id: int, mask_id: int, random_ids: np.ndarray, mask_ratio: float = 0.15):
        self.pad_id, self.mask_id, self.random_ids, self.mask_ratio = pad_id, mask_id, random_ids, mask_ratio

    def mask(self, row: Dict[str, np.ndarray]) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(input_ids, positions, labels)`` of one row."""
        if "labels" in row:
            return row["input_ids"], row["positions"], row["labels"]
        rng = np.random.default_rng(row["mask_seed"])
        return mask_sequence(row["ids"], row["kinds"], rng, self.mask_id, self.random_ids, self.mask_ratio)

    def __call__(self, rows: Sequence[Dict[str, np.ndarray]]) -> Dict[str, np.ndarray]:
        masked = [self.mask(row) for row in rows]
        width = max(len(ids) for ids, _, _ in masked)
        input_ids = np.full((len(rows), width), self.pad_id, dtype="int64")
        for b, (ids, _, _) in enumerate(masked):
            input_ids[b, : len(ids)] = ids
        positions = np.concatenate([b * width + pos for b, (_, pos, _) in enumerate(masked)]).astype("int64")
        labels = np.concatenate([lab for _, _, lab in masked]).astype("int64")
        return {"input_ids": input_ids, "masked_positions": positions, "labels": labels}


def prepare_data(config: PretrainConfig, corpus: Corpus, tokenizer: Any) -> PretrainData:
    """Tokenize, count, pack and split the corpus into training and held-out sequences."""
    words = read_word_list(config.wwm_words) if config.wwm_words else None
    tokenized = tokenize_corpus(corpus, tokenizer, words)
    stats = corpus_statistics(tokenized)

    def pack(documents: Sequence[Sequence[TokenizedSentence]]) -> List[TokenizedSentence]:
        return pack_sequences(documents, config.max_seq_length, tokenizer.cls_token_id, tokenizer.sep_token_id)

    if config.split is not None:
        parts = split_documents(tokenized.documents, parse_split(config.split))
        train, heldout, test = (pack(part) for part in parts)
        return PretrainData(train=train, heldout=heldout, stats=stats, test=test)
    train, heldout = split_heldout(pack(tokenized.documents), config.eval_ratio if config.eval_steps else 0.0, config.seed)
    return PretrainData(train=train, heldout=heldout, stats=stats)


def split_heldout(
    sequences: Sequence[TokenizedSentence], ratio: float, seed: int
) -> Tuple[List[TokenizedSentence], List[TokenizedSentence]]:
    """Hold out ``round(ratio × n)`` sequences (at least one when ``ratio > 0``), chosen with ``seed``."""
    if ratio <= 0:
        return list(sequences), []
    count = max(1, int(round(ratio * len(sequences))))
    if count >= len(sequences):
        raise PretrainError(
            f"the corpus packs into {len(sequences)} sequence(s): too few to hold out {ratio:.0%} for evaluation; "
            "add text or pass --eval-steps 0"
        )
    order = np.random.RandomState(seed).permutation(len(sequences))
    held = set(order[:count].tolist())
    return (
        [s for i, s in enumerate(sequences) if i not in held],
        [s for i, s in enumerate(sequences) if i in held],
    )


def masked_heldout_rows(
    sequences: Sequence[TokenizedSentence], collator: MaskedLMCollator, seed: int
) -> List[Dict[str, np.ndarray]]:
    """Mask the held-out sequences once, with their own seed, so every evaluation scores the same blanks."""
    rng = np.random.default_rng(seed)
    rows = []
    for seq in sequences:
        ids, positions, labels = mask_sequence(seq.ids, seq.kinds, rng, collator.mask_id, collator.random_ids, collator.mask_ratio)
        rows.append({"input_ids": ids, "positions": positions, "labels": labels})
    return rows


def replacement_ids(tokenizer: Any, vocab_size: int) -> np.ndarray:
    """Ids a masked token may be replaced with at random: the vocabulary without special tokens."""
    special = set(getattr(tokenizer, "all_special_ids", [])) | {tokenizer.unk_token_id}
    ids = np.array([i for i in range(vocab_size) if i not in special], dtype="int64")
    if len(ids) == 0:
        raise PretrainError("the vocabulary has no ordinary tokens")
    return ids


def check_enough_data(data: PretrainData, args: TrainingArguments, config: PretrainConfig) -> None:
    """A corpus that does not fill one global batch cannot train: say how much is missing."""
    needed = args.per_device_train_batch_size * max(1, args.dataset_world_size)
    if len(data.train) < needed:
        raise PretrainError(
            f"the corpus ({data.stats.tokens} tokens in {data.stats.sentences} sentences) packs into "
            f"{len(data.train)} training sequence(s) of at most {config.max_seq_length} tokens, fewer than one batch "
            f"of {needed}; add text, or lower --batch-size or --max-seq-length"
        )
