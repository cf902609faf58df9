"""``PromptClassifier``: build, fit, evaluate, predict, save, load and export a prompt classifier.

>>> clf = PromptClassifier("ernie-3.0-base-zh", labels="label.txt",
...                        template="{'text': 'text_a'}这条新闻的主题是{'mask'}{'mask'}")
>>> clf.fit("train.txt", eval_data="dev.txt", max_steps=200)["eval_accuracy"]
0.55
>>> clf.predict("文登区这些公路及危桥将进入封闭施工")
['news_car']
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import fields as dataclass_fields
from pathlib import Path
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Union

import numpy as np
import paddle
from safetensors.numpy import load_file as load_safetensors
from safetensors.numpy import save_file as save_safetensors

from . import __version__
from .analysis.explain import explain_pairs
from .atomic import atomic_directory, recover
from .data import Example, read_examples, to_examples
from .data.inputs import TextInputs, prediction_pairs
from .documents import json_text, read_json_document
from .errors import BundleError, DataError, FewshotError
from .export.bundle import export_bundle
from .export.convert import DEFAULT_OPSET
from .prompt.heads import SigmoidHead, build_head, prior_bias
from .prompt.model import ClsHeadModel, PromptModel
from .prompt.pretrained import load_pretrained
from .prompt.verbalizers import VERBALIZERS
from .tasks import (
    DEFAULT_LABEL_DELIMITER,
    DEFAULT_PATH_DELIMITER,
    LabelsArg,
    Task,
    build_task,
    task_from_config,
)
from .template import Row, Template, format_part, pad_batch, parse_template
from .training.arguments import PromptTrainingArguments
from .training.cpu_math import fast_cpu_math
from .training.datasets import ListDataset
from .training.distributed import write_once
from .training.rng import preserved_random_state, seeded
from .training.trainer import PromptTrainer, make_collator

DEFAULT_TEMPLATE = "{'text': 'text_a'}这句话的类别是{'mask'}{'mask'}"
DEFAULT_MAX_SEQ_LENGTH = 128
DEFAULT_BATCH_SIZE = 32
CONFIG_NAME = "fewshot_config.json"
PROMPT_STATE_NAME = "prompt_state.safetensors"
PICKLED_PROMPT_STATE_NAME = "prompt_state.pdparams"
PICKLED_WEIGHTS_NAME = "model_state.pdparams"
PLM_DIR = "plm"
METRICS_NAME = "metrics.json"
FORMAT_VERSION = 2
METHODS = ("prompt", "finetune", "zeroshot")
CONTENT_FREE_TEXTS = ("", "无", "。")
"""Inputs with no content, whose mean prediction estimates the label prior (Zhao et al. 2021)."""
CONFIG_KEYS = ("template", "label_words", "verbalizer", "max_seq_length")

DataArg = Union[str, "os.PathLike[str]", Iterable[Any]]


def text_only_template(template: str) -> str:
    """The template's text slots joined by ``{'sep'}``: the plain input of the fine-tuning baseline.

    ``"{'text': 'text_a'}这条新闻的主题是{'mask'}{'mask'}"`` → ``"{'text': 'text_a'}"``.
    """
    texts = [format_part(p) for p in parse_template(template) if p.kind == "text"]
    return "{'sep'}".join(texts)


def training_arguments(output_dir: str, options: Mapping[str, Any]) -> PromptTrainingArguments:
    """``PromptTrainingArguments`` from ``fit``'s keyword arguments; unknown names are a ``FewshotError``."""
    known = {f.name for f in dataclass_fields(PromptTrainingArguments)}
    unknown = sorted(set(options) - known)
    if unknown:
        raise FewshotError(f"fit: unknown training argument(s) {', '.join(unknown)} "
                           "(see fewshot.training.arguments.PromptTrainingArguments)")
    try:
        return PromptTrainingArguments(output_dir=output_dir, **options)
    except (ValueError, TypeError, AssertionError) as exc:
        raise FewshotError(f"fit: invalid training arguments ({exc})") from None


