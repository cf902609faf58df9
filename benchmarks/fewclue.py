"""FewCLUE benchmark: zero-shot, fine-tuning, prompt variants and PaddleNLP's prompt on every split.

For each few-shot split ``k`` of a FewCLUE task folder (``train_k.json`` + ``dev_k.json``) and each
method, train on ``train_k`` with the same seed, step budget, batch size and learning rate, and
report accuracy on ``test_public.json``. Prints a table of mean ± standard deviation over the
splits and wall time per method, and writes ``fewclue.json`` and ``fewclue.md`` to ``--output``
(rewritten after every run, so an interrupted benchmark keeps what it measured).

    python benchmarks/fewclue.py --task ../shared/fewclue/tnews --model ../shared/models/zh-ernie-tiny

The first line printed (and the report's ``machine``) is the CPU and the thread settings it ran with
(``fewshot.cpu_env``).

Methods (``--methods``, comma-separated; default all but ``prompt-1mask`` and ``long-text``):

- ``zeroshot``     manual verbalizer, no training, calibrated on the split's training texts (labels unused)
- ``finetune``     ``[CLS]`` linear head on the same PLM (``PromptClassifier(method="finetune")``)
- ``prompt``       hard template + manual verbalizer, two-character label words
- ``prompt-lstm``  ``prompt`` plus four soft tokens through a bi-LSTM encoder (P-tuning)
- ``prompt-rdrop`` ``prompt`` plus the R-Drop loss
- ``prompt-rgl``   ``prompt`` plus the RGL label-consistency loss
- ``paddlenlp``    ``paddlenlp.prompt`` (AutoTemplate + ManualVerbalizer + PromptTrainer) on what it
  runs on Paddle 3.3: one ``[MASK]``, so each label word is cut to its first character
- ``prompt-1mask`` ours on exactly ``paddlenlp``'s settings (template, one mask, first characters)
- ``auto-words``   ``prompt`` with label words chosen from the masked LM (``label_words="auto"``), the label
  file's names only (``news_car``, …)
- ``pet``          PET: one R-Drop ``prompt`` member per ``--pet_patterns`` template, their soft labels on
  ``unlabeled.json``, one classifier distilled on them plus the labelled rows (``fewshot.unlabeled``);
  also reports ``pet-ensemble``, the members' ensemble
- ``pet-student``  ``pet``'s members distilled into a smaller PLM: the model's first ``--student_layers`` layers
- ``ipet``         iPET: ``pet`` plus a second generation of members trained on pseudo-labels of the first
  (``ipet-ensemble`` too)
- ``self-train``   one member (``--template``), the student trained on its ``--pseudo_labels`` most
  confident unlabelled texts with hard labels
- ``embed-lr``     mean-pooled embeddings of the same PLM + logistic regression (the C-MTEB protocol)
- ``setfit``       SetFit-style: ``--steps`` batches of ``--batch_size`` contrastive text pairs fine-tune the PLM
  (cosine similarity to 1 for one label, 0 for two), then ``embed-lr`` (``fewshot.baselines``)
- ``long-text``    ``prompt`` with ``long_text``: overlapping windows, pooled (also reports every pooling,
  ``long-text[max]`` …, from the same trained model)

``pet``, ``pet-student``, ``ipet`` and ``self-train`` share a run directory per split
(``OUTPUT/runs/split_k``, or ``--runs DIR``): a method reuses the members an earlier one trained
(same name and settings), so its wall time counts only what it added; ``pet``'s includes its
members. The students' template is ``--student_template`` (the zero-shot template). A rerun into
the same run directories resumes from the members already there: time fresh ones.

Nothing is TNEWS-specific except the label file and templates: any FewCLUE task with the same JSON
layout runs with ``--task DIR --labels FILE`` (``--labels from-data``: the label names found in
``train_few_all.json``, each its own label word), ``--fields`` for other JSON keys, ``--template``,
``--zeroshot_template`` and ``--pet_patterns`` for the prompts.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence

from _paths import ROOT, TINY_ERNIE as DEFAULT_MODEL, TNEWS as DEFAULT_TASK, TNEWS_LABELS as DEFAULT_LABELS, TNEWS_TEMPLATE

DEFAULT_FIELDS = "text_a=sentence,label=label_desc"
PROMPT_TEMPLATE = TNEWS_TEMPLATE
ZEROSHOT_TEMPLATE = "这是一条{'mask'}{'mask'}新闻：{'text': 'text_a'}"
LSTM_TEMPLATE = "{'text': 'text_a'}{'soft': None, 'length': 4, 'encoder': 'lstm'}这条新闻的主题是{'mask'}{'mask'}"
ONE_MASK_TEMPLATE = "{'text': 'text_a'}这条新闻的主题是{'mask'}"
PET_PATTERNS = (
    PROMPT_TEMPLATE,
    "这是一条{'mask'}{'mask'}新闻：{'text': 'text_a'}",
    "{'mask'}{'mask'}新闻：{'text': 'text_a'}",
    "{'text': 'text_a'}这是{'mask'}{'mask'}新闻。",
)
"""Members of the ``pet`` methods on TNEWS: the prompt template and the three other phrasings of
docs/fewclue.md's zero-shot template table, fixed before any PET run."""
UNLABELED_METHODS = ("pet", "pet-student", "ipet", "self-train")
ALL_METHODS = (
    "zeroshot", "finetune", "prompt", "prompt-lstm", "prompt-rdrop", "prompt-rgl", "paddlenlp", "prompt-1mask",
    "auto-words", *UNLABELED_METHODS, "long-text", "embed-lr", "setfit",
)
DEFAULT_METHODS = tuple(m for m in ALL_METHODS if m not in ("prompt-1mask", "long-text"))
PROMPT_VARIANTS = ("prompt", "prompt-lstm", "prompt-rdrop", "prompt-rgl", "prompt-1mask")
NEW_METHODS = ("auto-words", *UNLABELED_METHODS, "long-text")
UNLABELED_FILE = "unlabeled.json"
LABELS_FROM_DATA = "from-data"
SPLIT_FILE = re.compile(r"^train_(\d+)\.json$")
TEST_FILE = "test_public.json"


