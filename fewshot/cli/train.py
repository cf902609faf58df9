"""``fewshot-train``: fit a prompt classifier on labelled rows, evaluate on --dev, save it with metrics.json.

    fewshot-train --train train.txt --dev dev.txt --labels label.txt --model ernie-3.0-base-zh --output out/

With ``--unlabeled FILE`` it learns from unlabelled texts too (``fewshot.unlabeled``): members for
every ``--pattern`` (and ``--member-labels`` set, and seed), their soft labels on the texts, one
distilled classifier in ``OUT/model`` (members, soft labels and ``report.json`` beside it; rerun
the same command to resume an interrupted run)::

    fewshot-train ... --output out/ --unlabeled unlabeled.json --pattern T1 --pattern T2 --student-steps 1250

Training options (``--max-steps``, ``--learning-rate``, ``--rdrop`` …) and their defaults are
generated from ``PromptTrainingArguments``, the distillation options from ``DistillationConfig``;
the classifier's from ``PromptClassifier``'s constants.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Dict, List, Optional, Tuple

from ..atomic import check_inputs_outside, check_replaceable
from ..baselines import BASELINE_METHODS, EmbeddingClassifier
from ..baselines.embedding import CONFIG_NAME as BASELINE_CONFIG_NAME
from ..classifier import CONFIG_NAME, DEFAULT_MAX_SEQ_LENGTH, DEFAULT_TEMPLATE, METHODS, PromptClassifier
from ..data import DEFAULT_JSON_FIELDS, Example, TaskFolder, format_fields, is_json_lines, parse_fields, read_examples
from ..importing.paddlenlp_files import template_argument
from ..prompt.verbalizers import VERBALIZERS, verbalizer_option
from ..prompt.label_search import LabelWordSearch
from ..tasks import DEFAULT_LABEL_DELIMITER, DEFAULT_PATH_DELIMITER, Task, build_task, resolve_label_words
from ..tasks.pooling import POOLINGS
from ..template import DEFAULT_POOLING, ENCODERS, LongText, named_fields, set_soft_encoder
from ..training.arguments import PromptTrainingArguments
from ..training.distributed import end_process
from ..training.progress import LossLines, quiet_paddlenlp
from ..unlabeled import DistillationConfig, distill
from ..unlabeled.config import OPTIONS as DISTILLATION_OPTIONS
from ..unlabeled.distill import MODEL_DIR
from ..numbers import int_option
from .common import run
from .options import OnceOption, add_dataclass_options, dataclass_values, with_underscore_spellings

TRAINING_OPTIONS = (
    "max_steps", "num_train_epochs", "per_device_train_batch_size", "learning_rate", "ppt_learning_rate",
    "freeze_plm", "use_rdrop", "alpha_rdrop", "use_rgl", "alpha_rgl", "logging_steps", "seed",
    "eval_steps", "early_stopping_patience", "early_stopping_threshold", "metric_for_best_model",
)
EVAL_OPTIONS = ("per_device_eval_batch_size",)
"""fewshot-train's own: the batch of its evaluations during fit (fewshot-report has an inference --eval-batch-size)."""
FLAGS = {"num_train_epochs": "--epochs", "per_device_train_batch_size": "--batch-size", "use_rdrop": "--rdrop",
         "use_rgl": "--rgl", "early_stopping_patience": ("--early-stopping-patience", "--early_stop_nums"),
         "per_device_eval_batch_size": "--eval-batch-size"}
DISTILLATION_FLAGS = {"patterns": "--pattern"}


