"""Unlabelled corpora for masked-LM pretraining: reading, sentence splitting, tokenizing into units, statistics.

The flow, for ``fewshot-pretrain`` and ``fewshot-corpus-stats``::

    files / directories ─▶ read_corpus ─▶ Corpus (documents as sentence lists; skipped files reported)
                        ─▶ tokenize_corpus ─▶ TokenizedCorpus (ids + unit kinds per sentence)
                        ─▶ corpus_statistics          (documents, sentences, tokens, [UNK] share)
                        ─▶ packing.pack_sequences ─▶ [CLS] s1 s2 [SEP] s3 … [SEP]   (≤ max_seq_len tokens)
                        ─▶ packing.mask_sequence           (15% of units: 80% [MASK], 10% random, 10% kept)

A *unit* is what masking treats as one piece: a character (a WordPiece token plus its ``##``
continuations), or, with a word list, a whole word made of several characters.
"""

from __future__ import annotations

import json
import logging
import re
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Set, Tuple

import numpy as np
from paddlenlp.transformers import AutoTokenizer

from ..atomic import atomic_file
from ..data.lines import PathLike, is_json_lines, iter_lines
from ..documents import json_text
from ..errors import DataError

logger = logging.getLogger(__name__)

DOC_PER_CHOICES = ("line", "file", "paragraph")
PADDLENLP_TEXT_FIELD = "text"
"""The JSON key of PaddleNLP's pretraining documents (``trans_to_json.py``'s ``--json_key`` default), used when
``--text-field`` is not given and the first object has it."""
SPECIAL = -1
"""Unit kind of a token that is never masked: [CLS], [SEP], [PAD], any special token met in the text."""
START = 1
"""Unit kind of a token that begins a unit (a character, or the first character of a listed word)."""
CONTINUATION = 0
"""Unit kind of a token that belongs to the unit before it (a ``##`` piece, or a later character of a word)."""

_LINE_BREAK = re.compile(r"[\r\n]+")
_SENTENCE_END = re.compile(r"(?:[。！？!?]|\.(?![0-9A-Za-z]))+[”’\"'）)」』》】]*")
_BINARY_PROBE = 8192
_MAX_KEYS_SHOWN = 6


class CorpusError(DataError):
    """The corpus cannot be used: no readable text, a JSON file without a text field, too little text."""


@dataclass
class Corpus:
    """Documents read from text files, each a list of sentences, and what was skipped on the way."""

    documents: List[List[str]]
    files: List[str] = field(default_factory=list)
    skipped: List[str] = field(default_factory=list)
    notes: List[str] = field(default_factory=list)
    """Lines skipped inside files that were read (bad JSON lines), one message per file."""


@dataclass
class TokenizedSentence:
    """Token ids of one sentence and the unit kind of each token (START, CONTINUATION or SPECIAL)."""

    ids: np.ndarray
    kinds: np.ndarray

    def __len__(self) -> int:
        return len(self.ids)


@dataclass
class TokenizedCorpus:
    """A corpus after tokenization: documents of tokenized sentences, plus what the statistics need."""

    documents: List[List[TokenizedSentence]]
    unk_id: int
    characters: int
    files: List[str] = field(default_factory=list)
    skipped: List[str] = field(default_factory=list)
    notes: List[str] = field(default_factory=list)


@dataclass
class CorpusStats:
    """Corpus statistics as printed by ``fewshot-corpus-stats`` and written to JSON."""

    files: int
    skipped_files: int
    documents: int
    sentences: int
    characters: int
    tokens: int
    unk_tokens: int
    unk_share: float
    distinct_tokens: int
    avg_tokens_per_sentence: float
    avg_tokens_per_document: float
    max_tokens_per_sentence: int
    skipped: List[str] = field(default_factory=list)
    notes: List[str] = field(default_factory=list)

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)

    def table(self) -> str:
        """The statistics as an aligned two-column text table."""
        rows = [
            ("files read", f"{self.files:,}"),
            ("files skipped", f"{self.skipped_files:,}"),
            ("documents", f"{self.documents:,}"),
            ("sentences", f"{self.sentences:,}"),
            ("characters", f"{self.characters:,}"),
            ("tokens", f"{self.tokens:,}"),
            ("distinct tokens", f"{self.distinct_tokens:,}"),
            ("avg tokens / sentence", f"{self.avg_tokens_per_sentence:.2f}"),
            ("avg tokens / document", f"{self.avg_tokens_per_document:.2f}"),
            ("max tokens / sentence", f"{self.max_tokens_per_sentence:,}"),
            ("[UNK] tokens", f"{self.unk_tokens:,} ({100 * self.unk_share:.3f}%)"),
            ("vocabulary coverage", f"{100 * (1 - self.unk_share):.3f}%"),
        ]
        width = max(len(name) for name, _ in rows)
        return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)