class PromptClassifier:
    """A few-shot text classifier: a masked-LM PLM, a template, a verbalizer and a task.

    ``method`` picks what is trained, so that baselines run in the same code base and budget:

    - ``"prompt"`` (default): the template's ``[MASK]`` slots scored by the verbalizer, PLM trained.
    - ``"finetune"``: a new linear head on the ``[CLS]`` hidden state (``ClsHeadModel``); the input
      is the template's text slots only (joined by ``[SEP]``), no prompt text, no masks.
    - ``"zeroshot"``: the manual verbalizer, never trained. ``fit`` changes no weights: it only
      re-estimates the calibration prior from the training texts (labels unused) when
      ``calibrate=True``, and returns the evaluation metrics on ``eval_data``.

    ``multi_label=True`` / ``hierarchical=True`` choose the task (see ``fewshot.tasks``);
    ``calibrate=True`` (zero-shot, single-label) subtracts the log of the label prior from the
    logits (contextual calibration, Zhao et al. 2021). ``seed`` makes the new weights (soft
    prompt, heads) reproducible without touching the global random generators.

    Every bad argument is a ``FewshotError`` raised before the pretrained model loads.
    """

    def __init__(
        self,
        model: str,
        labels: LabelsArg,
        template: str = DEFAULT_TEMPLATE,
        verbalizer: str = "manual",
        max_seq_length: int = DEFAULT_MAX_SEQ_LENGTH,
        seed: Optional[int] = None,
        method: str = "prompt",
        calibrate: bool = False,
        multi_label: bool = False,
        hierarchical: bool = False,
        label_delimiter: str = DEFAULT_LABEL_DELIMITER,
        path_delimiter: str = DEFAULT_PATH_DELIMITER,
        thresholds: Optional[Any] = None,
        complete_paths: bool = False,
    ):
        label_words, task = build_task(
            labels, multi_label, hierarchical, label_delimiter, path_delimiter, thresholds, complete_paths
        )
        self._setup(str(model), label_words, task, template, verbalizer, max_seq_length, method, calibrate, seed)

    @classmethod
    def from_task(
        cls,
        model: str,
        task: Task,
        label_words: Mapping[str, List[str]],
        template: str = DEFAULT_TEMPLATE,
        verbalizer: str = "manual",
        max_seq_length: int = DEFAULT_MAX_SEQ_LENGTH,
        method: str = "prompt",
        calibrate: bool = False,
        seed: Optional[int] = None,
        plm: Any = None,
        tokenizer: Any = None,
    ) -> "PromptClassifier":
        """A classifier for an existing ``Task`` object (what ``load`` uses); ``plm``/``tokenizer``
        reuse an already loaded pretrained model instead of loading ``model``."""
        clf = cls.__new__(cls)
        clf._setup(str(model), dict(label_words), task, template, verbalizer, max_seq_length, method, calibrate, seed,
                   plm, tokenizer)
        return clf

    def _setup(
        self, model_name: str, label_words: Dict[str, List[str]], task: Task, template: str, verbalizer: str,
        max_seq_length: int, method: str, calibrate: bool, seed: Optional[int], plm: Any = None, tokenizer: Any = None,
    ) -> None:
        if verbalizer not in VERBALIZERS:
            raise FewshotError(f"verbalizer must be one of {', '.join(VERBALIZERS)}, got {verbalizer!r}")
        if method not in METHODS:
            raise FewshotError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
        if calibrate and method != "zeroshot":
            raise FewshotError(f"calibrate=True applies to method='zeroshot' only, got method={method!r}")
        if calibrate:
            task.require("calibrate", "calibrate=True (a softmax prior)")
        if method == "zeroshot" and verbalizer != "manual":
            raise FewshotError("method='zeroshot' needs verbalizer='manual' (a soft verbalizer is untrained)")
        if list(label_words) != list(task.labels):
            raise FewshotError("label words must be given for exactly the task's labels, in the same order")
        text = text_only_template(template) if method == "finetune" else template
        parse_template(text)
        self.model_name = model_name
        self.method = method
        self.calibrate = calibrate
        self.task = task
        self.label_words = label_words
        self.verbalizer_kind = verbalizer
        self.train_metrics: Dict[str, Any] = {}
        with seeded(seed):
            if plm is None:
                plm, tokenizer = load_pretrained(model_name)
            self.tokenizer = tokenizer
            self.template = Template(text, tokenizer, max_seq_length)
            if method == "finetune":
                self.model: paddle.nn.Layer = ClsHeadModel(plm, len(self.labels))
            else:
                head = build_head(task, verbalizer, label_words, tokenizer, self.template.num_masks, plm.cls.predictions)
                self.model = PromptModel(plm, self.template, head, calibrated=calibrate)
        self.model.eval()
        if calibrate:
            self.estimate_prior(CONTENT_FREE_TEXTS)

    @property
    def labels(self) -> List[str]:
        """The label of each output column."""
        return self.task.labels

    @property
    def classes_(self) -> np.ndarray:
        """The label of each probability column (scikit-learn's name)."""
        return np.array(self.labels, dtype=object)

    @property
    def max_seq_length(self) -> int:
        return self.template.max_seq_length

    def estimate_prior(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        """Set the calibration prior to the mean predicted distribution over ``texts``; returns it.

        Needs ``calibrate=True``. Texts may be empty strings (content-free inputs).
        """
        if not self.calibrate:
            raise FewshotError("estimate_prior: this classifier was built with calibrate=False")
        if not texts:
            raise DataError("estimate_prior: no texts given")
        self.model.set_log_prior(np.zeros(len(self.labels), dtype="float32"))
        rows = [self.template.encode(text) for text in texts]
        prior = self.task.activate(self._logits(rows, batch_size), temperature=1.0).mean(axis=0)
        self.model.set_log_prior(np.log(prior))
        return prior

    def _examples(self, data: DataArg, labeled: bool = True) -> List[Example]:
        """Checked examples of a data file (path) or in-memory rows; the template's text slots must be there."""
        if isinstance(data, (str, os.PathLike)):
            examples, source = read_examples(data, labels=self.task.check, labeled=labeled), str(data)
        else:
            rows = (self._with_label_field(row) for row in data) if labeled else data
            examples, source = to_examples(rows, labels=self.task.check if labeled else None, labeled=labeled), "rows"
        if self.template.needs_text_b and examples[0].text_b is None:
            raise DataError(f"{source}: the template uses text_b, but the data has one text per row")
        return examples

    def _with_label_field(self, row: Any) -> Any:
        """An in-memory row with its label as the task reads it (``("t", ["a", "b"])`` → ``("t", "a,b")``)."""
        if isinstance(row, tuple) and len(row) in (2, 3):
            return (*row[:-1], self.task.label_field(row[-1]))
        if isinstance(row, list) and len(row) in (2, 3):
            return [*row[:-1], self.task.label_field(row[-1])]
        if isinstance(row, Mapping) and "label" in row:
            return {**row, "label": self.task.label_field(row["label"])}
        return row

    def encode(self, examples: Sequence[Example], with_labels: bool = False) -> List[Dict[str, Any]]:
        """Template-encode examples (and their training targets) for the model."""
        rows: List[Dict[str, Any]] = self.template.encode_batch([(e.text_a, e.text_b) for e in examples])
        if with_labels:
            for row, example in zip(rows, examples):
                row["labels"] = self.task.target(example.label)
        return rows

    def fit(
        self,
        train: DataArg,
        eval_data: Optional[DataArg] = None,
        tune_thresholds: bool = False,
        callbacks: Optional[Sequence[Any]] = None,
        **training_args: Any,
    ) -> Dict[str, Any]:
        """Train on labelled data; keyword arguments are ``PromptTrainingArguments`` fields.

        Returns the training metrics (``train_loss``, ``train_steps``, …), plus ``eval_*`` metrics
        on ``eval_data`` when given; they are kept in ``train_metrics`` and saved with the model.
        ``tune_thresholds=True`` (multi-label / hierarchical) first tunes per-label thresholds on
        ``eval_data``. ``callbacks`` are PaddleNLP ``TrainerCallback`` objects. Options apply to
        this call only (``freeze_plm`` included); the global random generators are left as they were.
        """
        if tune_thresholds:
            self.task.require("thresholds", "tune_thresholds")
            if not eval_data:
                raise FewshotError("tune_thresholds=True needs eval_data")
        if training_args.get("use_rgl"):
            self.task.require("rgl", "use_rgl")
        output_dir = training_args.pop("output_dir", None)
        workdir = output_dir or tempfile.mkdtemp(prefix="fewshot-train-")
        try:
            args = training_arguments(workdir, training_args)
            if self.method == "zeroshot":
                return self._fit_zeroshot(train, eval_data)
            train_rows = self.encode(self._examples(train), with_labels=True)
            eval_rows = self.encode(self._examples(eval_data), with_labels=True) if eval_data else None
            self._init_label_bias(train_rows, args.per_device_eval_batch_size)
            with preserved_random_state():
                trainer = PromptTrainer(
                    model=self.model, args=args, task=self.task,
                    train_dataset=ListDataset(train_rows),
                    eval_dataset=ListDataset(eval_rows) if eval_rows else None,
                    data_collator=make_collator(self.tokenizer.pad_token_id),
                    callbacks=list(callbacks or []),
                )
                result = trainer.train()
        finally:
            if output_dir is None:
                shutil.rmtree(workdir, ignore_errors=True)
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
        """Before a sigmoid head's first training, start each label's logits at its base rate."""
        head = getattr(self.model, "verbalizer", None)
        if not isinstance(head, SigmoidHead) or not head.is_fresh():
            return
        logits = self._logits(rows, batch_size)
        bias = prior_bias(logits, np.array([row["labels"] for row in rows]), head.bias.numpy())
        head.bias.set_value(paddle.to_tensor(bias))

    def _fit_zeroshot(self, train: DataArg, eval_data: Optional[DataArg]) -> Dict[str, Any]:
        """Zero-shot "training": no weight changes; calibrate on the training texts when enabled."""
        metrics: Dict[str, Any] = {"train_steps": 0}
        if self.calibrate:
            texts = [e.text_a for e in self._examples(train)]
            self.estimate_prior(texts)
            metrics["calibration_texts"] = len(texts)
        if eval_data:
            metrics.update({f"eval_{k}": v for k, v in self.evaluate(eval_data).items()})
        self.train_metrics = metrics
        return metrics

    @paddle.no_grad()
    def _logits(self, rows: Sequence[Row], batch_size: int, return_hidden: bool = False) -> Any:
        """Class logits for encoded rows, batched by length (minimal padding), in input order; with
        ``return_hidden`` also the model's hidden states (the mask slots' states, flattened)."""
        self.model.eval()
        order = sorted(range(len(rows)), key=lambda i: len(rows[i]["input_ids"]))
        out = np.zeros([len(rows), len(self.labels)], dtype="float32")
        hidden: Optional[np.ndarray] = None
        with fast_cpu_math():
            for start in range(0, len(order), batch_size):
                idx = order[start : start + batch_size]
                batch = pad_batch([rows[i] for i in idx], self.tokenizer.pad_token_id)
                result = self.model(**{k: paddle.to_tensor(v) for k, v in batch.items()}, return_hidden=return_hidden)
                logits, states = result if return_hidden else (result, None)
                out[idx] = logits.numpy()
                if states is not None:
                    if hidden is None:
                        hidden = np.zeros([len(rows), states.shape[-1]], dtype="float32")
                    hidden[idx] = states.numpy()
        return (out, hidden) if return_hidden else out

    def logits(self, inputs: TextInputs, batch_size: int = DEFAULT_BATCH_SIZE, return_hidden: bool = False) -> Any:
        """The model's logits ``[n, num_labels]`` before the task's temperature and activation; with
        ``return_hidden=True`` the pair ``(logits, hidden)``, ``hidden`` the mask slots' hidden states
        ``[n, num_masks * hidden_size]`` (the ``[CLS]`` state for ``method="finetune"``)."""
        pairs = prediction_pairs(inputs, self.template.needs_text_b)
        if not pairs:
            empty = np.zeros((0, len(self.labels)), dtype="float32")
            return (empty, np.zeros((0, 0), dtype="float32")) if return_hidden else empty
        return self._logits(self.template.encode_batch(pairs), batch_size, return_hidden)

    def predict_proba(self, inputs: TextInputs, batch_size: int = DEFAULT_BATCH_SIZE) -> np.ndarray:
        """Class probabilities ``[n, num_labels]``, columns in ``classes_`` order.

        ``inputs``: a text (``str``), or an iterable of texts, ``(text_a, text_b)`` pairs or
        ``Example`` objects (see ``fewshot.data.inputs``). Sigmoid tasks give independent
        probabilities per label / node.
        """
        return self.task.activate(self.logits(inputs, batch_size))

    def predict(self, inputs: TextInputs, batch_size: int = DEFAULT_BATCH_SIZE) -> List[Any]:
        """The predicted label of each text (a list, also for a single ``str``).

        Multi-label: the list of labels at or above their thresholds (``["盗窃", "抢劫"]``, maybe ``[]``);
        hierarchical: the most probable consistent path (``"质量##混凝土##养护"``).
        """
        return self.task.decode(self.predict_proba(inputs, batch_size))

    def evaluate(self, data: DataArg, batch_size: int = DEFAULT_BATCH_SIZE, report: bool = False) -> Dict[str, Any]:
        """The task's metrics on labelled data (a file path or rows); ``report=True`` adds per-class details.

        Single-label: accuracy and macro-F1. Multi-label: micro-F1, macro-F1, exact match.
        Hierarchical: per-level accuracy, exact match, tolerant accuracy, node micro/macro-F1.
        ``report=True`` also gives ``calibration``: the temperature and the expected calibration error
        without it (``ece_uncalibrated``) and with it (``ece``).
        """
        examples = self._examples(data)
        gold = [e.label for e in examples]
        logits = self._logits(self.encode(examples), batch_size)
        metrics = self.task.metrics(self.task.activate(logits), gold, report=report)
        if report:
            metrics["calibration"] = self.task.calibration_report(logits, gold)
        return metrics

    def score(self, data: DataArg, batch_size: int = DEFAULT_BATCH_SIZE) -> float:
        """Accuracy on labelled data, as scikit-learn's ``score``: the share of rows predicted exactly
        right (for multi-label and hierarchical rows, the whole label set or path)."""
        metrics = self.evaluate(data, batch_size)
        return float(metrics["accuracy"] if "accuracy" in metrics else metrics["exact_match"])

    def tune_thresholds(self, data: DataArg, batch_size: int = DEFAULT_BATCH_SIZE) -> Dict[str, float]:
        """Tune one decision threshold per label (or hierarchy node) on labelled dev data; returns them.

        Each label's threshold maximises that label's F1 on ``data``; they are saved and exported
        with the classifier. Single-label classifiers have none (a ``FewshotError``).
        """
        self.task.require("thresholds", "tune_thresholds")
        examples = self._examples(data)
        probs = self.task.activate(self._logits(self.encode(examples), batch_size))
        thresholds = self.task.tune(probs, [e.label for e in examples])
        return dict(zip(self.labels, map(float, thresholds)))

    def fit_temperature(self, data: DataArg, batch_size: int = DEFAULT_BATCH_SIZE) -> float:
        """Fit the temperature that divides the logits (temperature scaling) on labelled dev data; returns it.

        It minimises the negative log-likelihood of ``data``'s labels and changes no prediction, only
        the probabilities: ``predict_proba``, ``evaluate``, ``save`` and ``export`` (the bundle's graph)
        all use it from now on. Fit it on data the model was not trained on.
        """
        examples = self._examples(data)
        return self.task.fit_temperature(self._logits(self.encode(examples), batch_size), [e.label for e in examples])

    def explain(self, inputs: TextInputs, batch_size: int = DEFAULT_BATCH_SIZE) -> List[Any]:
        """Per-character attributions toward each text's predicted label, by occlusion through the template.

        Returns one ``fewshot.analysis.explain.Explanation`` per text: ``label`` (the explained
        column), ``probability``, and ``units`` — ``(slot, piece, attribution)`` with ``attribution`` the
        drop of that probability when the piece (a character; an ASCII word or number as a whole) is
        replaced by the unknown token (the other tokens keep their positions). All occluded variants
        of all texts run batched through the model: a text of ``m`` characters costs ``m + 1`` rows.
        """
        pairs = prediction_pairs(inputs, self.template.needs_text_b)
        return explain_pairs(pairs, lambda variants: self.task.activate(self._logits(
            self.template.encode_batch(variants), batch_size)), self.task, filler=self.tokenizer.unk_token)

    def untrained_copy(self, seed: Optional[int] = None) -> "PromptClassifier":
        """A new classifier with this one's settings (template, verbalizer, method, task with its
        thresholds and temperature) on the base model, loaded again from ``model_name``: what k-fold
        training (``fewshot.analysis.label_issues``) starts every fold from."""
        task = task_from_config(self.labels, self.task.config())
        return PromptClassifier.from_task(
            self.model_name, task, self.label_words, template=self.template.text, verbalizer=self.verbalizer_kind,
            max_seq_length=self.max_seq_length, method=self.method, calibrate=self.calibrate, seed=seed,
        )

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
            "task": self.task.config(),
        }

    def _prompt_state(self) -> Dict[str, paddle.Tensor]:
        """The model's state outside the PLM's parameters (soft prompt, heads, biases, prior), by name."""
        plm_ids = {id(p) for p in self.model.plm.parameters()}
        return {k: v for k, v in self.model.state_dict().items() if id(v) not in plm_ids}

    def save(self, directory: Union[str, "os.PathLike[str]"]) -> Path:
        """Write the classifier to ``directory`` atomically (safetensors weights, JSON config): an
        interrupted or failed save keeps the old one.

        In a data-parallel run (``paddle.distributed.launch``) every process holds the same weights;
        only rank 0 writes, and every process returns once the directory is complete.
        """
        write_once(lambda: self._write(directory))
        return Path(directory)

    def _write(self, directory: Union[str, "os.PathLike[str]"]) -> None:
        with atomic_directory(directory, "the classifier") as tmp:
            self.model.plm.save_pretrained(str(tmp / PLM_DIR), safe_serialization=True)
            self.tokenizer.save_pretrained(str(tmp / PLM_DIR))
            state = {name: value.numpy() for name, value in self._prompt_state().items()}
            if state:
                save_safetensors(state, str(tmp / PROMPT_STATE_NAME))
            (tmp / CONFIG_NAME).write_text(json_text(self.config()), encoding="utf-8")
            if self.train_metrics:
                (tmp / METRICS_NAME).write_text(json_text(self.train_metrics), encoding="utf-8")

    @classmethod
    def load(cls, directory: Union[str, "os.PathLike[str]"], trust_pickle: bool = False) -> "PromptClassifier":
        """Load a classifier written by ``save`` (or by ``fewshot-train --output``).

        Weights are read from safetensors files only: a directory holding pickled weights
        (``.pdparams``, which can run code when loaded) is refused unless ``trust_pickle=True``.
        """
        directory = Path(directory)
        recover(directory)
        config = read_config(directory)
        plm_dir = directory / PLM_DIR
        if not (plm_dir / "config.json").is_file():
            raise BundleError(f"{plm_dir}: missing the pretrained model files (config.json)")
        check_no_pickle(plm_dir, PICKLED_WEIGHTS_NAME, trust_pickle, safe_name="model.safetensors")
        task = task_from_config(config["labels"], config["task"], where=str(directory / CONFIG_NAME))
        plm, tokenizer = load_pretrained(str(plm_dir))
        clf = cls.from_task(
            config.get("base_model", str(plm_dir)), task, config["label_words"], template=config["template"],
            verbalizer=config["verbalizer"], max_seq_length=config["max_seq_length"],
            method=config.get("method", "prompt"), calibrate=bool(config.get("calibrate", False)),
            plm=plm, tokenizer=tokenizer,
        )
        clf._load_prompt_state(directory, trust_pickle)
        clf.train_metrics = config.get("train_metrics", {})
        return clf

    def _load_prompt_state(self, directory: Path, trust_pickle: bool) -> None:
        """Set the soft prompt, heads and prior from the saved state; names and shapes must match."""
        expected = self._prompt_state()
        path = directory / PROMPT_STATE_NAME
        pickled = directory / PICKLED_PROMPT_STATE_NAME
        if path.is_file():
            try:
                state = load_safetensors(str(path))
            except Exception as exc:  # safetensors raises its own error types for corrupt files
                raise BundleError(f"{path}: not a readable safetensors file ({exc})") from None
        elif pickled.is_file():
            check_no_pickle(directory, PICKLED_PROMPT_STATE_NAME, trust_pickle, safe_name=PROMPT_STATE_NAME)
            state = {k: np.asarray(v) for k, v in paddle.load(str(pickled)).items()}
            path = pickled
        elif expected:
            raise BundleError(f"{path}: missing, but the template or verbalizer has trained parameters")
        else:
            return
        for problem, names in (("unexpected", set(state) - set(expected)), ("missing", set(expected) - set(state))):
            if names:
                raise BundleError(f"{path}: {problem} parameters {', '.join(sorted(names))}")
        for name, value in state.items():
            if list(value.shape) != list(expected[name].shape):
                raise BundleError(f"{path}: {name} has shape {list(value.shape)}, "
                                  f"the model expects {list(expected[name].shape)}")
            expected[name].set_value(paddle.to_tensor(value.astype(expected[name].numpy().dtype)))

    def export(
        self,
        bundle_dir: Union[str, "os.PathLike[str]"],
        onnx: bool = True,
        opset: Optional[int] = None,
        fp16: bool = False,
        int8: bool = False,
    ) -> Path:
        """Write a deployment bundle (static graph, ONNX, tokenizer, manifest), like ``fewshot-export``.

        ``opset`` defaults to ``DEFAULT_OPSET``; load the bundle with
        ``fewshot.runtime.OnnxPredictor``. The ``[CLS]`` fine-tuning baseline has no bundle form.
        """
        if self.method == "finetune":
            raise BundleError("export: only prompt classifiers can be exported, not method 'finetune'")
        info = {"fewshot_version": __version__, "base_model": self.model_name, "verbalizer": self.verbalizer_kind}
        return export_bundle(self.model, self.template, self.task, self.tokenizer, self.label_words, bundle_dir,
                             info=info, onnx=onnx, opset=opset or DEFAULT_OPSET, fp16=fp16, int8=int8)


