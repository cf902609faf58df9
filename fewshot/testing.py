"""Tiny random models and synthetic tasks for tests and demos; nothing is downloaded.

``build_tiny_model`` writes a directory laid out like a real PaddleNLP ERNIE checkpoint
(``config.json``, ``model_state.pdparams``, ``vocab.txt``, ``tokenizer_config.json``,
``special_tokens_map.json``) so that ``ErnieForMaskedLM.from_pretrained(dir)`` and
``AutoTokenizer.from_pretrained(dir)`` load it like any other local model.
"""

from __future__ import annotations

import os
import random
import string
from typing import Dict, Iterable, List, Sequence, Tuple

from .data import Example, PathLike
from .pretraining.vocabulary import SPECIAL_TOKENS

_ASCII_CHARS = string.ascii_lowercase + string.digits

_TASK_CLASSES: Tuple[Tuple[str, str, str], ...] = (
    ("sports", "体育", "球赛跑"),
    ("finance", "财经", "股价钱"),
    ("weather", "天气", "雨雪风"),
)
"""(label, label word, cue characters) of the synthetic task."""

_NEUTRAL_CHARS = "的一是在了有和人这中大上个我他来们到地出就对会可年同工也能下过子说种面而方后多定行学所得进着等部度家里如高自起小"


def build_char_vocab(texts: Iterable[str], extra_tokens: Sequence[str] = ()) -> List[str]:
    """Return a vocabulary under which ERNIE's tokenizer maps none of ``texts`` to ``[UNK]``.

    ``SPECIAL_TOKENS`` come first, then, sorted: every word of ERNIE's basic tokenization
    (lower-cased, accents stripped; each CJK character and punctuation mark is its own
    word), every character of those words, ``##``-prefixed continuation characters, all
    ASCII letters and digits with and without ``##`` (so WordPiece can split any ASCII
    word), and ``extra_tokens`` verbatim.
    """
    from paddlenlp.transformers import BasicTokenizer

    basic = BasicTokenizer(do_lower_case=True)
    tokens = set(_ASCII_CHARS) | {"##" + char for char in _ASCII_CHARS}
    for text in texts:
        for word in basic.tokenize(text):
            tokens.add(word)
            tokens.update(word)
            tokens.update("##" + char for char in word[1:])
    for token in extra_tokens:
        if not token or any(char.isspace() for char in token):
            raise ValueError(f"extra token {token!r} is empty or contains whitespace")
        tokens.add(token)
    tokens.difference_update(SPECIAL_TOKENS)
    return list(SPECIAL_TOKENS) + sorted(tokens)


def build_tiny_model(
    output_dir: PathLike,
    texts: Iterable[str],
    hidden_size: int = 32,
    num_layers: int = 2,
    num_heads: int = 2,
    intermediate_size: int = 64,
    max_position_embeddings: int = 128,
    seed: int = 0,
    extra_tokens: Sequence[str] = (),
) -> str:
    """Write a randomly initialised ERNIE masked LM and its tokenizer to ``output_dir``.

    The vocabulary is :func:`build_char_vocab` of ``texts`` (include every text, template
    and label word the test will tokenize). Weights depend only on ``seed`` and the sizes:
    they are drawn on CPU after ``paddle.seed(seed)``, which reseeds Paddle's global
    generators. Returns ``output_dir`` as a string.
    """
    import paddle
    from paddlenlp.transformers import ErnieConfig, ErnieForMaskedLM, ErnieTokenizer

    vocab = build_char_vocab(texts, extra_tokens)
    os.makedirs(output_dir, exist_ok=True)
    vocab_file = os.path.join(output_dir, "vocab.txt")
    with open(vocab_file, "w", encoding="utf-8", newline="\n") as handle:
        handle.write("".join(token + "\n" for token in vocab))
    ErnieTokenizer(vocab_file).save_pretrained(output_dir)

    config = ErnieConfig(
        vocab_size=len(vocab),
        hidden_size=hidden_size,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        intermediate_size=intermediate_size,
        max_position_embeddings=max_position_embeddings,
        pad_token_id=0,
        hidden_act="gelu",
        type_vocab_size=4,
        use_task_id=False,
        hidden_dropout_prob=0.1,
        attention_probs_dropout_prob=0.1,
    )
    device = paddle.get_device()
    paddle.set_device("cpu")
    try:
        paddle.seed(seed)
        model = ErnieForMaskedLM(config)
    finally:
        paddle.set_device(device)
    model.save_pretrained(output_dir)
    return str(output_dir)


