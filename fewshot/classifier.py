"""``PromptClassifier``: build, fit, evaluate, predict, save and load a prompt classifier."""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
import paddle
import paddle.nn.functional as F

from . import __version__
from .atomic import atomic_directory
from .cpu_math import fast_cpu_math
from .data import Example, to_examples
from .errors import BundleError, DataError
from .hierarchy import DEFAULT_PATH_DELIMITER, HierarchyTask, hierarchy_from_labels, read_hierarchy
from .labels import label_words_from_mapping, read_label_words
from .model import ClsHeadModel, PromptModel
from .multilabel import (
    DEFAULT_LABEL_DELIMITER,
    MultiLabelHead,
    MultiLabelTask,
    compute_multilabel_metrics,
    prior_bias,
    sigmoid,
)
from .template import Template, format_part, pad_batch, parse_template
from .trainer import EncodedDataset, PromptTrainer, PromptTrainingArguments, classification_metrics, make_collator
from .verbalizer import VERBALIZERS

logger = logging.getLogger(__name__)

DEFAULT_TEMPLATE = "{'text': 'text_a'}这句话的类别是{'mask'}{'mask'}"
CONFIG_NAME = "fewshot_config.json"
PROMPT_STATE_NAME = "prompt_state.pdparams"
PLM_DIR = "plm"
METRICS_NAME = "metrics.json"
FORMAT_VERSION = 1
METHODS = ("prompt", "finetune", "zeroshot")
CONTENT_FREE_TEXTS = ("", "无", "。")
"""Inputs with no content, whose mean prediction estimates the label prior (Zhao et al. 2021)."""

LabelsArg = Union[str, os.PathLike, Mapping[str, Any], Sequence[str]]
DataArg = Union[str, os.PathLike, Sequence[Any]]
LabelTask = Union[MultiLabelTask, HierarchyTask]


def load_pretrained(name_or_dir: str):
    """A PaddleNLP masked-LM model and its tokenizer, by model name (e.g. ``ernie-3.0-base-zh``) or local dir."""
    from paddlenlp.transformers import AutoModelForMaskedLM, AutoTokenizer

    return AutoModelForMaskedLM.from_pretrained(name_or_dir), AutoTokenizer.from_pretrained(name_or_dir)


def text_only_template(template: str) -> str:
    """The template's text slots joined by ``{'sep'}``: the plain input of the fine-tuning baseline.

    ``"{'text': 'text_a'}这条新闻的主题是{'mask'}{'mask'}"`` → ``"{'text': 'text_a'}"``.
    """
    texts = [format_part(p) for p in parse_template(template) if p.kind == "text"]
    return "{'sep'}".join(texts)


def resolve_label_words(labels: LabelsArg) -> Dict[str, List[str]]:
    """Label words from a label file path, a ``{label: word(s)}`` mapping or a list of label names."""
    if isinstance(labels, (str, os.PathLike)):
        return read_label_words(labels)
    if isinstance(labels, Mapping):
        return label_words_from_mapping(labels)
    return label_words_from_mapping({label: [] for label in labels})


def build_task(
    labels: LabelsArg,
    multi_label: bool = False,
    hierarchical: bool = False,
    label_delimiter: str = DEFAULT_LABEL_DELIMITER,
    path_delimiter: str = DEFAULT_PATH_DELIMITER,
    thresholds: Optional[Any] = None,
    complete_paths: bool = False,
) -> Tuple[Dict[str, List[str]], Optional[LabelTask]]:
    """Label words and the task object (None for single-label classification).

    Hierarchical labels are node paths (``质量##混凝土``), read with ``read_hierarchy`` from a file or
    ``hierarchy_from_labels`` from a mapping or list; a node without words uses its last segment.
    """
    if multi_label and hierarchical:
        raise ValueError("choose multi_label=True or hierarchical=True, not both")
    if hierarchical:
        if isinstance(labels, (str, os.PathLike)):
            hierarchy = read_hierarchy(labels, path_delimiter)
        else:
            hierarchy = hierarchy_from_labels(labels, path_delimiter)
        return hierarchy.words, HierarchyTask(hierarchy, thresholds, complete_paths)
    label_words = resolve_label_words(labels)
    if multi_label:
        return label_words, MultiLabelTask(list(label_words), label_delimiter, thresholds)
    if thresholds is not None or complete_paths:
        raise ValueError("thresholds and complete_paths apply to multi_label / hierarchical classifiers only")
    return label_words, None