def split_sentences(text: str) -> List[str]:
    """Split text into stripped, non-empty sentences at line breaks and sentence ends.

    A sentence ends after a run of ``。！？!?`` or of ASCII ``.`` not followed by a letter or
    digit (so ``3.5`` and ``www.a.cn`` stay whole), with any closing quotes or brackets.

    >>> split_sentences("今天下雨了。你去吗？\\n好的!! 3.5元\\n\\n")
    ['今天下雨了。', '你去吗？', '好的!!', '3.5元']
    """
    sentences: List[str] = []
    for line in _LINE_BREAK.split(text):
        start = 0
        for match in _SENTENCE_END.finditer(line):
            _append_stripped(sentences, line[start : match.end()])
            start = match.end()
        _append_stripped(sentences, line[start:])
    return sentences


def _append_stripped(out: List[str], text: str) -> None:
    text = text.strip()
    if text:
        out.append(text)


def list_corpus_files(paths: Sequence[PathLike]) -> List[Path]:
    """The files named by ``paths``: files as given, directories searched recursively (sorted, no hidden files)."""
    if not paths:
        raise CorpusError("no corpus paths given")
    files: List[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            found = sorted(
                p for p in path.rglob("*") if p.is_file() and not any(part.startswith(".") for part in p.relative_to(path).parts)
            )
            if not found:
                raise CorpusError(f"{path}: directory has no files")
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            raise CorpusError(f"{path}: no such file or directory")
    return files


def read_corpus(
    paths: Sequence[PathLike],
    doc_per: str = "line",
    text_field: Optional[str] = None,
) -> Corpus:
    """Read documents from text files and directories.

    ``doc_per="line"``: every non-blank line (or JSON object) is one document; ``"file"``: each
    file is one document; ``"paragraph"``: documents are separated by blank lines (the raw files
    PaddleNLP's ``trans_to_json.py`` starts from; a JSON object is still one document).
    ``.json``/``.jsonl`` files are JSON lines whose ``text_field`` holds the text (default
    ``text``, PaddleNLP's data-preparation key, when the first object has it). Empty, binary and non-UTF-8 files are skipped and reported (``corpus/a.bin:
    binary file (NUL bytes), skipped``) in ``Corpus.skipped`` and the log; a corpus left with no
    text raises :class:`CorpusError`.
    """
    if doc_per not in DOC_PER_CHOICES:
        raise CorpusError(f"doc_per must be one of {', '.join(DOC_PER_CHOICES)}, got {doc_per!r}")
    corpus = Corpus(documents=[])
    files = list_corpus_files(paths)
    for path in files:
        texts, problem, note = _read_file_texts(path, text_field, doc_per == "paragraph")
        if problem:
            _skip(corpus, f"{path}: {problem}")
            continue
        if note:
            corpus.notes.append(f"{path}: {note}")
            logger.warning("%s: %s", path, note)
        corpus.files.append(str(path))
        documents = [split_sentences(text) for text in texts]
        if doc_per == "file":
            documents = [[sentence for doc in documents for sentence in doc]]
        corpus.documents.extend(doc for doc in documents if doc)
    if not corpus.documents:
        detail = f": {'; '.join(corpus.skipped[:3])}" if corpus.skipped else ""
        raise CorpusError(f"no text in the corpus ({len(files)} file(s) read, {len(corpus.skipped)} skipped){detail}")
    return corpus


def _skip(corpus: Corpus, message: str) -> None:
    corpus.skipped.append(message)
    logger.warning(message)


def _read_file_texts(
    path: Path, text_field: Optional[str], paragraphs: bool = False
) -> Tuple[List[str], Optional[str], Optional[str]]:
    """``(texts, skip reason, note)``: a file's non-blank lines (or, with ``paragraphs``, its runs of
    non-blank lines) or JSON texts, or why the file is skipped."""
    try:
        with open(path, "rb") as handle:
            if b"\x00" in handle.read(_BINARY_PROBE):
                return [], "binary file (NUL bytes), skipped", None
            handle.seek(0)
            lines = []
            paragraph_breaks = set()
            for number, _, line in iter_lines(handle):
                if isinstance(line, DataError):
                    return [], f"{str(line)[:-1]} on line {number}), skipped", None
                if line.strip():
                    lines.append((number, line))
                else:
                    paragraph_breaks.add(len(lines))
    except OSError as exc:
        return [], f"cannot read ({exc.strerror}), skipped", None
    if not lines:
        return [], "empty file, skipped", None
    if is_json_lines(path):
        return _json_texts(path, lines, text_field)
    if paragraphs:
        return _paragraphs([line for _, line in lines], paragraph_breaks), None, None
    return [line for _, line in lines], None, None


def _paragraphs(lines: List[str], breaks: Set[int]) -> List[str]:
    """Join the lines between blank lines (``breaks`` holds the index of the line after each blank)."""
    texts: List[str] = []
    for index, line in enumerate(lines):
        if index in breaks or not texts:
            texts.append(line)
        else:
            texts[-1] += "\n" + line
    return texts


def _json_texts(
    path: Path, lines: List[Tuple[int, str]], text_field: Optional[str]
) -> Tuple[List[str], Optional[str], Optional[str]]:
    """The ``text_field`` string of each JSON line; a note names the first of any lines skipped."""
    rows = []
    bad: List[str] = []
    for number, line in lines:
        try:
            rows.append((number, json.loads(line)))
        except json.JSONDecodeError as exc:
            bad.append(f"line {number}: invalid JSON ({exc.msg})")
    first = rows[0][1] if rows else None
    shown = ", ".join(sorted(first)[:_MAX_KEYS_SHOWN]) if isinstance(first, dict) and first else "none"
    if text_field is None and isinstance(first, dict) and PADDLENLP_TEXT_FIELD in first:
        text_field = PADDLENLP_TEXT_FIELD
    if text_field is None:
        raise CorpusError(f"{path}: JSON lines need a text field (--text-field); the first object has keys {shown}")
    texts = []
    for number, row in rows:
        value = row.get(text_field) if isinstance(row, dict) else None
        if isinstance(value, str) and value.strip():
            texts.append(value)
        elif value is None or isinstance(value, str):
            bad.append(f"line {number}: no text in '{text_field}'")
        else:
            bad.append(f"line {number}: '{text_field}' is not a string")
    if not texts:
        raise CorpusError(f"{path}: no object has a text in '{text_field}' (the first object has keys {shown})")
    note = f"{len(bad)} JSON line(s) skipped (first: {bad[0]})" if bad else None
    return texts, None, note


def read_word_list(path: PathLike) -> Set[str]:
    """Words for whole-word masking: the first whitespace-separated field of each line, lower-cased.

    Accepts plain word lists and jieba-style dictionaries (``word freq tag``). Single
    characters are dropped: they are units anyway.
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise CorpusError(f"{path}: word list is not valid UTF-8 (byte {exc.start})") from None
    except OSError as exc:
        raise CorpusError(f"{path}: cannot read word list ({exc.strerror})") from None
    words = {line.split()[0].lower() for line in text.splitlines() if line.strip()}
    words = {word for word in words if len(word) > 1}
    if not words:
        raise CorpusError(f"{path}: word list has no words of two or more characters")
    return words


def tokenize_sentence(sentence: str, tokenizer: Any, words: Optional[Set[str]] = None) -> TokenizedSentence:
    """Token ids of ``sentence`` and each token's unit kind.

    Without ``words`` every token starts a unit except ``##`` continuations; with ``words``,
    listed words (longest match first, left to right) become single units.

    >>> tokenize_sentence("北京大学", tok, words={"北京", "北京大学"}).kinds   # doctest: +SKIP
    array([1, 0, 0, 0], dtype=int8)
    """
    tokens = tokenizer.tokenize(sentence)
    ids = np.asarray(tokenizer.convert_tokens_to_ids(tokens), dtype="int64").reshape(-1)
    kinds = np.array([CONTINUATION if t.startswith("##") else START for t in tokens], dtype="int8")
    special = set(getattr(tokenizer, "all_special_ids", []))
    if special and len(ids):
        kinds[np.isin(ids, list(special))] = SPECIAL
    if words:
        _merge_words(tokens, kinds, words)
    return TokenizedSentence(ids=ids, kinds=kinds)


def _merge_words(tokens: Sequence[str], kinds: np.ndarray, words: Set[str]) -> None:
    """Turn the units spelling each listed word into one unit (forward maximum matching), in place."""
    longest = max(len(word) for word in words)
    units = _unit_spans(kinds)
    pieces = [t[2:] if t.startswith("##") else t for t in tokens]
    k = 0
    while k < len(units):
        best, text = k, ""
        for j in range(k, len(units)):
            if j > k and units[j][0] != units[j - 1][1]:
                break
            text += "".join(pieces[units[j][0] : units[j][1]])
            if len(text) > longest:
                break
            if j > k and text in words:
                best = j
        for j in range(k + 1, best + 1):
            kinds[units[j][0]] = CONTINUATION
        k = best + 1


def _unit_spans(kinds: np.ndarray) -> List[Tuple[int, int]]:
    """``(start, end)`` of each unit: a START token and the CONTINUATION tokens after it."""
    spans = []
    for start in np.flatnonzero(kinds == START):
        end = int(start) + 1
        while end < len(kinds) and kinds[end] == CONTINUATION:
            end += 1
        spans.append((int(start), end))
    return spans


def tokenize_corpus(corpus: Corpus, tokenizer: Any, words: Optional[Set[str]] = None) -> TokenizedCorpus:
    """Tokenize every sentence; keeps the document structure and the skipped-file report."""
    from tqdm.auto import tqdm

    documents = []
    characters = 0
    progress = tqdm(corpus.documents, desc="tokenizing", unit="doc", disable=len(corpus.documents) < 5000)
    for doc in progress:
        documents.append([tokenize_sentence(sentence, tokenizer, words) for sentence in doc])
        characters += sum(len("".join(sentence.split())) for sentence in doc)
    return TokenizedCorpus(
        documents=documents,
        unk_id=int(tokenizer.unk_token_id),
        characters=characters,
        files=list(corpus.files),
        skipped=list(corpus.skipped),
        notes=list(corpus.notes),
    )


def corpus_statistics(corpus: TokenizedCorpus) -> CorpusStats:
    """Documents, sentences, tokens, averages and the share of [UNK] tokens of a tokenized corpus."""
    lengths = [len(s) for doc in corpus.documents for s in doc]
    tokens = sum(lengths)
    counts: Counter = Counter()
    for doc in corpus.documents:
        for sentence in doc:
            counts.update(sentence.ids.tolist())
    unk = counts.get(corpus.unk_id, 0)
    documents = len(corpus.documents)
    sentences = len(lengths)
    return CorpusStats(
        files=len(corpus.files),
        skipped_files=len(corpus.skipped),
        documents=documents,
        sentences=sentences,
        characters=corpus.characters,
        tokens=tokens,
        unk_tokens=unk,
        unk_share=unk / tokens if tokens else 0.0,
        distinct_tokens=len(counts),
        avg_tokens_per_sentence=tokens / sentences if sentences else 0.0,
        avg_tokens_per_document=tokens / documents if documents else 0.0,
        max_tokens_per_sentence=max(lengths, default=0),
        skipped=list(corpus.skipped),
        notes=list(corpus.notes),
    )


def load_tokenizer(name_or_dir: str) -> Any:
    """The tokenizer of a PaddleNLP model name or a local model directory."""
    return AutoTokenizer.from_pretrained(name_or_dir)


def write_stats(stats: CorpusStats, path: PathLike) -> None:
    """Write the statistics as JSON (UTF-8, indented)."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(path, "the corpus statistics") as tmp:
        tmp.write_text(json_text(stats.to_dict()), encoding="utf-8")


def measure_corpus(
    paths: Sequence[PathLike], model: str, doc_per: str = DOC_PER_CHOICES[0], text_field: Optional[str] = None,
    wwm_words: Optional[str] = None,
) -> CorpusStats:
    """Read ``paths``, tokenize with ``model``'s tokenizer (and whole words of ``wwm_words``), count."""
    corpus = read_corpus(paths, doc_per=doc_per, text_field=text_field)
    words = read_word_list(wwm_words) if wwm_words else None
    return corpus_statistics(tokenize_corpus(corpus, load_tokenizer(model), words))