def build_shaped_model(output_dir: PathLike, vocab: Sequence[str], shape: str = "ernie-3.0-base-zh", seed: int = 0) -> str:
    """Write a randomly initialised ERNIE masked LM with the configuration PaddleNLP ships for ``shape``.

    ``vocab`` (special tokens first, e.g. a small model's ``vocab.txt`` lines) is padded with
    ``[unused0]``, ``[unused1]``, ... to the shape's vocabulary size, so texts tokenize as they do
    under ``vocab`` and every embedding row has a token. ``"ernie-3.0-base-zh"`` gives 12 layers,
    hidden 768, 12 heads, intermediate 3072, vocabulary 40,000, 2,048 positions. Returns ``output_dir``.
    """
    import paddle
    from paddlenlp.transformers import ErnieConfig, ErnieForMaskedLM, ErnieTokenizer
    from paddlenlp.transformers.ernie.configuration import ERNIE_PRETRAINED_INIT_CONFIGURATION

    if shape not in ERNIE_PRETRAINED_INIT_CONFIGURATION:
        raise ValueError(f"unknown ERNIE shape {shape!r}; PaddleNLP knows e.g. ernie-3.0-base-zh, ernie-3.0-nano-zh")
    config = ErnieConfig(**ERNIE_PRETRAINED_INIT_CONFIGURATION[shape])
    if len(vocab) > config.vocab_size:
        raise ValueError(f"vocabulary of {len(vocab)} tokens is larger than {shape}'s {config.vocab_size}")
    padded = list(vocab) + [f"[unused{i}]" for i in range(config.vocab_size - len(vocab))]
    os.makedirs(output_dir, exist_ok=True)
    vocab_file = os.path.join(output_dir, "vocab.txt")
    with open(vocab_file, "w", encoding="utf-8", newline="\n") as handle:
        handle.write("".join(token + "\n" for token in padded))
    ErnieTokenizer(vocab_file).save_pretrained(output_dir)
    device = paddle.get_device()
    paddle.set_device("cpu")
    try:
        paddle.seed(seed)
        model = ErnieForMaskedLM(config)
    finally:
        paddle.set_device(device)
    model.save_pretrained(output_dir)
    return str(output_dir)


def make_separable_task(
    n_per_class: int = 16, seed: int = 0, num_classes: int = 3
) -> Tuple[List[Example], List[Example], Dict[str, List[str]]]:
    """Return ``(train, test, label_words)`` of a synthetic Chinese task a tiny model can learn.

    Classes are ``sports`` (体育), ``finance`` (财经) and ``weather`` (天气); the first
    ``num_classes`` (2 or 3) are used. Each text is 4–8 neutral characters with 2–3 cue
    characters of its class mixed in (球赛跑 / 股价钱 / 雨雪风), e.g. ``的球上赛多``.
    Train and test hold ``n_per_class`` distinct texts per class each, shuffled; the same
    ``seed`` gives the same task. ``label_words`` maps each label to its two-character word.
    """
    if num_classes not in (2, 3):
        raise ValueError(f"num_classes must be 2 or 3, got {num_classes}")
    if n_per_class < 1:
        raise ValueError(f"n_per_class must be at least 1, got {n_per_class}")
    rng = random.Random(seed)
    classes = _TASK_CLASSES[:num_classes]
    train: List[Example] = []
    test: List[Example] = []
    for label, _, cues in classes:
        texts: List[str] = []
        seen = set()
        while len(texts) < 2 * n_per_class:
            text = _make_cue_text(rng, cues)
            if text not in seen:
                seen.add(text)
                texts.append(text)
        train.extend(Example(text, label=label) for text in texts[:n_per_class])
        test.extend(Example(text, label=label) for text in texts[n_per_class:])
    rng.shuffle(train)
    rng.shuffle(test)
    label_words = {label: [word] for label, word, _ in classes}
    return train, test, label_words


def _make_cue_text(rng: random.Random, cues: str) -> str:
    chars = [rng.choice(_NEUTRAL_CHARS) for _ in range(rng.randint(4, 8))]
    for cue in rng.sample(cues, rng.randint(2, 3)):
        chars.insert(rng.randint(0, len(chars)), cue)
    return "".join(chars)