def add_classifier_options(p: argparse.ArgumentParser, required: bool = True, several: bool = False) -> None:
    """``--labels``, ``--model``, the template, verbalizer, method and task options of a new classifier;
    ``several`` (fewshot-compare): ``--model``/``--checkpoints`` and ``--method`` take one value or more."""
    p.add_argument("--labels", required=required, help="label file: one label per line or label==word lines")
    if several:
        p.add_argument("--checkpoints", "--model", dest="model", nargs="+", required=required,
                       help="models to compare: names or directories, optionally NAME=PATH (base@320=out/model_320)")
    else:
        p.add_argument("--model", "--model_name_or_path", dest="model", required=required,
                       help="PaddleNLP model name (ernie-3.0-base-zh) or local directory")
    p.add_argument("--template", "--prompt", dest="template", action=OnceOption, default=DEFAULT_TEMPLATE,
                   help=f"prompt template, or PaddleNLP's template_config.json (default {DEFAULT_TEMPLATE})")
    p.add_argument("--soft-encoder", "--soft_encoder", dest="soft_encoder", choices=ENCODERS, default=None,
                   help="encoder for the template's soft tokens that name none")
    p.add_argument("--verbalizer", type=verbalizer_option, default="manual", metavar="KIND[:OPTION=VALUE,...]",
                   help=f"one of {', '.join(VERBALIZERS)}, with options as in "
                        "paddlenlp:token_aggregate_type=max,mask_aggregate_type=mean (default manual)")
    p.add_argument("--method", choices=METHODS if several else [*METHODS, *BASELINE_METHODS],
                   default=[METHODS[0]] if several else METHODS[0],
                   nargs="+" if several else None,
                   help="prompt: train the template + verbalizer; finetune: [CLS] head baseline on the same PLM; "
                        "zeroshot: manual verbalizer, no training; embed-lr: mean-pooled PLM embeddings + logistic "
                        "regression; setfit: contrastive fine-tuning (--max-steps pair batches, default 100) + the same")
    p.add_argument("--calibrate", action="store_true",
                   help="zeroshot only: subtract the label prior estimated from the training texts")
    task = p.add_mutually_exclusive_group()
    task.add_argument("--multi-label", action="store_true",
                      help="several labels per row (joined by --label-delimiter); sigmoid outputs")
    task.add_argument("--hierarchical", action="store_true",
                      help="labels are paths (joined by --path-delimiter); predictions are consistent paths")
    p.add_argument("--label-delimiter", default=DEFAULT_LABEL_DELIMITER,
                   help=f"between a multi-label row's labels (default {DEFAULT_LABEL_DELIMITER})")
    p.add_argument("--path-delimiter", default=DEFAULT_PATH_DELIMITER,
                   help=f"between the levels of a hierarchical label (default {DEFAULT_PATH_DELIMITER})")
    p.add_argument("--max-seq-length", "--max_seq_length", dest="max_seq_length", type=int_option(low=1),
                   default=DEFAULT_MAX_SEQ_LENGTH)
    p.add_argument("--long-text", nargs="?", const=DEFAULT_POOLING, choices=POOLINGS, default=None,
                   help="classify texts longer than the template's room by overlapping windows whose probabilities "
                        f"are pooled (default pooling {DEFAULT_POOLING}); training gives every window the text's label")
    p.add_argument("--window-overlap", type=int_option(low=0), default=None,
                   help="--long-text: tokens neighbouring windows share (default: a quarter of a window)")
    p.add_argument("--auto-label-words", action="store_true",
                   help="choose the label words from the masked LM's predictions on --train (--labels names the "
                        "labels only); see fewshot-labelwords to review them first")


def add_fields_option(p: argparse.ArgumentParser) -> None:
    default_fields = format_fields(DEFAULT_JSON_FIELDS)
    p.add_argument("--fields", default=default_fields, help=f"JSON-lines field mapping (default {default_fields})")


def add_training_options(p: argparse.ArgumentParser, inherit: bool = False) -> None:
    """The training options (``--max-steps``, ``--learning-rate`` …), generated from ``PromptTrainingArguments``.

    ``inherit`` (commands that train again with a saved classifier's settings): an option not given is
    left out of :func:`fit_options`, so the saved classifier's ``training_arguments`` apply, else the defaults."""
    p.add_argument("--verbose", action="store_true", help="PaddleNLP's full log, every training argument included")
    defaults = {name: None for name in TRAINING_OPTIONS if name != "seed"} if inherit else None
    add_dataclass_options(p, PromptTrainingArguments, TRAINING_OPTIONS, with_underscore_spellings(TRAINING_OPTIONS, FLAGS),
                          defaults)