def check_no_pickle(directory: Path, pickled_name: str, trust_pickle: bool, safe_name: str) -> None:
    """Refuse a pickled weight file unless the caller trusts it; a safetensors file beside it is used instead."""
    if trust_pickle or (directory / safe_name).is_file() or not (directory / pickled_name).is_file():
        return
    raise BundleError(
        f"{directory / pickled_name}: pickled weights can run code when loaded, so fewshot does not read them by "
        "default; load with trust_pickle=True (fewshot-export --trust-pickle) only if you trust where the directory "
        "came from, then save it again to convert it to safetensors"
    )


def read_config(directory: Path) -> Dict[str, Any]:
    """Read and check ``fewshot_config.json`` of a saved classifier (formats 1 and 2)."""
    config = read_json_document(
        Path(directory) / CONFIG_NAME, CONFIG_KEYS, FORMAT_VERSION,
        missing_hint=f"not a saved PromptClassifier (no {CONFIG_NAME})",
    )
    if "labels" not in config:
        config["labels"] = list(config["label_words"])
    if not isinstance(config.get("task"), dict):
        config["task"] = _format1_task(config)
    return config


def _format1_task(config: Mapping[str, Any]) -> Dict[str, Any]:
    """Format 1 kept the task's fields at the top level: ``{"task": "multi_label", "thresholds": [...]}``."""
    keys = ("label_delimiter", "thresholds", "hierarchy", "complete_paths")
    return {"task": config.get("task", "multi_class"), **{k: config[k] for k in keys if k in config}}


__all__ = ["PromptClassifier", "DEFAULT_TEMPLATE", "DEFAULT_MAX_SEQ_LENGTH", "text_only_template"]
