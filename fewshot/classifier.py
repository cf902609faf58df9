"""``PromptClassifier``: build, fit, evaluate, predict, save and load a prompt classifier."""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Union

import numpy as np
import paddle
import paddle.nn.functional as F

from . import __version__
from .atomic import atomic_directory
from .data import Example, to_examples
from .errors import BundleError, DataError
from .labels import label_words_from_mapping, read_label_words
from .model import PromptModel
from .template import Template, pad_batch
from .trainer import EncodedDataset, PromptTrainer, PromptTrainingArguments, classification_metrics, make_collator
from .verbalizer import VERBALIZERS

logger = logging.getLogger(__name__)

DEFAULT_TEMPLATE = "{'text': 'text_a'}这句话的类别是{'mask'}{'mask'}"
CONFIG_NAME = "fewshot_config.json"
PROMPT_STATE_NAME = "prompt_state.pdparams"
PLM_DIR = "plm"
METRICS_NAME = "metrics.json"
FORMAT_VERSION = 1

LabelsArg = Union[str, os.PathLike, Mapping[str, Any], Sequence[str]]
DataArg = Union[str, os.PathLike, Sequence[Any]]


def load_pretrained(name_or_dir: str):
    """A PaddleNLP masked-LM model and its tokenizer, by model name (e.g. ``ernie-3.0-base-zh``) or local dir."""
    from paddlenlp.transformers import AutoModelForMaskedLM, AutoTokenizer

    return AutoModelForMaskedLM.from_pretrained(name_or_dir), AutoTokenizer.from_pretrained(name_or_dir)


def resolve_label_words(labels: LabelsArg) -> Dict[str, List[str]]:
    """Label words from a label file path, a ``{label: word(s)}`` mapping or a list of label names."""
    if isinstance(labels, (str, os.PathLike)):
        return read_label_words(labels)
    if isinstance(labels, Mapping):
        return label_words_from_mapping(labels)
    return label_words_from_mapping({label: [] for label in labels})