@dataclass(frozen=True)
class Split:
    """One few-shot split of a FewCLUE task: ``train_k.json`` and its ``dev_k.json``."""

    index: int
    train: Path
    dev: Path


def discover_splits(task_dir: Path, only: Optional[Sequence[int]] = None) -> List[Split]:
    """The numbered splits of ``task_dir`` (``train_k.json`` with ``dev_k.json``), sorted by ``k``.

    ``train_few_all.json`` and other non-numbered files are ignored. Raises ``FileNotFoundError``
    naming the folder when it has no split, no ``test_public.json``, a ``train_k`` without its
    ``dev_k``, or lacks a split asked for in ``only``.
    """
    task_dir = Path(task_dir)
    if not task_dir.is_dir():
        raise FileNotFoundError(f"{task_dir}: task folder does not exist")
    if not (task_dir / TEST_FILE).is_file():
        raise FileNotFoundError(f"{task_dir}: no {TEST_FILE} (the labelled test set the benchmark reports on)")
    splits = []
    for path in sorted(task_dir.iterdir()):
        match = SPLIT_FILE.match(path.name)
        if not match:
            continue
        index = int(match.group(1))
        dev = task_dir / f"dev_{index}.json"
        if not dev.is_file():
            raise FileNotFoundError(f"{task_dir}: {path.name} has no matching dev_{index}.json")
        splits.append(Split(index, path, dev))
    splits.sort(key=lambda s: s.index)
    if not splits:
        raise FileNotFoundError(f"{task_dir}: no few-shot splits (train_0.json, dev_0.json, ...)")
    if only is not None:
        found = {s.index for s in splits}
        missing = sorted(set(only) - found)
        if missing:
            raise FileNotFoundError(f"{task_dir}: no split(s) {missing}; found {sorted(found)}")
        splits = [s for s in splits if s.index in set(only)]
    return splits


@dataclass
class Settings:
    """What every method shares: model, labels, budget, seed."""

    model: str
    labels: str
    fields: Dict[str, str]
    steps: int = 100
    batch_size: int = 16
    eval_batch_size: int = 64
    learning_rate: float = 2e-4
    ppt_learning_rate: float = 1e-3
    max_seq_length: int = 64
    seed: int = 42
    template: str = PROMPT_TEMPLATE
    zeroshot_template: str = ZEROSHOT_TEMPLATE
    pet_patterns: Sequence[str] = PET_PATTERNS
    student_template: str = ZEROSHOT_TEMPLATE
    temperature: float = 1.0
    student_steps: int = 1250
    student_rdrop: bool = False
    student_layers: int = 2
    labeled_repeats: int = 1
    pseudo_labels: int = 4000
    long_text_pooling: str = "logprob_mean"
    work: str = ""