def fit_options(args: argparse.Namespace, saved: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    """``fit`` keyword arguments from the training options given (over ``saved``, a saved classifier's
    ``training_arguments``), with the one-line loss log unless ``--verbose``."""
    given = {name: value for name, value in dataclass_values(args, TRAINING_OPTIONS).items() if value is not None}
    return {"callbacks": [] if args.verbose else [LossLines()], **(saved or {}), **given}


def task_from_args(args: argparse.Namespace) -> Tuple[Dict[str, List[str]], Task]:
    """Label words and the task of ``--labels`` with the task options."""
    return build_task(args.labels, args.multi_label, args.hierarchical, args.label_delimiter, args.path_delimiter)


def read_rows(path: str, task: Task, args: argparse.Namespace, template: Optional[str] = None) -> List[Example]:
    """Labelled rows of a TSV or JSON-lines file (``--fields``, and the fields the text slots of ``template``
    — by default ``--template`` — name), labels checked by the task."""
    fields = {**parse_fields(args.fields), **named_fields(args.template if template is None else template)}
    return read_examples(path, labels=task.check, fields=fields if is_json_lines(path) else None)


def classifier_from_args(args: argparse.Namespace, label_words: Dict[str, List[str]], task: Task) -> PromptClassifier:
    """A new (untrained) classifier from the classifier options."""
    return PromptClassifier.from_task(
        args.model, task, label_words, template=template_from_args(args), verbalizer=args.verbalizer,
        max_seq_length=args.max_seq_length, method=args.method, calibrate=args.calibrate, seed=args.seed,
        long_text=long_text_from_args(args), search=LabelWordSearch() if args.auto_label_words else None,
    )


def template_from_args(args: argparse.Namespace) -> str:
    """``--template`` (text, or PaddleNLP's ``template_config.json``) with ``--soft-encoder`` applied to
    its soft tokens that name none."""
    template = template_argument(args.template)
    return set_soft_encoder(template, args.soft_encoder) if args.soft_encoder else template


def long_text_from_args(args: argparse.Namespace) -> Optional[LongText]:
    """``--long-text [POOLING]`` and ``--window-overlap``, or None."""
    return LongText(args.long_text, args.window_overlap) if args.long_text else None


def use_data_dir(args: argparse.Namespace) -> None:
    """Fill ``--train``, ``--dev`` and ``--labels`` not given from the ``--data-dir`` folder
    (``dev.txt`` only when present)."""
    folder = TaskFolder.open(args.data_dir)
    args.train = args.train or str(folder.path("train"))
    args.labels = args.labels or str(folder.path("labels"))
    if args.dev is None and folder.has("dev"):
        args.dev = str(folder.path("dev"))


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="fewshot-train", description="Train a prompt classifier on a few labelled examples.")
    p.add_argument("--train", help="training data: text<TAB>label file or JSON lines")
    p.add_argument("--dev", help="evaluation data, same formats")
    p.add_argument("--data-dir", "--data_dir", dest="data_dir",
                   help="PaddleNLP data folder: its train.txt, dev.txt (when present) and label.txt stand for "
                        "--train, --dev and --labels not given")
    p.add_argument("--output", "--output_dir", dest="output", required=True,
                   help="directory for the trained classifier and metrics.json")
    add_classifier_options(p, required=False)
    p.add_argument("--tune-thresholds", action="store_true",
                   help="multi-label/hierarchical: tune one decision threshold per label on --dev")
    p.add_argument("--fit-temperature", action="store_true",
                   help="fit the temperature that calibrates the probabilities on --dev (predictions unchanged)")
    add_fields_option(p)
    add_training_options(p)
    add_dataclass_options(p, PromptTrainingArguments, EVAL_OPTIONS, with_underscore_spellings(EVAL_OPTIONS, FLAGS))
    unlabeled = p.add_argument_group("learning from unlabelled text (with --unlabeled)")
    unlabeled.add_argument("--unlabeled", help="unlabelled texts: one per line, or JSON lines read with --fields' text_a")
    add_dataclass_options(unlabeled, DistillationConfig, DISTILLATION_OPTIONS, DISTILLATION_FLAGS)
    return p


