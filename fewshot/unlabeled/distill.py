"""Learn from unlabelled text: train an ensemble of prompt members, soft-label the texts, distil one classifier.

PET / iPET (Schick & Schütze 2021) in three resumable phases, everything under one run directory::

    OUTPUT/run.json                 fingerprints of each member's and the student's settings and data
    OUTPUT/members/g0-0/ ...        each member: a saved PromptClassifier (atomic)
    OUTPUT/soft_labels/g0-0.npz     each member's probabilities on the unlabelled (and eval) texts
    OUTPUT/soft_labels/g0.npz       the generation's soft labels: the members' mean tempered distribution
    OUTPUT/model/                   the distilled classifier: an ordinary PromptClassifier (load, export)
    OUTPUT/report.json              eval metrics of every member, of the ensemble and of the student

1. **members**: one per pattern × label-word set × seed, trained on the labelled rows
   (``fit``'s ``training_args``). In iPET generation ``g ≥ 1`` a member also trains on
   ``len(train) * ipet_growth**g`` unlabelled texts pseudo-labelled (hard labels, the most
   confident ones, class-balanced like the labelled rows) by the previous generation's *other*
   members, each keeping its pattern and label words.
2. **labelling**: every member predicts the unlabelled texts; the soft labels are the mean over
   members of ``activate(logits / temperature)``.
3. **distillation**: a fresh classifier (``student_model``, ``student_template``) trains for
   ``student_steps`` on the soft labels (soft cross-entropy, i.e. KL) plus the labelled rows
   (cross-entropy), or — self-training, ``pseudo_labels=N`` — on the N most confident texts with
   hard labels.

Each finished member, prediction file and the student are written atomically, so an interrupted
run loses at most the member or phase in progress; rerunning with the same output resumes (a
finished member is not retrained). Runs may share a directory where they share members: a run
with more generations, or a subset of the members, reuses the finished ones, and a run that
changes only the student's settings retrains only the student; a member of the same name made
with other settings or data is refused. Softmax tasks support everything; sigmoid tasks (multi-label,
hierarchical) distil on per-label soft probabilities, and refuse pseudo-labels (iPET generations,
self-training), which need one label per text.

>>> result = distill("ernie-3.0-base-zh", task, label_words, train, unlabeled, "out/",
...                  DistillationConfig(patterns=[T1, T2, T3]), eval_data=dev, training_args={"max_steps": 100})
>>> result.report["ensemble"]["accuracy"], result.report["student"]["accuracy"]
(0.262, 0.27)
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
from tqdm import tqdm

from ..atomic import atomic_file
from ..classifier import CONFIG_NAME, DEFAULT_TEMPLATE, PromptClassifier
from ..data import Example, to_examples
from ..documents import json_text
from ..errors import FewshotError, TemplateError
from ..tasks import Task
from ..template import parse_template
from ..training.arguments import PromptTrainingArguments
from .config import DistillationConfig
from .soft_labels import class_counts, confident_rows, ensemble_soft_labels, load_arrays, one_hot, save_arrays

logger = logging.getLogger(__name__)

RUN_NAME = "run.json"
REPORT_NAME = "report.json"
MODEL_DIR = "model"
MEMBERS_DIR = "members"
SOFT_LABELS_DIR = "soft_labels"
STUDENT_KEYS = ("labeled_repeats", "pseudo_labels", "temperature")
"""DistillationConfig fields (besides ``student_*``) that change what the student learns."""
LABEL_CHUNK = 2048
"""Unlabelled texts predicted per step of the labelling bar."""
PREDICT_BATCH = 64


@dataclass(frozen=True)
class Member:
    """One ensemble member: its name (``g0-2``), generation, template, label words and seed."""

    name: str
    generation: int
    index: int
    template: str
    label_words: Dict[str, List[str]]
    seed: int


@dataclass
class DistillationResult:
    """The distilled classifier (also saved in ``OUTPUT/model``) and the run's report."""

    classifier: PromptClassifier
    report: Dict[str, Any]
    output: Path