@dataclass
class RunResult:
    """One method on one split."""

    method: str
    split: int
    test_accuracy: float
    test_macro_f1: float
    wall_seconds: float
    train_steps: int


@dataclass
class TaskData:
    """Examples of one split plus the shared test set."""

    train: List[Any]
    test: List[Any]
    label_words: Dict[str, List[str]]
    unlabeled: List[str]
    split: int = 0


def first_characters(label_words: Dict[str, List[str]]) -> Dict[str, List[str]]:
    """Each label's first word cut to its first character, for one-[MASK] templates; must stay distinct."""
    chars = {label: [words[0][0] if words else label[0]] for label, words in label_words.items()}
    seen: Dict[str, str] = {}
    for label, (char,) in chars.items():
        if char in seen:
            raise ValueError(
                f"labels {seen[char]!r} and {label!r} share the first character {char!r}; "
                "one-[MASK] methods need distinct one-character words"
            )
        seen[char] = label
    return chars


def _fit_options(settings: Settings, **extra: Any) -> Dict[str, Any]:
    """``PromptClassifier.fit`` arguments shared by the trained fewshot methods."""
    options = dict(
        max_steps=settings.steps,
        per_device_train_batch_size=settings.batch_size,
        learning_rate=settings.learning_rate,
        ppt_learning_rate=settings.ppt_learning_rate,
        seed=settings.seed,
        logging_steps=max(settings.steps, 1),
        disable_tqdm=True,
        evaluation_strategy="no",
        save_strategy="no",
        report_to=[],
    )
    options.update(extra)
    return options


def run_fewshot(
    settings: Settings, data: TaskData, method: str, template: str, label_words: Any, classifier: Any = None,
    **fit: Any,
) -> Dict[str, Any]:
    """Build a ``PromptClassifier`` with ``method``, fit it on the split, evaluate on the test set.

    ``classifier`` holds extra ``PromptClassifier`` options (``label_words="auto"``, ``long_text``).
    """
    from fewshot.classifier import PromptClassifier

    clf = PromptClassifier(
        settings.model, labels=label_words, template=template, max_seq_length=settings.max_seq_length,
        seed=settings.seed, method=method, calibrate=method == "zeroshot", **(classifier or {}),
    )
    metrics = clf.fit(data.train, **({} if method == "zeroshot" else _fit_options(settings, **fit)))
    result: Dict[str, Any] = clf.evaluate(data.test, batch_size=settings.eval_batch_size)
    result["train_steps"] = int(metrics["train_steps"])
    if clf.label_word_choice:
        result["label_words"] = clf.label_words
    if clf.long_text is not None:
        result["extra"] = long_text_poolings(clf, data, settings)
    return result


def run_baseline(settings: Settings, data: TaskData, method: str) -> Dict[str, Any]:
    """An embedding baseline (``fewshot.baselines``) on the split: SetFit's pair batches follow the step budget."""
    from fewshot.baselines import BASELINE_METHODS, EmbeddingClassifier

    options = dict(BASELINE_METHODS[method])
    if options["contrastive_steps"]:
        options.update(contrastive_steps=settings.steps, pairs_per_step=settings.batch_size)
    clf = EmbeddingClassifier(settings.model, labels=list(data.label_words), max_seq_length=settings.max_seq_length,
                              seed=settings.seed, batch_size=settings.eval_batch_size, **options)
    clf.fit(data.train)
    return {**clf.evaluate(data.test), "train_steps": options["contrastive_steps"]}


def long_text_poolings(clf: Any, data: TaskData, settings: Settings) -> Dict[str, Dict[str, float]]:
    """The trained long-text classifier's test metrics under every pooling (training does not depend on it)."""
    from dataclasses import replace

    from fewshot.tasks.pooling import POOLINGS

    chosen = clf.long_text
    extra = {}
    for pooling in POOLINGS:
        clf.long_text = replace(chosen, pooling=pooling)
        extra[f"long-text[{pooling}]"] = clf.evaluate(data.test, batch_size=settings.eval_batch_size)
    clf.long_text = chosen
    return extra


