"""PaddleNLP's few-shot checkpoint directory, read without Paddle: what it holds and its two JSON files.

PaddleNLP's ``PromptTrainer`` writes, into its output (or ``checkpoint-N``) directory::

    model_state.pdparams      the whole prompt model's state (pickle): plm.*, template.*, verbalizer.*
    template_config.json      line 1: the template as a JSON list of parts; line 2: {"class": "ManualTemplate"}
    verbalizer_config.json    {"label": ["word", ...]} (labels sorted)
    vocab.txt, tokenizer_config.json, ...   the tokenizer

>>> template_text([{"text": "text_a"}, {"hard": "主题是"}, {"soft": ["[UNK]"]}, {"mask": None}])
"{'text': 'text_a'}{'hard': '主题是'}{'soft': None, 'length': 1}{'mask': None}"
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Sequence, Union

from ..data.labels import read_label_words
from ..errors import BundleError

WEIGHTS_NAME = "model_state.pdparams"
TEMPLATE_CONFIG_NAME = "template_config.json"
VERBALIZER_CONFIG_NAME = "verbalizer_config.json"
TRAINING_ARGS_NAME = "training_args.bin"
TEMPLATE_CLASSES = ("ManualTemplate", "SoftTemplate")


@dataclass(frozen=True)
class PaddleNLPCheckpoint:
    """The parts of a PaddleNLP few-shot checkpoint that fewshot reads."""

    directory: Path
    template: str
    template_class: str
    label_words: Dict[str, List[str]]

    @property
    def weights(self) -> Path:
        return self.directory / WEIGHTS_NAME

    @property
    def has_tokenizer(self) -> bool:
        return (self.directory / "vocab.txt").is_file() or (self.directory / "tokenizer_config.json").is_file()


def read_checkpoint(directory: Union[str, Path]) -> PaddleNLPCheckpoint:
    """Check the layout and read the template and label words; ``BundleError`` naming what is missing."""
    directory = Path(directory)
    if not directory.is_dir():
        raise BundleError(f"{directory}: not a directory")
    for name in (WEIGHTS_NAME, TEMPLATE_CONFIG_NAME, VERBALIZER_CONFIG_NAME):
        if not (directory / name).is_file():
            raise BundleError(f"{directory}: no {name}; not a checkpoint written by PaddleNLP's PromptTrainer "
                              f"(expected {WEIGHTS_NAME}, {TEMPLATE_CONFIG_NAME}, {VERBALIZER_CONFIG_NAME})")
    template, template_class = read_template_config(directory / TEMPLATE_CONFIG_NAME)
    words = read_label_words(directory / VERBALIZER_CONFIG_NAME)
    label_words = {label: words[label] for label in sorted(words)}
    return PaddleNLPCheckpoint(directory, template, template_class, label_words)


def template_argument(value: str) -> str:
    """A template given on a command line: the text itself, or the template in PaddleNLP's
    ``template_config.json`` when ``value`` names such a file (not read as a prompt text).

    ``"这条新闻的主题是"`` → itself; ``"ckpt/template_config.json"`` → ``"{'text': 'text_a'}...{'mask': None}"``.
    """
    path = Path(value)
    if value.endswith(".json") and path.is_file():
        return read_template_config(path)[0]
    return value


def read_template_config(path: Path) -> tuple:
    """``(template text, template class)`` from PaddleNLP's ``template_config.json``."""
    try:
        lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BundleError(f"{path}: not PaddleNLP's template_config.json ({exc})") from None
    if not lines:
        raise BundleError(f"{path}: empty")
    template_class = lines[1].get("class", "") if len(lines) > 1 and isinstance(lines[1], dict) else "ManualTemplate"
    if template_class not in TEMPLATE_CLASSES:
        raise BundleError(f"{path}: a {template_class} cannot be imported (supported: {', '.join(TEMPLATE_CLASSES)})")
    prompt = lines[0]
    if isinstance(prompt, str):
        return prompt, template_class
    if not isinstance(prompt, list) or not all(isinstance(part, dict) for part in prompt):
        raise BundleError(f"{path}: line 1 must be the template as a string or a list of parts")
    return template_text(prompt), template_class


def template_text(parts: Sequence[Dict[str, Any]]) -> str:
    """A template in PaddleNLP's string syntax from its parsed parts (JSON null → None).

    A ``SoftTemplate`` saves random soft tokens as a list of placeholder tokens
    (``{"soft": ["[UNK]", "[UNK]"]}``): that is ``{'soft': None, 'length': 2}`` (the trained
    embeddings replace any initialisation).
    """
    text = []
    for part in parts:
        if isinstance(part.get("soft"), list):
            part = {**part, "soft": None, "length": len(part["soft"])}
        text.append("{" + ", ".join(f"{key!r}: {value!r}" for key, value in part.items()) + "}")
    return "".join(text)