class PromptClassifier:
    """A few-shot text classifier: a masked-LM PLM, a template and a verbalizer.

    >>> clf = PromptClassifier("ernie-3.0-base-zh", labels="label.txt",
    ...                        template="{'text': 'text_a'}这条新闻的主题是{'mask'}{'mask'}")
    >>> clf.fit("train.txt", eval_data="dev.txt", max_steps=200)
    >>> clf.predict(["文登区这些公路及危桥将进入封闭施工"])
    ['news_car']
    """

    def __init__(
        self,
        model: str,
        labels: LabelsArg,
        template: str = DEFAULT_TEMPLATE,
        verbalizer: str = "manual",
        max_seq_length: int = 128,
        seed: Optional[int] = None,
        _plm: Any = None,
        _tokenizer: Any = None,
    ):
        if verbalizer not in VERBALIZERS:
            raise ValueError(f"verbalizer must be one of {', '.join(VERBALIZERS)}, got {verbalizer!r}")
        self.model_name = str(model)
        self.label_words = resolve_label_words(labels)
        self.labels = list(self.label_words)
        self.verbalizer_kind = verbalizer
        if seed is not None:
            paddle.seed(seed)
        plm, tokenizer = (_plm, _tokenizer) if _plm is not None else load_pretrained(self.model_name)
        self.tokenizer = tokenizer
        self.template = Template(template, tokenizer, max_seq_length)
        head = VERBALIZERS[verbalizer](self.label_words, tokenizer, self.template.num_masks, plm.cls.predictions)
        self.model = PromptModel(plm, self.template, head)
        self.model.eval()
        self.train_metrics: Dict[str, Any] = {}

    @property
    def max_seq_length(self) -> int:
        return self.template.max_seq_length

    def _examples(self, data: DataArg, labeled: bool) -> List[Example]:
        if isinstance(data, (str, os.PathLike)):
            return to_examples(data, labels=self.labels, labeled=labeled)
        if not labeled and data and all(isinstance(t, str) for t in data):
            return to_examples(list(data), labeled=False)
        return to_examples(data, labels=self.labels if labeled else None, labeled=labeled)

    def encode(self, examples: Sequence[Example], with_labels: bool = False) -> List[Dict[str, Any]]:
        """Template-encode examples (and their label ids) for the model."""
        label_ids = {label: i for i, label in enumerate(self.labels)}
        rows = []
        for example in examples:
            row: Dict[str, Any] = self.template.encode(example.text_a, example.text_b)
            if with_labels:
                row["labels"] = label_ids[example.label]
            rows.append(row)
        return rows

    def fit(self, train: DataArg, eval_data: Optional[DataArg] = None, **training_args: Any) -> Dict[str, Any]:
        """Train on labelled data; keyword arguments are ``PromptTrainingArguments`` fields.

        Returns the training metrics, plus the evaluation metrics on ``eval_data`` when given.
        """
        train_rows = self.encode(self._examples(train, labeled=True), with_labels=True)
        eval_rows = self.encode(self._examples(eval_data, labeled=True), with_labels=True) if eval_data else None
        keep_output = "output_dir" in training_args
        output_dir = training_args.pop("output_dir", None) or tempfile.mkdtemp(prefix="fewshot-train-")
        defaults = dict(
            per_device_train_batch_size=8,
            per_device_eval_batch_size=32,
            learning_rate=3e-5,
            num_train_epochs=10,
            logging_steps=10,
            save_strategy="no",
            evaluation_strategy="epoch" if eval_rows else "no",
            report_to=[],
            do_train=True,
        )
        defaults.update(training_args)
        args = PromptTrainingArguments(output_dir=output_dir, **defaults)
        trainer = PromptTrainer(
            model=self.model,
            args=args,
            train_dataset=EncodedDataset(train_rows),
            eval_dataset=EncodedDataset(eval_rows) if eval_rows else None,
            data_collator=make_collator(self.tokenizer.pad_token_id),
        )
        try:
            result = trainer.train()
        finally:
            if not keep_output:
                shutil.rmtree(output_dir, ignore_errors=True)
        self.model.eval()
        metrics = dict(result.metrics)
        if eval_data:
            metrics.update({f"eval_{k}": v for k, v in self.evaluate(eval_data).items()})
        self.train_metrics = metrics
        return metrics

    @paddle.no_grad()
    def _logits(self, rows: Sequence[Dict[str, Any]], batch_size: int) -> np.ndarray:
        """Class logits for encoded rows, batched by length (minimal padding), in input order."""
        self.model.eval()
        order = sorted(range(len(rows)), key=lambda i: len(rows[i]["input_ids"]))
        out = np.zeros([len(rows), len(self.labels)], dtype="float32")
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            batch = pad_batch([rows[i] for i in idx], self.tokenizer.pad_token_id)
            logits = self.model(**{k: paddle.to_tensor(v) for k, v in batch.items()})
            out[idx] = logits.numpy()
        return out

    def predict_proba(self, data: DataArg, batch_size: int = 32) -> np.ndarray:
        """Class probabilities, ``[n, num_labels]``, columns in ``self.labels`` order."""
        examples = self._examples(data, labeled=False)
        logits = self._logits(self.encode(examples), batch_size)
        return F.softmax(paddle.to_tensor(logits), axis=-1).numpy()

    def predict(self, data: DataArg, batch_size: int = 32) -> List[str]:
        """The most probable label of each text (or text pair, or row of a data file)."""
        proba = self.predict_proba(data, batch_size)
        return [self.labels[i] for i in proba.argmax(axis=-1)]

    def evaluate(self, data: DataArg, batch_size: int = 32, report: bool = False) -> Dict[str, Any]:
        """Accuracy and macro-F1 on labelled data; ``report=True`` adds a per-class report."""
        examples = self._examples(data, labeled=True)
        logits = self._logits(self.encode(examples), batch_size)
        gold = np.array([self.labels.index(e.label) for e in examples])
        return classification_metrics(logits.argmax(axis=-1), gold, self.labels, report=report)

    def config(self) -> Dict[str, Any]:
        """What ``load`` needs besides the weights, as written to ``fewshot_config.json``."""
        return {
            "format_version": FORMAT_VERSION,
            "fewshot_version": __version__,
            "base_model": self.model_name,
            "template": self.template.text,
            "max_seq_length": self.max_seq_length,
            "verbalizer": self.verbalizer_kind,
            "labels": self.labels,
            "label_words": self.label_words,
            "train_metrics": self.train_metrics,
        }

    def save(self, directory: Union[str, os.PathLike]) -> Path:
        """Write the classifier to ``directory`` atomically: a failed save keeps the old one."""
        with atomic_directory(directory) as tmp:
            self.model.plm.save_pretrained(str(tmp / PLM_DIR))
            self.tokenizer.save_pretrained(str(tmp / PLM_DIR))
            plm_ids = {id(p) for p in self.model.plm.parameters()}
            prompt_state = {k: v for k, v in self.model.state_dict().items() if id(v) not in plm_ids}
            if prompt_state:
                paddle.save(prompt_state, str(tmp / PROMPT_STATE_NAME))
            (tmp / CONFIG_NAME).write_text(json.dumps(self.config(), ensure_ascii=False, indent=2), encoding="utf-8")
            if self.train_metrics:
                (tmp / METRICS_NAME).write_text(json.dumps(self.train_metrics, indent=2), encoding="utf-8")
        return Path(directory)

    @classmethod
    def load(cls, directory: Union[str, os.PathLike]) -> "PromptClassifier":
        """Load a classifier written by ``save`` (or by ``fewshot-train --output``)."""
        directory = Path(directory)
        config = read_config(directory)
        plm_dir = directory / PLM_DIR
        if not (plm_dir / "config.json").is_file():
            raise BundleError(f"{plm_dir}: missing the pretrained model files (config.json)")
        plm, tokenizer = load_pretrained(str(plm_dir))
        clf = cls(
            str(plm_dir),
            labels=config["label_words"],
            template=config["template"],
            verbalizer=config["verbalizer"],
            max_seq_length=config["max_seq_length"],
            _plm=plm,
            _tokenizer=tokenizer,
        )
        clf.model_name = config.get("base_model", str(plm_dir))
        state_path = directory / PROMPT_STATE_NAME
        if state_path.is_file():
            state = paddle.load(str(state_path))
            missing, unexpected = clf.model.set_state_dict(state)
            if unexpected:
                raise BundleError(f"{state_path}: unexpected parameters {', '.join(unexpected)}")
        elif clf.model.prompt_parameters():
            raise BundleError(f"{state_path}: missing, but the template or verbalizer has trained parameters")
        clf.train_metrics = config.get("train_metrics", {})
        return clf


def read_config(directory: Path) -> Dict[str, Any]:
    """Read and check ``fewshot_config.json`` of a saved classifier."""
    path = Path(directory) / CONFIG_NAME
    if not path.is_file():
        raise BundleError(f"{directory}: not a saved PromptClassifier (no {CONFIG_NAME})")
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BundleError(f"{path}: not valid JSON ({exc})") from None
    missing = [k for k in ("format_version", "template", "label_words", "verbalizer", "max_seq_length") if k not in config]
    if missing:
        raise BundleError(f"{path}: missing key(s) {', '.join(missing)}")
    if config["format_version"] > FORMAT_VERSION:
        raise BundleError(f"{path}: format version {config['format_version']} is newer than this fewshot supports")
    return config


__all__ = ["PromptClassifier", "DataError", "load_pretrained"]