def student_model(settings: Settings) -> str:
    """The model's first ``student_layers`` encoder layers (embeddings and masked-LM head kept), saved
    once under the work folder: the smaller PLM ``pet-student`` distils into."""
    from paddlenlp.transformers import AutoModelForMaskedLM, AutoTokenizer

    folder = Path(settings.work) / f"student-{settings.student_layers}-layers"
    if not (folder / "config.json").is_file():
        plm = AutoModelForMaskedLM.from_pretrained(settings.model)
        encoder = plm.base_model.encoder
        encoder.layers = encoder.layers[: settings.student_layers]
        encoder.num_layers = settings.student_layers
        plm.config.num_hidden_layers = settings.student_layers
        plm.save_pretrained(str(folder), safe_serialization=True)
        AutoTokenizer.from_pretrained(settings.model).save_pretrained(str(folder))
    return str(folder)


def run_unlabeled(settings: Settings, data: TaskData, method: str) -> Dict[str, Any]:
    """``pet``, ``pet-student``, ``ipet``, ``self-train`` through ``fewshot.unlabeled.distill``: members
    trained as ``prompt-rdrop``, the student evaluated on the test set (and the members' ensemble)."""
    from fewshot.tasks import build_task
    from fewshot.unlabeled import DistillationConfig, distill

    if not data.unlabeled:
        raise ValueError(f"{method} needs the task's {UNLABELED_FILE}")
    config = DistillationConfig(
        patterns=[settings.template] if method == "self-train" else list(settings.pet_patterns),
        temperature=settings.temperature, generations=2 if method == "ipet" else 1,
        student_model=student_model(settings) if method == "pet-student" else None,
        student_template=settings.student_template, student_steps=settings.student_steps, student_rdrop=settings.student_rdrop,
        labeled_repeats=settings.labeled_repeats,
        pseudo_labels=settings.pseudo_labels if method == "self-train" else 0,
    )
    label_words, task = build_task(data.label_words)
    result = distill(
        settings.model, task, label_words, data.train, data.unlabeled, Path(settings.work) / f"split_{data.split}",
        config, template=settings.template, eval_data=data.test,
        classifier_options={"max_seq_length": settings.max_seq_length},
        training_args=_fit_options(settings, use_rdrop=True), progress=False,
    )
    metrics: Dict[str, Any] = dict(result.report["student"])
    metrics["train_steps"] = settings.student_steps
    metrics["members"] = result.report["member_metrics"]
    if method in ("pet", "ipet"):
        metrics["extra"] = {f"{method}-ensemble": result.report["ensemble"]}
    return metrics


def run_paddlenlp(settings: Settings, data: TaskData) -> Dict[str, float]:
    """PaddleNLP's few-shot recipe: AutoTemplate + ManualVerbalizer + PromptTrainer, one [MASK]."""
    import numpy as np
    import paddle
    from paddlenlp.datasets import MapDataset
    from paddlenlp.prompt import (
        AutoTemplate, ManualVerbalizer, PromptModelForSequenceClassification, PromptTrainer, PromptTuningArguments,
    )
    from paddlenlp.transformers import AutoModelForMaskedLM, AutoTokenizer

    from fewshot.tasks import SingleLabelTask, classification_metrics

    paddle.seed(settings.seed)
    plm = AutoModelForMaskedLM.from_pretrained(settings.model)
    tokenizer = AutoTokenizer.from_pretrained(settings.model)
    chars = {label: words[0] for label, words in first_characters(data.label_words).items()}
    template = AutoTemplate.create_from(ONE_MASK_TEMPLATE, tokenizer, settings.max_seq_length, model=plm)
    verbalizer = ManualVerbalizer(chars, tokenizer)
    model = PromptModelForSequenceClassification(plm, template, verbalizer)
    ids = verbalizer.labels_to_ids
    task = SingleLabelTask(sorted(ids, key=ids.get))

    def compute_metrics(eval_pred: Any) -> Dict[str, float]:
        logits = eval_pred.predictions[0] if isinstance(eval_pred.predictions, tuple) else eval_pred.predictions
        return task.target_metrics(np.asarray(logits), np.asarray(eval_pred.label_ids))

    def rows(examples: Sequence[Any]) -> MapDataset:
        return MapDataset([{"text_a": e.text_a, "labels": ids[e.label]} for e in examples])

    with tempfile.TemporaryDirectory(prefix="fewclue-paddlenlp-") as output_dir:
        args = PromptTuningArguments(
            output_dir=output_dir, max_seq_length=settings.max_seq_length, do_train=True,
            max_steps=settings.steps, per_device_train_batch_size=settings.batch_size,
            per_device_eval_batch_size=settings.eval_batch_size, learning_rate=settings.learning_rate,
            ppt_learning_rate=settings.ppt_learning_rate, seed=settings.seed, logging_steps=max(settings.steps, 1),
            disable_tqdm=True, evaluation_strategy="no", save_strategy="no", report_to=[],
        )
        trainer = PromptTrainer(
            model=model, tokenizer=tokenizer, criterion=paddle.nn.CrossEntropyLoss(), args=args,
            train_dataset=rows(data.train),
            compute_metrics=compute_metrics,
        )
        train_steps = trainer.train().global_step
        # compute_metrics is what makes PaddleNLP's Trainer return predictions rather than the loss only.
        output = trainer.predict(rows(data.test))
    logits = output.predictions[0] if isinstance(output.predictions, tuple) else output.predictions
    gold = np.array([ids[e.label] for e in data.test])
    result = classification_metrics(np.asarray(logits).argmax(axis=-1), gold)
    result["train_steps"] = int(train_steps)
    return result