def main(argv: Optional[List[str]] = None) -> int:
    """``fewshot-train``: exit status 0, or 2 with one error line for bad input (under
    ``paddle.distributed.launch`` with several processes the process ends here: ``end_process``)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    for flag, value in (("--train", args.train), ("--labels", args.labels)):
        if value is None and not args.data_dir:
            parser.error(f"the following arguments are required: {flag} (or --data-dir)")
    if not args.model:
        parser.error("the following arguments are required: --model")
    if args.calibrate and args.method != "zeroshot":
        parser.error(f"--calibrate applies to --method zeroshot only, not --method {args.method}")
    if args.tune_thresholds and not (args.dev and (args.multi_label or args.hierarchical)):
        parser.error("--tune-thresholds needs --multi-label or --hierarchical, and --dev")
    if args.fit_temperature and not args.dev:
        parser.error("--fit-temperature needs --dev")
    changed = [name for name in DISTILLATION_OPTIONS if getattr(args, name) != parser.get_default(name)]
    if changed and not args.unlabeled:
        flags = ", ".join(DISTILLATION_FLAGS.get(n, "--" + n.replace("_", "-")) for n in changed)
        parser.error(f"{flags} appl{'ies' if len(changed) == 1 else 'y'} to --unlabeled only")
    if args.window_overlap is not None and not args.long_text:
        parser.error("--window-overlap applies to --long-text only")
    if args.method in BASELINE_METHODS and (args.long_text or args.auto_label_words or args.fit_temperature):
        parser.error(f"--method {args.method} does not combine with --long-text, --auto-label-words or --fit-temperature")
    if args.unlabeled and (args.tune_thresholds or args.fit_temperature or args.auto_label_words
                           or args.method != "prompt"):
        parser.error("--unlabeled trains prompt members with given label words; it does not combine with "
                     "--tune-thresholds, --fit-temperature, --auto-label-words or --method " + args.method)
    return end_process(run(lambda: _train(args), "fewshot-train"))


def _train(args: argparse.Namespace) -> int:
    quiet_paddlenlp(args.verbose)  # before the model loads: PaddleNLP logs every file it reads
    if args.data_dir:
        use_data_dir(args)
    if not args.unlabeled:
        marker = BASELINE_CONFIG_NAME if args.method in BASELINE_METHODS else CONFIG_NAME
        check_replaceable(args.output, marker, "the classifier")
        check_inputs_outside(args.output, (args.train, args.dev, args.labels, args.model))
    label_words, task = task_from_args(args)
    train = read_rows(args.train, task, args)
    dev = read_rows(args.dev, task, args) if args.dev else None
    print(f"fewshot-train: {len(train)} training rows{f', {len(dev)} dev rows' if dev else ''}, "
          f"{len(task.labels)} labels ({task.description}); model {args.model}", file=sys.stderr)
    if args.unlabeled:
        return _distill(args, task, label_words, train, dev)
    if args.method in BASELINE_METHODS:
        return _baseline(args, task, train, dev)
    clf = classifier_from_args(args, label_words, task)
    metrics = clf.fit(train, eval_data=dev, tune_thresholds=args.tune_thresholds, **fit_options(args),
                      **dataclass_values(args, EVAL_OPTIONS))
    if args.fit_temperature:
        metrics["temperature"] = clf.fit_temperature(dev)
        clf.train_metrics = metrics
    clf.save(args.output)
    print(json.dumps(metrics, indent=2, ensure_ascii=False))
    if args.auto_label_words:
        print(f"fewshot-train: label words chosen from the training data: {clf.label_words}", file=sys.stderr)
    print(f"fewshot-train: saved the classifier to {args.output}", file=sys.stderr)
    return 0


def _baseline(args: argparse.Namespace, task: Task, train: List[Example], dev: Optional[List[Example]]) -> int:
    """``--method embed-lr|setfit``: the embedding baselines, saved with their metrics."""
    settings = dict(BASELINE_METHODS[args.method])
    if settings["contrastive_steps"] and args.max_steps > 0:
        settings["contrastive_steps"] = args.max_steps
    clf = EmbeddingClassifier(args.model, task.labels, max_seq_length=args.max_seq_length, seed=args.seed,
                              learning_rate=args.learning_rate, **settings)
    metrics = clf.fit(train)
    if dev:
        metrics.update({f"eval_{k}": v for k, v in clf.evaluate(dev).items()})
    clf.train_metrics = metrics
    clf.save(args.output)
    print(json.dumps(metrics, indent=2, ensure_ascii=False))
    print(f"fewshot-train: saved the {args.method} baseline to {args.output}", file=sys.stderr)
    return 0


def _distill(args: argparse.Namespace, task: Task, label_words: Dict[str, List[str]], train: List[Example],
             dev: Optional[List[Example]]) -> int:
    """``--unlabeled``: members, soft labels, the distilled classifier in ``OUTPUT/model``."""
    config = DistillationConfig(**dataclass_values(args, DISTILLATION_OPTIONS))
    fields = parse_fields(args.fields)
    unlabeled = read_examples(args.unlabeled, labeled=False, fields=fields if is_json_lines(args.unlabeled) else None)
    sets = [resolve_label_words(path) for path in config.member_labels]
    options = {"verbalizer": args.verbalizer, "max_seq_length": args.max_seq_length,
               "long_text": long_text_from_args(args)}
    fit = fit_options(args)
    result = distill(args.model, task, label_words, train, unlabeled, args.output, config,
                     template=template_from_args(args), eval_data=dev, label_word_sets=sets, classifier_options=options,
                     training_args={k: v for k, v in fit.items() if k != "callbacks"}, callbacks=fit["callbacks"])
    print(json.dumps(result.report, indent=2, ensure_ascii=False))
    print(f"fewshot-train: saved the distilled classifier to {result.output / MODEL_DIR} "
          f"(members, soft labels and report.json in {result.output})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
