"""The bundle's tokenizer, rebuilt with the ``tokenizers`` library to split text exactly as training did.

>>> tokenizer = load_wordpiece(Path("bundle/vocab.txt"), manifest["encoding"]["tokenizer"])
>>> tokenizer.encode("球赛", add_special_tokens=False).ids
[1034, 2287]
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, List, Mapping, Sequence

from ..errors import BundleError

ISOLATED_CHARS = r"[\p{P}\p{S}\x{00AD}\x{00B2}\x{00BA}\x{3007}\x{00B5}\x{00D8}\x{014B}\x{01B1}]"
"""Characters PaddleNLP's ``BasicTokenizer`` makes tokens of their own: punctuation, symbols and a few
letters it lists explicitly (``_is_punctuation`` / ``_is_symbol``)."""


def read_vocabulary(vocab_file: Path) -> List[str]:
    """The tokens of a WordPiece ``vocab.txt``, one per line; ``BundleError`` when missing or empty."""
    if not vocab_file.is_file():
        raise BundleError(f"{vocab_file}: missing (the bundle's vocabulary)")
    try:
        tokens = vocab_file.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as exc:
        raise BundleError(f"{vocab_file}: not valid UTF-8 (byte {exc.start})") from None
    if not any(token.strip() for token in tokens):
        raise BundleError(f"{vocab_file}: the vocabulary is empty")
    return tokens


def load_wordpiece(vocab_file: Path, spec: Mapping[str, Any]) -> Any:
    """A ``tokenizers`` WordPiece tokenizer that splits text like PaddleNLP's ``ErnieTokenizer``.

    Same normalisation (control characters dropped, CJK characters split, lower-casing and accent
    stripping when ``do_lower_case``), ``##`` continuations and special tokens written literally in
    the text (``[MASK]``) kept whole. PaddleNLP's basic tokenizer isolates symbols (``℃``, emoji,
    ``+``) as well as punctuation, where BERT's isolates punctuation only, hence the regex split.
    """
    from tokenizers import Regex, Tokenizer, pre_tokenizers
    from tokenizers.models import WordPiece
    from tokenizers.normalizers import BertNormalizer

    if spec.get("type") != "wordpiece":
        raise BundleError(f"{vocab_file.parent}: tokenizer type {spec.get('type')!r} is not supported (only 'wordpiece')")
    tokens = read_vocabulary(vocab_file)
    unk = spec["unk_token"]
    if unk not in tokens:
        raise BundleError(f"{vocab_file}: the unknown-token {unk!r} is not in the vocabulary")
    model = WordPiece(
        WordPiece.read_file(str(vocab_file)),
        unk_token=unk,
        continuing_subword_prefix="##",
        max_input_chars_per_word=int(spec.get("max_input_chars_per_word", 100)),
    )
    tokenizer = Tokenizer(model)
    tokenizer.normalizer = BertNormalizer(
        clean_text=True, handle_chinese_chars=True, strip_accents=None, lowercase=bool(spec.get("do_lower_case", True))
    )
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Split(Regex(ISOLATED_CHARS), behavior="isolated")]
    )
    tokenizer.add_special_tokens(list(spec.get("special_tokens", [])))
    return tokenizer


def batch_tokenize(tokenizer: Any):
    """The encoder's ``tokenize`` for a ``tokenizers`` tokenizer: texts → ids without special tokens."""

    def tokenize(texts: Sequence[str]) -> List[List[int]]:
        return [encoding.ids for encoding in tokenizer.encode_batch(list(texts), add_special_tokens=False)]

    return tokenize