def run_method(method: str, settings: Settings, data: TaskData) -> Dict[str, float]:
    """Train and test one method on one split; returns test accuracy, macro-F1 and steps."""
    words = data.label_words
    template = settings.template
    runners: Dict[str, Callable[[], Dict[str, Any]]] = {
        "zeroshot": lambda: run_fewshot(settings, data, "zeroshot", settings.zeroshot_template, words),
        "finetune": lambda: run_fewshot(settings, data, "finetune", template, words),
        "prompt": lambda: run_fewshot(settings, data, "prompt", template, words),
        "prompt-lstm": lambda: run_fewshot(settings, data, "prompt", LSTM_TEMPLATE, words),
        "prompt-rdrop": lambda: run_fewshot(settings, data, "prompt", template, words, use_rdrop=True),
        "prompt-rgl": lambda: run_fewshot(settings, data, "prompt", template, words, use_rgl=True),
        "paddlenlp": lambda: run_paddlenlp(settings, data),
        "prompt-1mask": lambda: run_fewshot(settings, data, "prompt", ONE_MASK_TEMPLATE, first_characters(words)),
        "auto-words": lambda: run_fewshot(settings, data, "prompt", template, list(words),
                                          classifier={"label_words": "auto"}),
        "long-text": lambda: run_fewshot(settings, data, "prompt", template, words,
                                         classifier={"long_text": settings.long_text_pooling}),
        **{m: (lambda m=m: run_unlabeled(settings, data, m)) for m in UNLABELED_METHODS},
        **{m: (lambda m=m: run_baseline(settings, data, m)) for m in ("embed-lr", "setfit")},
    }
    if method not in runners:
        raise ValueError(f"unknown method {method!r}; choose from {', '.join(ALL_METHODS)}")
    return runners[method]()


def listed(methods: Sequence[str], extras: Dict[str, List[str]]) -> List[str]:
    """The methods in order, each followed by the rows it reported besides its own (``pet-ensemble``, …)."""
    return [name for method in methods for name in (method, *extras.get(method, []))]


def summarize(runs: Sequence[RunResult], methods: Sequence[str]) -> List[Dict[str, Any]]:
    """Per method: mean and sample standard deviation of test accuracy (and macro-F1), total wall time."""
    rows = []
    for method in methods:
        mine = [r for r in runs if r.method == method]
        if not mine:
            continue
        acc = [r.test_accuracy for r in mine]
        f1 = [r.test_macro_f1 for r in mine]
        rows.append({
            "method": method,
            "splits": len(mine),
            "accuracy_mean": statistics.fmean(acc),
            "accuracy_std": statistics.stdev(acc) if len(acc) > 1 else 0.0,
            "macro_f1_mean": statistics.fmean(f1),
            "wall_seconds": sum(r.wall_seconds for r in mine),
        })
    return rows