def plan_members(
    config: DistillationConfig, template: str, label_word_sets: Sequence[Dict[str, List[str]]], seed: int,
) -> List[List[Member]]:
    """The members of every generation: pattern × label-word set × ``seeds_per_member`` seeds.

    Member ``i`` of generation ``g`` has seed ``seed + i + 1000 * g`` and the pattern and words of
    member ``i`` of generation 0.
    """
    patterns = list(config.patterns) or [template]
    specs = [(p, words) for p in patterns for words in label_word_sets for _ in range(config.seeds_per_member)]
    return [
        [Member(f"g{g}-{i}", g, i, p, dict(words), seed + i + 1000 * g) for i, (p, words) in enumerate(specs)]
        for g in range(config.generations)
    ]


def fingerprint(value: Any) -> str:
    """A short, stable hash of a JSON-ready value."""
    text = json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def _texts(examples: Sequence[Example]) -> List[Any]:
    return [(e.text_a, e.text_b) for e in examples]


class Distillation:
    """One run of :func:`distill` over a run directory; see the module docstring for the phases."""

    def __init__(
        self,
        model: str,
        task: Task,
        label_words: Mapping[str, List[str]],
        train: Sequence[Example],
        unlabeled: Sequence[Example],
        output: Union[str, "os.PathLike[str]"],
        config: DistillationConfig,
        template: str,
        eval_data: Optional[Sequence[Example]],
        label_word_sets: Sequence[Mapping[str, List[str]]],
        classifier_options: Mapping[str, Any],
        training_args: Mapping[str, Any],
        callbacks: Sequence[Any],
        progress: bool,
    ):
        self.model = model
        self.task = task
        self.label_words = {label: list(words) for label, words in label_words.items()}
        self.train = list(train)
        self.unlabeled = list(unlabeled)[: config.max_unlabeled]
        self.eval_data = list(eval_data) if eval_data else []
        self.output = Path(output)
        self.config = config
        self.template = template
        self.classifier_options = dict(classifier_options)
        self.training_args = dict(training_args)
        self.callbacks = list(callbacks)
        self.progress = progress
        sets = [{label: list(words) for label, words in s.items()} for s in label_word_sets] or [self.label_words]
        for i, words in enumerate(sets):
            if list(words) != list(task.labels):
                raise FewshotError(f"distillation: label-word set {i + 1} has labels {list(words)[:5]}..., "
                                   f"not the task's {task.labels[:5]}... (same labels, same order)")
        if config.generations > 1 or config.pseudo_labels:
            task.require("pseudo_labels", "iPET generations and self-training (pseudo_labels)")
        if not self.unlabeled:
            raise FewshotError("distillation: no unlabelled texts")
        self.seed = int(self.training_args.get("seed", PromptTrainingArguments.seed))
        check_patterns(config, template)
        self.members = plan_members(config, template, sets, self.seed)
        self.timings: Dict[str, float] = {}

    # -- files ---------------------------------------------------------------------------------------

    def member_dir(self, member: Member) -> Path:
        return self.output / MEMBERS_DIR / member.name

    def predictions_file(self, member: Member) -> Path:
        return self.output / SOFT_LABELS_DIR / f"{member.name}.npz"

    def soft_labels_file(self, generation: int) -> Path:
        return self.output / SOFT_LABELS_DIR / f"g{generation}.npz"

    def fingerprints(self) -> Tuple[Dict[str, str], str]:
        """A fingerprint per member (what its files were made from) and one of the student.

        A member's covers the model, task, template, label words, seed, classifier and training
        options and the data it was trained on and predicted (iPET members also the previous
        generation's fingerprints, the temperature and the growth); the student's covers the last
        generation's members and every student setting.
        """
        base = {
            "model": self.model, "task": self.task.config(), "labels": self.task.labels,
            "classifier_options": self.classifier_options, "training_args": self.training_args,
            "train": fingerprint([[e.text_a, e.text_b, e.label] for e in self.train]),
            "unlabeled": fingerprint(_texts(self.unlabeled)),
            "eval": fingerprint([[e.text_a, e.text_b, e.label] for e in self.eval_data]),
        }
        members: Dict[str, str] = {}
        previous: List[str] = []
        for generation in self.members:
            current = []
            for m in generation:
                spec = {**base, "template": m.template, "label_words": m.label_words, "seed": m.seed}
                if m.generation:
                    spec.update(index=m.index, previous=previous, temperature=self.config.temperature,
                                ipet_growth=self.config.ipet_growth)
                members[m.name] = fingerprint(spec)
                current.append(members[m.name])
            previous = current
        settings = {k: v for k, v in self.config.config().items() if k.startswith("student_") or k in STUDENT_KEYS}
        student = fingerprint({**base, "members": previous, "settings": settings,
                               "template": self.student_template()})
        return members, student

    def read_run_file(self) -> Dict[str, Any]:
        path = self.output / RUN_NAME
        if not path.is_file():
            return {"members": {}, "student": None}
        try:
            run = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise FewshotError(f"{path}: not valid JSON ({exc}); remove the directory to start afresh") from None
        if not isinstance(run, dict) or not isinstance(run.get("members"), dict):
            raise FewshotError(f"{path}: not a distillation run file; remove the directory to start afresh")
        return run

    def write_run_file(self, run: Dict[str, Any]) -> None:
        self.output.mkdir(parents=True, exist_ok=True)
        with atomic_file(self.output / RUN_NAME) as tmp:
            tmp.write_text(json_text(run), encoding="utf-8")

    def check_run_file(self) -> Dict[str, Any]:
        """Refuse a run directory whose members were made with other settings or data; record ours.

        Members of the same name and fingerprint are reused (resume, or another run sharing them:
        more generations, a subset of the members, other student settings); the student is
        retrained when its settings changed.
        """
        run = self.read_run_file()
        members, student = self.fingerprints()
        conflicts = [m.name for generation in self.members for m in generation
                     if run["members"].get(m.name, members[m.name]) != members[m.name]
                     and (self.predictions_file(m).exists() or self.member_dir(m).exists())]
        if conflicts:
            raise FewshotError(
                f"{self.output}: member(s) {', '.join(conflicts)} were trained with other settings or data "
                "(templates, label words, seeds, training options, texts); rerun with the same settings to resume, "
                "or choose another output directory"
            )
        run["members"].update(members)
        run["plan"] = [[m.name for m in generation] for generation in self.members]
        self.write_run_file(run)
        self.student_fingerprint = student
        return run

    # -- phases --------------------------------------------------------------------------------------

    def run(self) -> DistillationResult:
        self.run_file = self.check_run_file()
        member_probs: List[Dict[str, np.ndarray]] = []
        for generation in self.members:
            member_probs = self.run_generation(generation, member_probs)
        soft = self.write_soft_labels(len(self.members) - 1, member_probs)
        student = self.distil(soft)
        report = self.report(member_probs, student)
        return DistillationResult(student, report, self.output)

    def run_generation(self, members: Sequence[Member], previous: List[Dict[str, np.ndarray]]) -> List[Dict[str, np.ndarray]]:
        """Train (or find) and label with every member of one generation; returns their predictions."""
        generation = members[0].generation
        total = len(self.members)
        results = []
        bar = tqdm(members, desc=f"generation {generation + 1}/{total}: members", disable=not self.progress,
                   file=sys.stderr, unit="member")
        for member in bar:
            bar.set_postfix_str(member.name)
            path = self.predictions_file(member)
            if path.is_file():
                results.append(load_arrays(path))
                continue
            clf = self.trained_member(member, previous)
            results.append(self.label_with(clf, member))
            del clf
        bar.close()
        return results

    def trained_member(self, member: Member, previous: List[Dict[str, np.ndarray]]) -> PromptClassifier:
        """The member's classifier: loaded when a previous run finished it, else trained and saved."""
        directory = self.member_dir(member)
        if (directory / CONFIG_NAME).is_file():
            return PromptClassifier.load(directory)
        began = time.perf_counter()
        clf = PromptClassifier.from_task(self.model, self.task, member.label_words, template=member.template,
                                         seed=member.seed, **self.classifier_options)
        extra: Dict[str, Any] = {}
        if member.generation > 0:
            extra = {"soft_targets": self.ipet_targets(member, previous)}
        # The members' bar is this phase's progress; the trainer's own bar would nest inside it.
        args = {**self.training_args, "seed": member.seed, "disable_tqdm": True}
        clf.fit(self.train, callbacks=self.callbacks, **extra, **args)
        clf.save(directory)
        self.timings[f"train {member.name}"] = time.perf_counter() - began
        return clf

    def ipet_targets(self, member: Member, previous: List[Dict[str, np.ndarray]]) -> Tuple[List[Any], np.ndarray]:
        """iPET: the texts and hard labels the previous generation's other members are surest of."""
        others = [p["unlabeled"] for i, p in enumerate(previous) if i != member.index] or [previous[0]["unlabeled"]]
        probs = ensemble_soft_labels(self.task.activation, others, self.config.temperature)
        count = min(len(self.unlabeled), int(len(self.train) * self.config.ipet_growth ** member.generation))
        rows, labels = confident_rows(probs, class_counts(count, self.label_shares()))
        return [self.unlabeled[i] for i in rows], one_hot(labels, len(self.task.labels))

    def label_shares(self) -> np.ndarray:
        """Each label's share of the labelled rows (what pseudo-labels are balanced like)."""
        targets = np.array([self.task.soft_target(e.label) for e in self.train])
        return targets.mean(axis=0) + 1e-9

    def label_with(self, clf: PromptClassifier, member: Member) -> Dict[str, np.ndarray]:
        """The member's probabilities on the unlabelled (and eval) texts, saved; the member dropped
        afterwards unless ``keep_members``."""
        began = time.perf_counter()
        texts = _texts(self.unlabeled)
        chunks = range(0, len(texts), LABEL_CHUNK)
        parts = [clf.predict_proba(texts[start : start + LABEL_CHUNK], batch_size=PREDICT_BATCH)
                 for start in tqdm(chunks, desc=f"labelling with {member.name}", disable=not self.progress,
                                   file=sys.stderr, unit="chunk", leave=False)]
        arrays = {"unlabeled": np.concatenate(parts)}
        if self.eval_data:
            arrays["eval"] = clf.predict_proba(_texts(self.eval_data), batch_size=PREDICT_BATCH)
        save_arrays(self.predictions_file(member), arrays)
        if not self.config.keep_members:
            shutil.rmtree(self.member_dir(member), ignore_errors=True)
        self.timings[f"label {member.name}"] = time.perf_counter() - began
        return arrays

    def write_soft_labels(self, generation: int, member_probs: List[Dict[str, np.ndarray]]) -> np.ndarray:
        """The generation's soft labels, saved to ``soft_labels/gN.npz``; returned."""
        soft = ensemble_soft_labels(self.task.activation, [p["unlabeled"] for p in member_probs], self.config.temperature)
        path = self.soft_labels_file(generation)
        if not path.is_file():
            save_arrays(path, {"soft_labels": soft})
        return soft

    def student_targets(self, soft: np.ndarray) -> Tuple[List[Any], np.ndarray]:
        """What the student trains toward: every text's soft label, or (self-training) the most
        confident texts' hard labels."""
        texts = _texts(self.unlabeled)
        if not self.config.pseudo_labels:
            return texts, soft
        count = min(self.config.pseudo_labels, len(texts))
        rows, labels = confident_rows(soft, class_counts(count, self.label_shares()))
        return [texts[i] for i in rows], one_hot(labels, len(self.task.labels))

    def student_args(self) -> Dict[str, Any]:
        """The members' training arguments with the student's steps, learning rate and R-Drop."""
        args = {**self.training_args, "max_steps": self.config.student_steps, "disable_tqdm": not self.progress}
        if self.config.student_learning_rate is not None:
            args["learning_rate"] = self.config.student_learning_rate
        if self.config.student_rdrop is not None:
            args["use_rdrop"] = self.config.student_rdrop
        return args

    def distil(self, soft: np.ndarray) -> PromptClassifier:
        """The distilled classifier: loaded when a previous run finished it, else trained and saved."""
        directory = self.output / MODEL_DIR
        if (directory / CONFIG_NAME).is_file() and self.run_file.get("student") == self.student_fingerprint:
            return PromptClassifier.load(directory)
        began = time.perf_counter()
        model = self.config.student_model or self.model
        template = self.student_template()
        student = PromptClassifier.from_task(model, self.task, self.members[0][0].label_words, template=template,
                                             seed=self.seed, **self.classifier_options)
        if self.progress:
            print(f"distillation: training the student on {len(soft)} soft-labelled texts "
                  f"({self.config.student_steps} steps)", file=sys.stderr)
        student.fit(self.train, callbacks=self.callbacks, soft_targets=self.student_targets(soft),
                    labeled_repeats=self.config.labeled_repeats, **self.student_args())
        student.save(directory)
        self.run_file["student"] = self.student_fingerprint
        self.write_run_file(self.run_file)
        self.timings["distillation"] = time.perf_counter() - began
        return student

    def student_template(self) -> str:
        return self.config.student_template or self.members[0][0].template

    def report(self, member_probs: List[Dict[str, np.ndarray]], student: PromptClassifier) -> Dict[str, Any]:
        """Eval metrics of each member of the last generation, of their ensemble and of the student,
        written to ``report.json``."""
        report: Dict[str, Any] = {
            "output": str(self.output),
            "members": [m.name for generation in self.members for m in generation],
            "unlabeled_rows": len(self.unlabeled),
            "timings_seconds": self.timings,
        }
        if self.eval_data:
            gold = [e.label for e in self.eval_data]
            last = self.members[-1]
            report["member_metrics"] = {m.name: self.task.metrics(p["eval"], gold) for m, p in zip(last, member_probs)}
            ensemble = ensemble_soft_labels(self.task.activation, [p["eval"] for p in member_probs],
                                            self.config.temperature)
            report["ensemble"] = self.task.metrics(ensemble, gold)
            report["student"] = student.evaluate(self.eval_data, batch_size=PREDICT_BATCH)
        with atomic_file(self.output / REPORT_NAME) as tmp:
            tmp.write_text(json_text(report), encoding="utf-8")
        return report