class PromptClassifier:
    """A few-shot text classifier: a masked-LM PLM, a template and a verbalizer.

    >>> clf = PromptClassifier("ernie-3.0-base-zh", labels="label.txt",
    ...                        template="{'text': 'text_a'}这条新闻的主题是{'mask'}{'mask'}")
    >>> clf.fit("train.txt", eval_data="dev.txt", max_steps=200)
    >>> clf.predict(["文登区这些公路及危桥将进入封闭施工"])
    ['news_car']

    ``method`` picks what is trained, so that baselines run in the same code base and budget:

    - ``"prompt"`` (default): the template's ``[MASK]`` slots scored by the verbalizer, PLM trained.
    - ``"finetune"``: a new linear head on the ``[CLS]`` hidden state (``ClsHeadModel``); the input
      is the template's text slots only (joined by ``[SEP]``), no prompt text, no masks.
    - ``"zeroshot"``: the manual verbalizer, never trained. ``fit`` changes no weights: it only
      re-estimates the calibration prior from the training texts (labels unused) when
      ``calibrate=True``, and returns the evaluation metrics on ``eval_data``.

    ``calibrate=True`` (zero-shot only) subtracts the log of the label prior from the logits
    (contextual calibration, Zhao et al. 2021), estimated from content-free inputs and, after
    ``fit``, from the unlabelled training texts; it counters the label-word bias of weak PLMs.
    """

    def __init__(
        self,
        model: str,
        labels: LabelsArg,
        template: str = DEFAULT_TEMPLATE,
        verbalizer: str = "manual",
        max_seq_length: int = 128,
        seed: Optional[int] = None,
        method: str = "prompt",
        calibrate: bool = False,
        multi_label: bool = False,
        hierarchical: bool = False,
        label_delimiter: str = DEFAULT_LABEL_DELIMITER,
        path_delimiter: str = DEFAULT_PATH_DELIMITER,
        thresholds: Optional[Any] = None,
        complete_paths: bool = False,
        _plm: Any = None,
        _tokenizer: Any = None,
    ):
        if verbalizer not in VERBALIZERS:
            raise ValueError(f"verbalizer must be one of {', '.join(VERBALIZERS)}, got {verbalizer!r}")
        if method not in METHODS:
            raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
        if calibrate and method != "zeroshot":
            raise ValueError(f"calibrate=True applies to method='zeroshot' only, got method={method!r}")
        if method == "zeroshot" and verbalizer != "manual":
            raise ValueError("method='zeroshot' needs verbalizer='manual' (a soft verbalizer is untrained)")
        self.method = method
        self.calibrate = calibrate
        self.model_name = str(model)
        self.label_words, self.task = build_task(
            labels, multi_label, hierarchical, label_delimiter, path_delimiter, thresholds, complete_paths
        )
        if self.task is not None and calibrate:
            raise ValueError("calibrate=True estimates a softmax prior; it does not apply to multi-label/hierarchical")
        self.labels = list(self.label_words)
        self.verbalizer_kind = verbalizer
        if seed is not None:
            paddle.seed(seed)
        plm, tokenizer = (_plm, _tokenizer) if _plm is not None else load_pretrained(self.model_name)
        self.tokenizer = tokenizer
        if method == "finetune":
            self.template = Template(text_only_template(template), tokenizer, max_seq_length)
            self.model: paddle.nn.Layer = ClsHeadModel(plm, len(self.labels))
        else:
            self.template = Template(template, tokenizer, max_seq_length)
            # A softmax over the labels (single-label) needs label log-probabilities only up to a constant.
            options = {"log_probs": self.task is not None} if verbalizer == "manual" else {}
            head = VERBALIZERS[verbalizer](
                self.label_words, tokenizer, self.template.num_masks, plm.cls.predictions, **options
            )
            if self.task is not None:
                head = MultiLabelHead(head, len(self.labels), log_odds=verbalizer == "manual")
            self.model = PromptModel(plm, self.template, head, calibrated=calibrate)
        self.model.eval()
        self.train_metrics: Dict[str, Any] = {}
        if calibrate:
            self.estimate_prior(CONTENT_FREE_TEXTS)

    def estimate_prior(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        """Set the calibration prior to the mean predicted distribution over ``texts``; returns it.

        Needs ``calibrate=True``. Texts may be empty strings (content-free inputs).
        """
        if not self.calibrate:
            raise ValueError("estimate_prior: this classifier was built with calibrate=False")
        if not texts:
            raise DataError("estimate_prior: no texts given")
        self.model.set_log_prior(np.zeros(len(self.labels), dtype="float32"))
        rows = [self.template.encode(text) for text in texts]
        logits = self._logits(rows, batch_size)
        shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
        prior = (shifted / shifted.sum(axis=1, keepdims=True)).mean(axis=0)
        self.model.set_log_prior(np.log(prior))
        return prior

    @property
    def max_seq_length(self) -> int:
        return self.template.max_seq_length

    def _examples(self, data: DataArg, labeled: bool) -> List[Example]:
        known = self.task.check if self.task is not None else self.labels
        if isinstance(data, (str, os.PathLike)):
            return to_examples(data, labels=known, labeled=labeled)
        if not labeled and data and all(isinstance(t, str) for t in data):
            return to_examples(list(data), labeled=False)
        if labeled and isinstance(self.task, MultiLabelTask):
            data = [self._join_label_list(row) for row in data]
        return to_examples(data, labels=known if labeled else None, labeled=labeled)

    def _join_label_list(self, row: Any) -> Any:
        """``("text", ["a", "b"])`` → ``("text", "a,b")``: in-memory multi-label rows may give lists."""
        if isinstance(row, (tuple, list)) and row and isinstance(row[-1], (list, tuple)):
            return (*row[:-1], self.task.delimiter.join(map(str, row[-1])))
        return row

    def encode(self, examples: Sequence[Example], with_labels: bool = False) -> List[Dict[str, Any]]:
        """Template-encode examples (and their label ids) for the model."""
        label_ids = {label: i for i, label in enumerate(self.labels)}
        rows = []
        for example in examples:
            row: Dict[str, Any] = self.template.encode(example.text_a, example.text_b)
            if with_labels:
                row["labels"] = self.task.target(example.label) if self.task else label_ids[example.label]
            rows.append(row)
        return rows

    def fit(
        self, train: DataArg, eval_data: Optional[DataArg] = None, tune_thresholds: bool = False, **training_args: Any
    ) -> Dict[str, Any]:
        """Train on labelled data; keyword arguments are ``PromptTrainingArguments`` fields.

        Returns the training metrics, plus the evaluation metrics on ``eval_data`` when given.
        ``tune_thresholds=True`` (multi-label / hierarchical) then tunes per-label thresholds on
        ``eval_data`` before evaluating on it.
        """
        if tune_thresholds and (self.task is None or not eval_data):
            raise ValueError("tune_thresholds=True needs a multi-label or hierarchical classifier and eval_data")
        if self.method == "zeroshot":
            return self._fit_zeroshot(train, eval_data)
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
        self._init_label_bias(train_rows, defaults["per_device_eval_batch_size"])
        trainer = PromptTrainer(
            model=self.model,
            args=args,
            train_dataset=EncodedDataset(train_rows),
            eval_dataset=EncodedDataset(eval_rows) if eval_rows else None,
            data_collator=make_collator(self.tokenizer.pad_token_id),
            **({"compute_metrics": compute_multilabel_metrics} if self.task is not None else {}),
        )
        try:
            result = trainer.train()
        finally:
            if not keep_output:
                shutil.rmtree(output_dir, ignore_errors=True)
        self.model.eval()
        metrics = dict(result.metrics)
        metrics["train_steps"] = int(result.global_step)
        if tune_thresholds:
            self.tune_thresholds(eval_data)
        if eval_data:
            metrics.update({f"eval_{k}": v for k, v in self.evaluate(eval_data).items()})
        self.train_metrics = metrics
        return metrics

    def _init_label_bias(self, rows: Sequence[Dict[str, Any]], batch_size: int) -> None:
        """Before a multi-label head's first training, start each label's logits at its base rate."""
        head = getattr(self.model, "verbalizer", None)
        if not isinstance(head, MultiLabelHead) or not head.is_fresh():
            return
        logits = self._logits(rows, batch_size)
        bias = prior_bias(logits, np.array([row["labels"] for row in rows]), head.bias.numpy())
        head.bias.set_value(paddle.to_tensor(bias))

    def _fit_zeroshot(self, train: DataArg, eval_data: Optional[DataArg]) -> Dict[str, Any]:
        """Zero-shot "training": no weight changes; calibrate on the training texts when enabled."""
        metrics: Dict[str, Any] = {"train_steps": 0}
        if self.calibrate:
            texts = [e.text_a for e in self._examples(train, labeled=True)]
            self.estimate_prior(texts)
            metrics["calibration_texts"] = len(texts)
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
        with fast_cpu_math():
            for start in range(0, len(order), batch_size):
                idx = order[start : start + batch_size]
                batch = pad_batch([rows[i] for i in idx], self.tokenizer.pad_token_id)
                logits = self.model(**{k: paddle.to_tensor(v) for k, v in batch.items()})
                out[idx] = logits.numpy()
        return out

    def predict_proba(self, data: DataArg, batch_size: int = 32) -> np.ndarray:
        """Class probabilities, ``[n, num_labels]``, columns in ``self.labels`` order.

        Multi-label and hierarchical classifiers give independent (sigmoid) probabilities per label / node.
        """
        examples = self._examples(data, labeled=False)
        logits = self._logits(self.encode(examples), batch_size)
        if self.task is not None:
            return sigmoid(logits)
        return F.softmax(paddle.to_tensor(logits), axis=-1).numpy()

    def predict(self, data: DataArg, batch_size: int = 32) -> List[Any]:
        """The most probable label of each text (or text pair, or row of a data file).

        Multi-label: the list of labels at or above their thresholds (``["盗窃", "抢劫"]``, maybe ``[]``);
        hierarchical: the most probable consistent path (``"质量##混凝土##养护"``).
        """
        proba = self.predict_proba(data, batch_size)
        if self.task is not None:
            return self.task.decode(proba)
        return [self.labels[i] for i in proba.argmax(axis=-1)]

    def evaluate(self, data: DataArg, batch_size: int = 32, report: bool = False) -> Dict[str, Any]:
        """Accuracy and macro-F1 on labelled data; ``report=True`` adds a per-class report.

        Multi-label: micro-F1, macro-F1, exact match. Hierarchical: per-level accuracy, exact match,
        tolerant accuracy and node micro/macro-F1 (see ``fewshot.hierarchy.hierarchy_metrics``).
        """
        examples = self._examples(data, labeled=True)
        logits = self._logits(self.encode(examples), batch_size)
        if self.task is not None:
            return self.task.metrics(sigmoid(logits), [e.label for e in examples], report=report)
        gold = np.array([self.labels.index(e.label) for e in examples])
        return classification_metrics(logits.argmax(axis=-1), gold, self.labels, report=report)

    def tune_thresholds(self, data: DataArg, batch_size: int = 32) -> Dict[str, float]:
        """Tune one decision threshold per label (or hierarchy node) on labelled dev data; returns them.

        Each label's threshold maximises that label's F1 on ``data`` (see
        ``fewshot.multilabel.tune_thresholds``); they are saved and exported with the classifier.
        """
        if self.task is None:
            raise ValueError("tune_thresholds: single-label classifiers predict the argmax and have no thresholds")
        examples = self._examples(data, labeled=True)
        probs = sigmoid(self._logits(self.encode(examples), batch_size))
        thresholds = self.task.tune(probs, [e.label for e in examples])
        return dict(zip(self.labels, map(float, thresholds)))

    def config(self) -> Dict[str, Any]:
        """What ``load`` needs besides the weights, as written to ``fewshot_config.json``."""
        return {
            "format_version": FORMAT_VERSION,
            "fewshot_version": __version__,
            "base_model": self.model_name,
            "template": self.template.text,
            "max_seq_length": self.max_seq_length,
            "verbalizer": self.verbalizer_kind,
            "method": self.method,
            "calibrate": self.calibrate,
            "labels": self.labels,
            "label_words": self.label_words,
            "train_metrics": self.train_metrics,
            **(self.task.config() if self.task is not None else {"task": "multi_class"}),
        }

    def _prompt_state(self) -> Dict[str, paddle.Tensor]:
        """The model's state outside the PLM's parameters (soft prompt, heads, biases, prior), by name."""
        plm_ids = {id(p) for p in self.model.plm.parameters()}
        return {k: v for k, v in self.model.state_dict().items() if id(v) not in plm_ids}

    def save(self, directory: Union[str, os.PathLike]) -> Path:
        """Write the classifier to ``directory`` atomically: a failed save keeps the old one."""
        with atomic_directory(directory) as tmp:
            self.model.plm.save_pretrained(str(tmp / PLM_DIR))
            self.tokenizer.save_pretrained(str(tmp / PLM_DIR))
            prompt_state = self._prompt_state()
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
            method=config.get("method", "prompt"),
            calibrate=bool(config.get("calibrate", False)),
            **task_arguments(config),
            _plm=plm,
            _tokenizer=tokenizer,
        )
        clf.model_name = config.get("base_model", str(plm_dir))
        state_path = directory / PROMPT_STATE_NAME
        expected = clf._prompt_state()
        if state_path.is_file():
            state = paddle.load(str(state_path))
            for problem, names in (("unexpected", set(state) - set(expected)), ("missing", set(expected) - set(state))):
                if names:
                    raise BundleError(f"{state_path}: {problem} parameters {', '.join(sorted(names))}")
            for name, value in state.items():
                if list(value.shape) != list(expected[name].shape):
                    raise BundleError(f"{state_path}: {name} has shape {list(value.shape)}, "
                                      f"the model expects {list(expected[name].shape)}")
                expected[name].set_value(value)
        elif expected:
            raise BundleError(f"{state_path}: missing, but the template or verbalizer has trained parameters")
        clf.train_metrics = config.get("train_metrics", {})
        return clf

    def export(
        self,
        bundle_dir: Union[str, os.PathLike],
        onnx: bool = True,
        opset: Optional[int] = None,
        fp16: bool = False,
        int8: bool = False,
    ) -> Path:
        """Write a deployment bundle (static graph, ONNX, tokenizer, manifest), like ``fewshot-export``.

        ``opset`` defaults to ``fewshot.export.DEFAULT_OPSET``; load the bundle with
        ``fewshot.inference.OnnxPredictor``.
        """
        from .export import DEFAULT_OPSET, export_bundle

        return export_bundle(self, bundle_dir, onnx=onnx, opset=opset or DEFAULT_OPSET, fp16=fp16, int8=int8)


def task_arguments(config: Mapping[str, Any]) -> Dict[str, Any]:
    """Constructor arguments that rebuild a saved classifier's task (multi-label thresholds, hierarchy)."""
    task = config.get("task", "multi_class")
    if task == "multi_label":
        return {
            "multi_label": True,
            "label_delimiter": config.get("label_delimiter", DEFAULT_LABEL_DELIMITER),
            "thresholds": config.get("thresholds"),
        }
    if task == "hierarchical":
        return {
            "hierarchical": True,
            "path_delimiter": config["hierarchy"]["delimiter"],
            "thresholds": config.get("thresholds"),
            "complete_paths": bool(config.get("complete_paths", False)),
        }
    if task != "multi_class":
        raise BundleError(f"{CONFIG_NAME}: unknown task {task!r} (expected multi_class, multi_label or hierarchical)")
    return {}


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