def check_targets(summary: Sequence[Dict[str, Any]], num_labels: int) -> Dict[str, Dict[str, Any]]:
    """The targets, for the methods that ran: best prompt ≥ fine-tune + 3 points (and plain prompt >
    fine-tune), ours ≥ PaddleNLP's prompt, zero-shot above chance, the best new method ≥ prompt-rdrop
    + 3 points, auto-words ≥ prompt − 1 point, long-text > prompt (truncation). Margins are in
    accuracy points (×100)."""
    mean = {row["method"]: row["accuracy_mean"] for row in summary}
    targets: Dict[str, Dict[str, Any]] = {}
    prompts = [m for m in PROMPT_VARIANTS if m in mean]
    if prompts and "finetune" in mean:
        best = max(prompts, key=mean.get)
        margin = 100 * (mean[best] - mean["finetune"])
        targets["prompt_beats_finetune_by_3"] = {"best_prompt": best, "margin_points": margin, "met": margin >= 3.0}
    if prompts and "paddlenlp" in mean:
        ours = "prompt-1mask" if "prompt-1mask" in mean else max(prompts, key=mean.get)
        margin = 100 * (mean[ours] - mean["paddlenlp"])
        targets["ours_vs_paddlenlp"] = {"ours": ours, "margin_points": margin, "met": margin >= 0.0}
    if "zeroshot" in mean:
        margin = 100 * (mean["zeroshot"] - 1.0 / num_labels)
        targets["zeroshot_above_chance"] = {"chance": 1.0 / num_labels, "margin_points": margin, "met": margin > 0.0}
    if "prompt" in mean and "finetune" in mean:
        margin = 100 * (mean["prompt"] - mean["finetune"])
        targets["prompt_beats_finetune"] = {"margin_points": margin, "met": margin > 0.0}
    new = [m for m in NEW_METHODS if m in mean]
    if new and "prompt-rdrop" in mean:
        best = max(new, key=mean.get)
        margin = 100 * (mean[best] - mean["prompt-rdrop"])
        targets["new_beats_prompt_rdrop_by_3"] = {"best_new": best, "margin_points": margin, "met": margin >= 3.0}
    if "auto-words" in mean and "prompt" in mean:
        margin = 100 * (mean["auto-words"] - mean["prompt"])
        targets["auto_words_within_1_of_prompt"] = {"margin_points": margin, "met": margin >= -1.0}
    if "long-text" in mean and "prompt" in mean:
        margin = 100 * (mean["long-text"] - mean["prompt"])
        targets["long_text_beats_truncation"] = {"margin_points": margin, "met": margin > 0.0}
    return targets


def format_table(summary: Sequence[Dict[str, Any]]) -> str:
    """Markdown table: method, splits, test accuracy mean ± std, macro-F1, wall time."""
    lines = [
        "| method | splits | test accuracy (mean ± std) | macro-F1 | wall time |",
        "|---|---|---|---|---|",
    ]
    for row in summary:
        lines.append(
            f"| {row['method']} | {row['splits']} | {100 * row['accuracy_mean']:.2f} ± {100 * row['accuracy_std']:.2f}"
            f" | {100 * row['macro_f1_mean']:.2f} | {row['wall_seconds'] / 60:.1f} min |"
        )
    return "\n".join(lines)


def write_report(output: Path, report: Dict[str, Any]) -> None:
    """Write ``fewclue.json`` (everything) and ``fewclue.md`` (table, targets, settings) to ``output``."""
    output.mkdir(parents=True, exist_ok=True)
    (output / "fewclue.json").write_text(json.dumps(report, ensure_ascii=False, indent=2), encoding="utf-8")
    lines = [f"# FewCLUE {Path(report['task']).name}: test accuracy on {TEST_FILE}", "", format_table(report["summary"]), ""]
    for name, target in report["targets"].items():
        lines.append(f"- {name}: {'met' if target['met'] else 'MISSED'} ({target['margin_points']:+.2f} points)")
    settings = report["settings"]
    lines += [
        "",
        f"Model `{settings['model']}`, {settings['steps']} steps at batch {settings['batch_size']}, "
        f"learning rate {settings['learning_rate']} (new parameters {settings['ppt_learning_rate']}), "
        f"max_seq_length {settings['max_seq_length']}, seed {settings['seed']}; splits {report['splits']}; "
        f"total wall time {report['wall_seconds'] / 60:.1f} min.",
        "",
        f"Machine: {report.get('machine', 'not recorded')}.",
        "",
    ]
    (output / "fewclue.md").write_text("\n".join(lines), encoding="utf-8")