def check_patterns(config: DistillationConfig, template: str) -> None:
    """Before any member trains: every pattern (and the student's template) parses and has a
    ``{'mask'}`` slot, and a ``student_model`` given as a path is a directory."""
    named = [(f"--pattern {i}", p) for i, p in enumerate(config.patterns or [template], 1)]
    if config.student_template:
        named.append(("--student-template", config.student_template))
    for name, pattern in named:
        try:
            parts = parse_template(pattern)
        except TemplateError as exc:
            raise TemplateError(f"distillation: {name} {pattern!r}: {exc}") from None
        if not any(part.kind == "mask" for part in parts):
            raise TemplateError(f"distillation: {name} {pattern!r} has no {{'mask'}} slot; every member and the "
                                "student are prompt classifiers")
    student = config.student_model
    if student and (os.sep in student or student.startswith(".")) and not Path(student).is_dir():
        raise FewshotError(f"distillation: --student-model {student}: no such model directory")


def distill(
    model: str,
    task: Task,
    label_words: Mapping[str, List[str]],
    train: Any,
    unlabeled: Any,
    output: Union[str, "os.PathLike[str]"],
    config: Optional[DistillationConfig] = None,
    template: str = DEFAULT_TEMPLATE,
    eval_data: Any = None,
    label_word_sets: Sequence[Mapping[str, List[str]]] = (),
    classifier_options: Optional[Mapping[str, Any]] = None,
    training_args: Optional[Mapping[str, Any]] = None,
    callbacks: Sequence[Any] = (),
    progress: bool = True,
) -> DistillationResult:
    """Train members, soft-label ``unlabeled``, distil one classifier; resumable in ``output``.

    ``train``/``eval_data``: labelled examples (or rows ``to_examples`` reads); ``unlabeled``: texts
    or examples. ``label_word_sets``: the members' label-word sets (default: ``label_words``).
    ``classifier_options``: ``PromptClassifier.from_task`` options (``max_seq_length``,
    ``verbalizer``, ``long_text``); ``training_args``: ``fit`` options of every member (and the
    student, with the config's student settings).
    """
    config = config or DistillationConfig()
    return Distillation(
        model, task, label_words, to_examples(train, labels=task.check), to_examples(unlabeled, labeled=False),
        output, config, template, to_examples(eval_data, labels=task.check) if eval_data else None,
        label_word_sets, classifier_options or {}, training_args or {}, callbacks, progress,
    ).run()
