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
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

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
from .export.calibration import Calibration
from .export.convert import DEFAULT_OPSET
from .importing.paddlenlp_checkpoint import read_paddlenlp_model
from .loading import base_model_identity, pickle_refusal, saved_base_model
from .numbers import check_number
from .prompt.heads import SigmoidHead, build_head, prior_bias
from .prompt.label_search import LabelWordSearch, search_label_words
from .prompt.model import ClsHeadModel, PromptModel
from .prompt.pretrained import dtype_name, load_checked_pretrained, load_pretrained
from .prompt.verbalizers import VERBALIZERS, VerbalizerArg, VerbalizerSpec
from .tasks import (
    DEFAULT_LABEL_DELIMITER,
    DEFAULT_PATH_DELIMITER,
    LabelsArg,
    Task,
    build_task,
    task_from_config,
)
from .tasks.pooling import logits_of, pool_windows
from .template import FEWSHOT, EncodingStyle, LongText, LongTextArg, Row, Template, flatten_windows, format_part, pad_batch, parse_template
from .training.arguments import PromptTrainingArguments
from .training.cpu_math import fast_cpu_math
from .training.datasets import ListDataset
from .training.distributed import write_once
from .training.early_stopping import early_stopping_for
from .training.rng import preserved_random_state, seeded
from .training.trainer import PromptTrainer, make_collator