def load_task(settings: Settings, split: Split, test_path: Path, unlabeled: Sequence[str] = ()) -> TaskData:
    """Read one split's training examples and the test set with the task's field mapping."""
    from fewshot.tasks import resolve_label_words
    from fewshot.data import read_examples

    label_words = resolve_label_words(settings.labels)
    labels = list(label_words)
    train = read_examples(split.train, labels=labels, fields=settings.fields)
    test = read_examples(test_path, labels=labels, fields=settings.fields)
    return TaskData(train, test, label_words, list(unlabeled), split.index)


def read_unlabeled(task_dir: Path, fields: Dict[str, str]) -> List[str]:
    """The texts of the task's ``unlabeled.json`` (none when it has no such file)."""
    from fewshot.data import read_examples

    path = task_dir / UNLABELED_FILE
    if not path.is_file():
        return []
    return [e.text_a for e in read_examples(path, labeled=False, fields={"text_a": fields["text_a"]})]


def labels_from_data(task_dir: Path, fields: Dict[str, str], output: Path) -> str:
    """A label file of the names in ``train_few_all.json`` (sorted), each its own label word; returns its path."""
    from fewshot.data import read_examples, write_label_words

    names = sorted({e.label for e in read_examples(task_dir / "train_few_all.json", fields=fields)})
    output.mkdir(parents=True, exist_ok=True)
    path = output / "labels.txt"
    write_label_words(path, {name: [] for name in names})
    return str(path)


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--task", default=str(DEFAULT_TASK), help="FewCLUE task folder (train_k/dev_k/test_public.json)")
    p.add_argument("--model", default=str(DEFAULT_MODEL), help="PaddleNLP model name or local directory")
    p.add_argument("--labels", default=str(DEFAULT_LABELS),
                   help=f"label file (label==word lines), or '{LABELS_FROM_DATA}': the names in train_few_all.json")
    p.add_argument("--fields", default=DEFAULT_FIELDS, help=f"JSON field mapping (default {DEFAULT_FIELDS})")
    p.add_argument("--methods", default=",".join(DEFAULT_METHODS), help=f"comma-separated, of {', '.join(ALL_METHODS)}")
    p.add_argument("--splits", default=None, help="comma-separated split numbers (default: all found)")
    p.add_argument("--steps", type=int, default=Settings.steps, help="training steps per run (same for every method)")
    p.add_argument("--batch_size", type=int, default=Settings.batch_size)
    p.add_argument("--eval_batch_size", type=int, default=Settings.eval_batch_size)
    p.add_argument("--learning_rate", type=float, default=Settings.learning_rate)
    p.add_argument("--ppt_learning_rate", type=float, default=Settings.ppt_learning_rate,
                   help="learning rate of new parameters: soft tokens and their encoder, the fine-tuning head")
    p.add_argument("--max_seq_length", type=int, default=Settings.max_seq_length)
    p.add_argument("--seed", type=int, default=Settings.seed)
    p.add_argument("--template", default=Settings.template, help="prompt template of the prompt methods")
    p.add_argument("--zeroshot_template", default=Settings.zeroshot_template)
    p.add_argument("--pet_patterns", action="append", default=None,
                   help="a member template of the pet methods (repeat; default: the four TNEWS patterns)")
    p.add_argument("--student_template", default=Settings.student_template,
                   help="template of the distilled classifier (default: the zero-shot template, the best of "
                        "docs/fewclue.md's zero-shot table)")
    p.add_argument("--temperature", type=float, default=Settings.temperature, help="soft-label temperature")
    p.add_argument("--student_steps", type=int, default=Settings.student_steps)
    p.add_argument("--student_rdrop", action=argparse.BooleanOptionalAction, default=Settings.student_rdrop)
    p.add_argument("--student_layers", type=int, default=Settings.student_layers,
                   help="pet-student: encoder layers of the smaller student PLM (the model's first ones)")
    p.add_argument("--labeled_repeats", type=int, default=Settings.labeled_repeats)
    p.add_argument("--pseudo_labels", type=int, default=Settings.pseudo_labels,
                   help="self-train: confident pseudo-labelled texts the student trains on")
    p.add_argument("--long_text_pooling", default=Settings.long_text_pooling, help="long-text: the reported pooling")
    p.add_argument("--runs", default=None,
                   help="run directories of the unlabelled-text methods (default OUTPUT/runs); another "
                        "benchmark's reuses its members")
    p.add_argument("--output", default=str(ROOT / "output" / "fewclue"), help="folder for fewclue.json and fewclue.md")
    return p.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> Dict[str, Any]:
    """Run every method on every split; print and write the report; return it."""
    args = parse_args(argv)
    from fewshot.data import parse_fields
    from fewshot.cpu_env import apply_once

    machine = apply_once().describe()
    print(f"machine: {machine}", flush=True)

    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = [m for m in methods if m not in ALL_METHODS]
    if unknown:
        raise SystemExit(f"fewclue.py: error: unknown method(s) {', '.join(unknown)}; choose from {', '.join(ALL_METHODS)}")
    only = [int(s) for s in args.splits.split(",")] if args.splits else None
    task = Path(args.task)
    splits = discover_splits(task, only)
    output = Path(args.output)
    fields = parse_fields(args.fields)
    labels = labels_from_data(task, fields, output) if args.labels == LABELS_FROM_DATA else args.labels
    settings = Settings(
        model=args.model, labels=labels, fields=fields, steps=args.steps,
        batch_size=args.batch_size, eval_batch_size=args.eval_batch_size, learning_rate=args.learning_rate,
        ppt_learning_rate=args.ppt_learning_rate, max_seq_length=args.max_seq_length, seed=args.seed,
        template=args.template, zeroshot_template=args.zeroshot_template,
        pet_patterns=args.pet_patterns or list(PET_PATTERNS), student_template=args.student_template,
        temperature=args.temperature,
        student_steps=args.student_steps, student_rdrop=args.student_rdrop, student_layers=args.student_layers,
        labeled_repeats=args.labeled_repeats, pseudo_labels=args.pseudo_labels,
        long_text_pooling=args.long_text_pooling, work=args.runs or str(output / "runs"),
    )
    unlabeled = read_unlabeled(task, fields) if set(methods) & set(UNLABELED_METHODS) else []
    if set(methods) & set(UNLABELED_METHODS) and not unlabeled:
        raise SystemExit(f"fewclue.py: error: {', '.join(UNLABELED_METHODS)} need {task / UNLABELED_FILE}")
    quiet_logs()
    runs: List[RunResult] = []
    details: List[Dict[str, Any]] = []
    extras: Dict[str, List[str]] = {}
    start = time.perf_counter()
    report: Dict[str, Any] = {}
    num_labels = 0
    for split in splits:
        data = load_task(settings, split, task / TEST_FILE, unlabeled)
        num_labels = len(data.label_words)
        for method in methods:
            began = time.perf_counter()
            result = run_method(method, settings, data)
            wall = time.perf_counter() - began
            runs.append(RunResult(method, split.index, result["accuracy"], result["macro_f1"], wall, result["train_steps"]))
            print(f"split {split.index} {method:<13} test accuracy {100 * result['accuracy']:.2f}  ({wall:.0f} s)", flush=True)
            for name, extra in result.get("extra", {}).items():
                runs.append(RunResult(name, split.index, extra["accuracy"], extra["macro_f1"], 0.0, 0))
                extras.setdefault(method, [])
                if name not in extras[method]:
                    extras[method].append(name)
                print(f"split {split.index} {name:<13} test accuracy {100 * extra['accuracy']:.2f}", flush=True)
            details.append({"method": method, "split": split.index,
                            **{k: result[k] for k in ("label_words", "members") if k in result}})
            summary = summarize(runs, listed(methods, extras))
            report = {
                "task": str(task),
                "machine": machine,
                "splits": [s.index for s in splits],
                "methods": methods,
                "settings": asdict(settings),
                "runs": [asdict(r) for r in runs],
                "details": details,
                "summary": summary,
                "targets": check_targets(summary, num_labels),
                "wall_seconds": time.perf_counter() - start,
            }
            write_report(output, report)
    print(format_table(report["summary"]))
    for name, target in report["targets"].items():
        print(f"{name}: {'met' if target['met'] else 'MISSED'} ({target['margin_points']:+.2f} points)")
    print(f"total wall time {report['wall_seconds'] / 60:.1f} min; report in {output}")
    return report


def quiet_logs() -> None:
    """Keep PaddleNLP's per-run banners out of the table."""
    from paddlenlp.utils.log import logger

    logger.set_level("WARNING")
    logging.getLogger("fewshot").setLevel(logging.WARNING)


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