DEFAULT_TEMPLATE = "{'text': 'text_a'}这句话的类别是{'mask'}{'mask'}"
DEFAULT_MAX_SEQ_LENGTH = 128
DEFAULT_BATCH_SIZE = 32
CONFIG_NAME = "fewshot_config.json"
PROMPT_STATE_NAME = "prompt_state.safetensors"
PICKLED_PROMPT_STATE_NAME = "prompt_state.pdparams"
PLM_DIR = "plm"
METRICS_NAME = "metrics.json"
FORMAT_VERSION = 2
METHODS = ("prompt", "finetune", "zeroshot")
CONTENT_FREE_TEXTS = ("", "无", "。")
"""Inputs with no content, whose mean prediction estimates the label prior (Zhao et al. 2021)."""
CONFIG_KEYS = ("template", "label_words", "verbalizer", "max_seq_length")
AUTO_LABEL_WORDS = "auto"

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

    ``label_words="auto"`` (or a ``LabelWordSearch``) chooses the label words from the masked LM's
    predictions on the training data when ``fit`` first runs (``fewshot.prompt.label_search``);
    ``labels`` then names the labels only (``["news_car", ...]``, or a file of bare labels).
    ``long_text=True`` (or a pooling name, or ``{"pooling": ..., "overlap": ..., "training": ...}``)
    classifies a text longer than the template's room by overlapping windows whose probabilities
    are pooled (``fewshot.template.windows``); a long labelled text trains on all its windows,
    pooled (default) or each window with the text's label.

    Every bad argument is a ``FewshotError`` raised before the pretrained model loads.
    """

    def __init__(
        self,
        model: str,
        labels: LabelsArg,
        template: str = DEFAULT_TEMPLATE,
        verbalizer: VerbalizerArg = "manual",
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
        label_words: Union[None, str, LabelWordSearch] = None,
        long_text: LongTextArg = None,
    ):
        words, task = build_task(
            labels, multi_label, hierarchical, label_delimiter, path_delimiter, thresholds, complete_paths
        )
        search = label_word_search(label_words, words)
        if search is not None:
            words = {label: [] for label in words}
        self._setup(str(model), words, task, template, verbalizer, max_seq_length, method, calibrate, seed,
                    long_text=long_text, search=search)

    @classmethod
    def from_task(
        cls,
        model: str,
        task: Task,
        label_words: Mapping[str, List[str]],
        template: str = DEFAULT_TEMPLATE,
        verbalizer: VerbalizerArg = "manual",
        max_seq_length: int = DEFAULT_MAX_SEQ_LENGTH,
        method: str = "prompt",
        calibrate: bool = False,
        seed: Optional[int] = None,
        plm: Any = None,
        tokenizer: Any = None,
        long_text: LongTextArg = None,
        search: Optional[LabelWordSearch] = None,
        template_style: str = FEWSHOT.name,
    ) -> "PromptClassifier":
        """A classifier for an existing ``Task`` object (what ``load`` uses); ``plm``/``tokenizer``
        reuse an already loaded pretrained model instead of loading ``model``. ``search`` chooses
        the label words on the first ``fit`` (``label_words`` then maps each label to ``[]``).
        ``template_style`` names the template's ``EncodingStyle`` (``"paddlenlp"`` for a model
        trained by ``paddlenlp.prompt``)."""
        clf = cls.__new__(cls)
        clf._setup(str(model), dict(label_words), task, template, verbalizer, max_seq_length, method, calibrate, seed,
                   plm, tokenizer, long_text, search, template_style)
        return clf

    def _setup(
        self, model_name: str, label_words: Dict[str, List[str]], task: Task, template: str, verbalizer: VerbalizerArg,
        max_seq_length: int, method: str, calibrate: bool, seed: Optional[int], plm: Any = None, tokenizer: Any = None,
        long_text: LongTextArg = None, search: Optional[LabelWordSearch] = None, template_style: str = FEWSHOT.name,
    ) -> None:
        spec = VerbalizerSpec.parse(verbalizer)
        if method not in METHODS:
            raise FewshotError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
        if calibrate and method != "zeroshot":
            raise FewshotError(f"calibrate=True applies to method='zeroshot' only, got method={method!r}")
        if calibrate:
            task.require("calibrate", "calibrate=True (a softmax prior)")
        if method == "zeroshot" and not spec.cls.untrained:
            untrained = ", ".join(kind for kind, kind_cls in VERBALIZERS.items() if kind_cls.untrained)
            raise FewshotError(f"method='zeroshot' needs verbalizer='manual' or another kind that predicts "
                               f"untrained ({untrained}); a {spec.kind} verbalizer is untrained")
        if list(label_words) != list(task.labels):
            raise FewshotError("label words must be given for exactly the task's labels, in the same order")
        if search is not None and method == "finetune":
            raise FewshotError("label_words='auto' needs a prompt method; method='finetune' has no label words")
        check_number("max_seq_length", max_seq_length, low=1)
        text = text_only_template(template) if method == "finetune" else template
        parse_template(text)
        style = EncodingStyle.named(template_style)
        self.long_text: Optional[LongText] = LongText.from_config(long_text)
        self.model_name = model_name
        self.method = method
        self.calibrate = calibrate
        self.task = task
        self.label_words = label_words
        self.verbalizer_kind = spec.config()
        self.train_metrics: Dict[str, Any] = {}
        self.label_word_choice: Dict[str, Any] = {}
        self.pending_search = search
        self.base_identity: Optional[Dict[str, Any]] = None
        self.training_arguments: Dict[str, Any] = {}
        self.saved_where: Optional[str] = None
        self.trust_pickle = False
        if plm is None:
            with seeded(seed):
                plm, tokenizer = load_pretrained(model_name)
        positions = getattr(getattr(plm, "config", None), "max_position_embeddings", None)
        if isinstance(positions, int) and max_seq_length > positions:
            raise FewshotError(f"max_seq_length {max_seq_length} is more than the model's {positions} positions "
                               f"({model_name}); use --max-seq-length {positions} or less")
        self.tokenizer = tokenizer
        self.template = Template(text, tokenizer, max_seq_length, style=style)
        if self.long_text is not None:
            self.template.encoder.check_long_text()
        self._plm, self._seed = plm, seed
        self.model: Optional[paddle.nn.Layer] = None
        if search is None:
            self._build_model()

    def _build_model(self) -> None:
        """The model for the current label words: the verbalizer head (or ``[CLS]`` head) on the PLM."""
        plm, tokenizer = self._plm, self.tokenizer
        with seeded(self._seed):
            if self.method == "finetune":
                self.model = ClsHeadModel(plm, len(self.labels))
            else:
                head = build_head(self.task, self.verbalizer_kind, self.label_words, tokenizer,
                                  self.template.num_masks, plm.cls.predictions)
                self.model = PromptModel(plm, self.template, head, calibrated=self.calibrate)
        self.model.eval()
        if self.calibrate:
            self.estimate_prior(CONTENT_FREE_TEXTS)

    def _require_model(self) -> paddle.nn.Layer:
        """The model, or a ``FewshotError`` while the label words are still to be chosen."""
        if self.model is None:
            raise FewshotError("label_words='auto': the label words are chosen from the training data; call fit "
                               "(or choose_label_words) first")
        return self.model

    def choose_label_words(self, train: DataArg, search: Optional[LabelWordSearch] = None,
                           batch_size: int = 32) -> Dict[str, List[str]]:
        """Choose the label words from labelled ``train`` data (``fewshot.prompt.label_search``) and
        build the model on them; returns ``{label: [words]}``. What was chosen and each word's score
        are kept in ``label_word_choice`` and saved with the classifier."""
        search = search or self.pending_search or LabelWordSearch()
        examples = self._examples(train)
        rows, sizes = self._encoded(examples)
        targets = np.array([self.task.soft_target(e.label) for e in examples])
        tokenize = self.template.encoder.tokenize
        texts = [a + b for a, b in zip(tokenize([e.text_a for e in examples]),
                                       tokenize([e.text_b or "" for e in examples]))]
        choice = search_label_words(self._plm, self.tokenizer, rows, np.repeat(targets, sizes, axis=0), self.labels,
                                    search, self.template.num_masks, batch_size, texts, targets)
        self.label_words = choice.label_words
        self.label_word_choice = choice.config()
        self.pending_search = None
        self._build_model()
        return dict(self.label_words)

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

    def estimate_prior(self, texts: Sequence[Union[str, Tuple[str, Optional[str]]]], batch_size: int = 64) -> np.ndarray:
        """Set the calibration prior to the mean predicted distribution over ``texts``; returns it.

        Needs ``calibrate=True``. Texts may be empty strings (content-free inputs), or ``(text_a, text_b)``
        pairs; with a pair template a single text fills both slots.
        """
        if not self.calibrate:
            raise FewshotError("estimate_prior: this classifier was built with calibrate=False")
        if not texts:
            raise DataError("estimate_prior: no texts given")
        self.model.set_log_prior(np.zeros(len(self.labels), dtype="float32"))
        pairs = [text if isinstance(text, tuple) else (text, text if self.template.needs_text_b else None)
                 for text in texts]
        prior = self._pooled(*self._window_logits(pairs, batch_size), temperature=1.0)
        prior = prior.mean(axis=0)
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

    def _encoded(self, examples: Sequence[Any]) -> Tuple[List[Row], List[int]]:
        """The rows of examples (or ``(text_a, text_b)`` pairs) and how many each has: one, or with
        ``long_text`` one per window of a text that does not fit."""
        pairs = [(e.text_a, e.text_b) if isinstance(e, Example) else e for e in examples]
        return flatten_windows(self.template.encoder.encode_texts(pairs, self.long_text))

    def encode(self, examples: Sequence[Example], with_labels: bool = False, soft: bool = False) -> List[Dict[str, Any]]:
        """Template-encode examples (and their training targets) for the model; with ``long_text`` a
        long text gives one row per window, each with the text's target. ``soft=True`` writes the
        targets as distributions (``Task.soft_target``), as rows trained beside soft labels need."""
        rows, sizes = self._encoded(examples)
        if with_labels:
            owners = np.repeat(np.arange(len(examples)), sizes)
            target = self.task.soft_target if soft else self.task.target
            for row, owner in zip(rows, owners):
                row["labels"] = target(examples[owner].label)
        return rows

    def _training_items(self, examples: Sequence[Example], targets: Sequence[Any]) -> List[Dict[str, Any]]:
        """What the trainer reads for examples and their targets: a row per text, or with ``long_text``
        a row per window (``training="windows"``) or an item per text holding its windows (``"pooled"``)."""
        pairs = [(e.text_a, e.text_b) for e in examples]
        encoded = self.template.encoder.encode_texts(pairs, self.long_text)
        if self.long_text is not None and self.long_text.training == "pooled":
            return [{"windows": rows, "labels": target} for rows, target in zip(encoded, targets)]
        return [{**row, "labels": target} for rows, target in zip(encoded, targets) for row in rows]

    def _labelled_items(self, data: DataArg, soft: bool = False) -> List[Dict[str, Any]]:
        """Training items of labelled data; ``soft`` writes the targets as distributions."""
        examples = self._examples(data)
        target = self.task.soft_target if soft else self.task.target
        return self._training_items(examples, [target(e.label) for e in examples])

    def _soft_items(self, soft_targets: Tuple[DataArg, Any]) -> List[Dict[str, Any]]:
        """Training items of unlabelled texts trained toward given distributions ``[texts, labels]``."""
        data, probs = soft_targets
        examples = self._examples(data, labeled=False)
        probs = np.asarray(probs, dtype="float32")
        if probs.shape != (len(examples), len(self.labels)):
            raise FewshotError(f"fit: soft targets have shape {list(probs.shape)}, expected "
                               f"[{len(examples)} texts, {len(self.labels)} labels]")
        if not np.isfinite(probs).all() or (probs < 0).any() or (probs > 1).any():
            raise FewshotError("fit: soft targets must be probabilities in [0, 1]")
        return self._training_items(examples, probs.tolist())

    def fit(
        self,
        train: DataArg,
        eval_data: Optional[DataArg] = None,
        tune_thresholds: bool = False,
        callbacks: Optional[Sequence[Any]] = None,
        soft_targets: Optional[Tuple[DataArg, Any]] = None,
        labeled_repeats: int = 1,
        **training_args: Any,
    ) -> Dict[str, Any]:
        """Train on labelled data; keyword arguments are ``PromptTrainingArguments`` fields.

        Returns the training metrics (``train_loss``, ``train_steps``, …), plus ``eval_*`` metrics
        on ``eval_data`` when given; they are kept in ``train_metrics`` and saved with the model.
        ``tune_thresholds=True`` (multi-label / hierarchical) first tunes per-label thresholds on
        ``eval_data``. ``callbacks`` are PaddleNLP ``TrainerCallback`` objects. Options apply to
        this call only (``freeze_plm`` included); the global random generators are left as they were.

        ``soft_targets=(texts, probs)`` also trains on unlabelled texts toward the distributions
        ``probs`` (``[texts, labels]``; soft labels from an ensemble, see ``fewshot.unlabeled``):
        the loss is the soft cross-entropy (KL) on them and the cross-entropy on the labelled rows,
        which appear ``labeled_repeats`` times each among them. With ``label_words="auto"`` the
        label words are chosen from ``train`` first.
        """
        if labeled_repeats < 1:
            raise FewshotError(f"fit: labeled_repeats must be at least 1, got {labeled_repeats}")
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
            if self.pending_search is not None:
                self.choose_label_words(train, batch_size=args.per_device_eval_batch_size)
            if self.method == "zeroshot":
                return self._fit_zeroshot(train, eval_data)
            soft = soft_targets is not None
            train_rows = self._labelled_items(train, soft=soft) * labeled_repeats
            if soft:
                train_rows += self._soft_items(soft_targets)
            eval_rows = self._labelled_items(eval_data) if eval_data else None
            stopper = early_stopping_for(args)
            if stopper is not None and not eval_rows:
                raise FewshotError("fit: early_stopping_patience needs eval_data (the dev set it watches)")
            self._init_label_bias(train_rows, args.per_device_eval_batch_size)
            with preserved_random_state():
                trainer = PromptTrainer(
                    model=self.model, args=args, task=self.task,
                    train_dataset=ListDataset(train_rows),
                    eval_dataset=ListDataset(eval_rows) if eval_rows else None,
                    data_collator=make_collator(self.tokenizer.pad_token_id),
                    callbacks=[*(callbacks or []), *([stopper] if stopper else [])],
                )
                result = _train(trainer, args)
            self.training_arguments = {k: v for k, v in training_args.items()
                                       if isinstance(v, (int, float, str, list, type(None)))}
        finally:
            if output_dir is None:
                shutil.rmtree(workdir, ignore_errors=True)
        self.model.eval()
        metrics = dict(result.metrics)
        metrics["train_steps"] = int(result.global_step)
        if stopper is not None:
            metrics["early_stopping"] = stopper.summary()
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
        rows = [{**window, "labels": row["labels"]} for row in rows for window in row.get("windows", [row])]
        logits = self._logits(rows, batch_size)
        bias = prior_bias(logits, np.array([row["labels"] for row in rows]), head.bias.numpy())
        head.bias.set_value(paddle.to_tensor(bias))

    def _fit_zeroshot(self, train: DataArg, eval_data: Optional[DataArg]) -> Dict[str, Any]:
        """Zero-shot "training": no weight changes; calibrate on the training texts when enabled."""
        metrics: Dict[str, Any] = {"train_steps": 0}
        if self.calibrate:
            texts = [(e.text_a, e.text_b) for e in self._examples(train)]
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
        model = self._require_model()
        model.eval()
        order = sorted(range(len(rows)), key=lambda i: len(rows[i]["input_ids"]))
        out = np.zeros([len(rows), len(self.labels)], dtype="float32")
        hidden: Optional[np.ndarray] = None
        with fast_cpu_math():
            for start in range(0, len(order), batch_size):
                idx = order[start : start + batch_size]
                batch = pad_batch([rows[i] for i in idx], self.tokenizer.pad_token_id)
                result = model(**{k: paddle.to_tensor(v) for k, v in batch.items()}, return_hidden=return_hidden)
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
        ``[n, num_masks * hidden_size]`` (the ``[CLS]`` state for ``method="finetune"``).

        With ``long_text`` a long text's logits are its windows' pooled as its probabilities are
        (for ``logprob_mean`` pooling exactly the mean of its windows' logits), its hidden state the
        mean of theirs.
        """
        pairs = prediction_pairs(inputs, self.template.needs_text_b)
        if not pairs:
            empty = np.zeros((0, len(self.labels)), dtype="float32")
            return (empty, np.zeros((0, 0), dtype="float32")) if return_hidden else empty
        rows, sizes = self._encoded(pairs)
        if not return_hidden:
            return self._pooled_logits(self._logits(rows, batch_size), sizes)
        logits, hidden = self._logits(rows, batch_size, return_hidden=True)
        starts = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype("int64")
        mean_hidden = np.add.reduceat(hidden, starts, axis=0) / np.asarray(sizes, dtype="float32")[:, None]
        return self._pooled_logits(logits, sizes), mean_hidden

    def _window_logits(self, examples: Sequence[Any], batch_size: int) -> Tuple[np.ndarray, List[int]]:
        """Logits of every row of examples or ``(text_a, text_b)`` pairs, and how many rows each has."""
        rows, sizes = self._encoded(examples)
        return self._logits(rows, batch_size), sizes

    def _pooled(self, logits: np.ndarray, sizes: Sequence[int], temperature: Optional[float] = None) -> np.ndarray:
        """Probabilities per text from its rows' logits: the task's activation (at its temperature),
        a long text's windows pooled (``fewshot.tasks.pooling``, the function the bundle runtime uses)."""
        probs = self.task.activate(logits, temperature)
        if self.long_text is None:
            return probs
        return pool_windows(self.task.activation, probs, sizes, self.long_text.pooling)

    def _pooled_logits(self, logits: np.ndarray, sizes: Sequence[int]) -> np.ndarray:
        """Logits per text before the temperature: the rows' own, or a long text's pooled windows."""
        if self.long_text is None:
            return logits
        return logits_of(self.task.activation, self._pooled(logits, sizes, temperature=1.0)).astype("float32")

    def _probabilities(self, examples: Sequence[Any], batch_size: int) -> np.ndarray:
        """Probabilities of examples or ``(text_a, text_b)`` pairs, a long text's windows pooled."""
        return self._pooled(*self._window_logits(examples, batch_size))

    def predict_proba(self, inputs: TextInputs, batch_size: int = DEFAULT_BATCH_SIZE) -> np.ndarray:
        """Class probabilities ``[n, num_labels]``, columns in ``classes_`` order.

        ``inputs``: a text (``str``), or an iterable of texts, ``(text_a, text_b)`` pairs or
        ``Example`` objects (see ``fewshot.data.inputs``). Sigmoid tasks give independent
        probabilities per label / node.
        """
        pairs = prediction_pairs(inputs, self.template.needs_text_b)
        if not pairs:
            return np.zeros((0, len(self.labels)), dtype="float32")
        return self._probabilities(pairs, batch_size)

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
        logits, sizes = self._window_logits(examples, batch_size)
        gold = [e.label for e in examples]
        metrics = self.task.metrics(self._pooled(logits, sizes), gold, report=report)
        if report:
            metrics["calibration"] = self.task.calibration_report(self._pooled_logits(logits, sizes), gold)
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
        probs = self._probabilities(examples, batch_size)
        thresholds = self.task.tune(probs, [e.label for e in examples])
        return dict(zip(self.labels, map(float, thresholds)))

    def fit_temperature(self, data: DataArg, batch_size: int = DEFAULT_BATCH_SIZE) -> float:
        """Fit the temperature that divides the logits (temperature scaling) on labelled dev data; returns it.

        It minimises the negative log-likelihood of ``data``'s labels and changes no prediction, only
        the probabilities: ``predict_proba``, ``evaluate``, ``save`` and ``export`` (the bundle's graph)
        all use it from now on. Fit it on data the model was not trained on.
        """
        examples = self._examples(data)
        logits = self._pooled_logits(*self._window_logits(examples, batch_size))
        return self.task.fit_temperature(logits, [e.label for e in examples])

    def explain(self, inputs: TextInputs, batch_size: int = DEFAULT_BATCH_SIZE) -> List[Any]:
        """Per-character attributions toward each text's predicted label, by occlusion through the template.

        Returns one ``fewshot.analysis.explain.Explanation`` per text: ``label`` (the explained
        column), ``probability``, and ``units`` — ``(slot, piece, attribution)`` with ``attribution`` the
        drop of that probability when the piece (a character; an ASCII word or number as a whole) is
        replaced by the unknown token (the other tokens keep their positions). All occluded variants
        of all texts run batched through the model: a text of ``m`` characters costs ``m + 1`` rows.
        """
        pairs = prediction_pairs(inputs, self.template.needs_text_b)
        return explain_pairs(pairs, lambda variants: self._probabilities(variants, batch_size), self.task,
                             filler=self.tokenizer.unk_token)

    @classmethod
    def from_paddlenlp(cls, directory: Union[str, "os.PathLike[str]"], base_model: Optional[str] = None,
                       trust_pickle: bool = False, max_seq_length: Optional[int] = None,
                       verbalizer: Optional[VerbalizerArg] = None) -> "PromptClassifier":
        """A classifier from a checkpoint of PaddleNLP's few-shot example (``model_state.pdparams``,
        ``template_config.json``, ``verbalizer_config.json``): see ``fewshot.importing``. Its pickle
        is read only with ``trust_pickle=True``; ``save`` then writes safetensors."""
        imported = read_paddlenlp_model(directory, base_model, trust_pickle, max_seq_length, verbalizer)
        clf = cls.from_task(**imported.arguments)
        imported.set_prompt_state(clf.model)
        return clf

    def untrained_copy(self, seed: Optional[int] = None) -> "PromptClassifier":
        """A new classifier with this one's settings (template, verbalizer, method, task with its
        thresholds and temperature) on the base model, loaded again from ``model_name``: what k-fold
        training (``fewshot.analysis.label_issues``) starts every fold from.

        A loaded classifier's base model is the one its ``fewshot_config.json`` records, checked by the
        loading policy (``fewshot.loading.saved_base_model``) with the trust given to ``load``."""
        task = task_from_config(self.labels, self.task.config())
        plm = tokenizer = None
        if self.saved_where is not None:
            name = saved_base_model(self.base_identity or {}, self.saved_where, self.trust_pickle)
            plm, tokenizer = (load_checked_pretrained(Path(name), self.trust_pickle) if Path(name).is_absolute()
                              else load_pretrained(name))
        copy = PromptClassifier.from_task(
            self.model_name, task, self.label_words, template=self.template.text, verbalizer=self.verbalizer_kind,
            max_seq_length=self.max_seq_length, method=self.method, calibrate=self.calibrate, seed=seed,
            plm=plm, tokenizer=tokenizer, long_text=self.long_text.config() if self.long_text else None,
            template_style=self.template.style.name,
        )
        copy.base_identity, copy.training_arguments = self.base_identity, dict(self.training_arguments)
        return copy

    def _base_model_identity(self) -> Dict[str, Any]:
        """The base model as saved: ``{"base_model": "/abs/dir", "base_model_sha256": "…"}`` (computed once)."""
        if self.base_identity is None:
            self.base_identity = base_model_identity(self.model_name)
        return self.base_identity

    def config(self) -> Dict[str, Any]:
        """What ``load`` needs besides the weights, as written to ``fewshot_config.json``."""
        return {
            "format_version": FORMAT_VERSION,
            "fewshot_version": __version__,
            **self._base_model_identity(),
            "template": self.template.text,
            "template_style": self.template.style.name,
            "max_seq_length": self.max_seq_length,
            "verbalizer": self.verbalizer_kind,
            "method": self.method,
            "calibrate": self.calibrate,
            "labels": self.labels,
            "label_words": self.label_words,
            "label_word_choice": self.label_word_choice,
            "long_text": self.long_text.config() if self.long_text else None,
            "train_metrics": self.train_metrics,
            "training_arguments": self.training_arguments,
            "task": self.task.config(),
        }

    def _prompt_state(self) -> Dict[str, paddle.Tensor]:
        """The model's state outside the PLM's parameters (soft prompt, heads, biases, prior), by name."""
        model = self._require_model()
        plm_ids = {id(p) for p in model.plm.parameters()}
        return {k: v for k, v in model.state_dict().items() if id(v) not in plm_ids}

    def save(self, directory: Union[str, "os.PathLike[str]"]) -> Path:
        """Write the classifier to ``directory`` atomically (safetensors weights, JSON config): an
        interrupted or failed save keeps the old one.

        In a data-parallel run (``paddle.distributed.launch``) every process holds the same weights;
        only rank 0 writes, and every process returns once the directory is complete.
        """
        self._require_model()
        write_once(lambda: self._write(directory))
        return Path(directory)

    def _write(self, directory: Union[str, "os.PathLike[str]"]) -> None:
        with atomic_directory(directory, "the classifier", marker=CONFIG_NAME) as tmp:
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

        Weights are read from safetensors files only, every tensor checked for its name, shape and dtype
        before anything runs (``fewshot.loading``): pickled weights (``.pdparams``, which can run code when
        loaded) are refused unless ``trust_pickle=True``, which ``untrained_copy`` then also applies to
        the recorded base model.
        """
        directory = Path(directory)
        recover(directory)
        config = read_config(directory)
        plm_dir = directory / PLM_DIR
        if not (plm_dir / "config.json").is_file():
            raise BundleError(f"{plm_dir}: missing the pretrained model files (config.json)")
        task = task_from_config(config["labels"], config["task"], where=str(directory / CONFIG_NAME))
        plm, tokenizer = load_checked_pretrained(plm_dir, trust_pickle)
        clf = cls.from_task(
            config.get("base_model", str(plm_dir)), task, config["label_words"], template=config["template"],
            verbalizer=config["verbalizer"], max_seq_length=config["max_seq_length"],
            method=config.get("method", "prompt"), calibrate=bool(config.get("calibrate", False)),
            plm=plm, tokenizer=tokenizer,
            long_text=LongText.from_config(config.get("long_text"), str(directory / CONFIG_NAME), BundleError),
            template_style=EncodingStyle.named(config.get("template_style", FEWSHOT.name), str(directory / CONFIG_NAME),
                                               BundleError).name,
        )
        clf._load_prompt_state(directory, trust_pickle)
        clf.base_identity = {key: config.get(key) for key in ("base_model", "base_model_sha256")}
        clf.saved_where, clf.trust_pickle = str(directory / CONFIG_NAME), trust_pickle
        clf.training_arguments = config.get("training_arguments") or {}
        if not isinstance(clf.training_arguments, dict):
            raise BundleError(f"{directory / CONFIG_NAME}: training_arguments must be an object")
        clf.train_metrics = config.get("train_metrics", {})
        clf.label_word_choice = config.get("label_word_choice") or {}
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
            if not trust_pickle:
                raise pickle_refusal(pickled)
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
            dtype = dtype_name(expected[name].dtype)
            if str(value.dtype) != dtype:
                raise BundleError(f"{path}: {name} has dtype {value.dtype}, the model expects {dtype}")
            expected[name].set_value(paddle.to_tensor(value))

    def export(
        self,
        bundle_dir: Union[str, "os.PathLike[str]"],
        onnx: bool = True,
        opset: Optional[int] = None,
        fp16: bool = False,
        int8: bool = False,
        calibration: Optional[Calibration] = None,
    ) -> Path:
        """Write a deployment bundle (static graph, ONNX, tokenizer, manifest), like ``fewshot-export``.

        ``opset`` defaults to ``DEFAULT_OPSET``; ``calibration`` (``fewshot.export.calibration``) makes the
        int8 model statically quantised on its texts; load the bundle with
        ``fewshot.runtime.OnnxPredictor``. The ``[CLS]`` fine-tuning baseline has no bundle form.
        """
        if self.method == "finetune":
            raise BundleError("export: only prompt classifiers can be exported, not method 'finetune'")
        info = {"fewshot_version": __version__, "base_model": self.model_name, "verbalizer": self.verbalizer_kind}
        return export_bundle(self._require_model(), self.template, self.task, self.tokenizer, self.label_words,
                             bundle_dir, info=info, onnx=onnx, opset=opset or DEFAULT_OPSET, fp16=fp16, int8=int8,
                             long_text=self.long_text, calibration=calibration)


def _train(trainer: PromptTrainer, args: PromptTrainingArguments) -> Any:
    """``trainer.train()``; a loss that became NaN or infinite (PaddleNLP's ``ValueError``) is a ``FewshotError``."""
    try:
        return trainer.train()
    except ValueError as exc:
        if "Loss contains inf or nan" not in str(exc):
            raise
        raise FewshotError(f"fit: the training loss became NaN or infinite (learning rate {args.learning_rate:g}); "
                           "lower --learning-rate; the classifier's weights are unusable and nothing was saved"
                           ) from None


def label_word_search(value: Union[None, str, LabelWordSearch], words: Mapping[str, List[str]]) -> Optional[LabelWordSearch]:
    """The search ``label_words`` asks for: ``None`` (use the labels' words), ``"auto"`` (default
    settings) or a ``LabelWordSearch``; with a search, words the labels carry are replaced."""
    if value is None:
        return None
    if isinstance(value, LabelWordSearch):
        return value
    if value == AUTO_LABEL_WORDS:
        return LabelWordSearch()
    raise FewshotError(f"label_words must be '{AUTO_LABEL_WORDS}' or a LabelWordSearch, got {value!r}")


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


__all__ = ["PromptClassifier", "DEFAULT_TEMPLATE", "DEFAULT_MAX_SEQ_LENGTH", "LabelWordSearch", "text_only_template"]
