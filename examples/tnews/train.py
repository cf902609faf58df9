"""PaddleNLP's few-shot text-classification example, unchanged on the command line, on fewshot.PromptClassifier.

    python train.py --data_dir ./data/tnews --output_dir ./checkpoints/ --prompt "这条新闻标题的主题是" \\
        --model_name_or_path ernie-3.0-base-zh --max_seq_length 128 --learning_rate 3e-5 --ppt_learning_rate 3e-4 \\
        --do_train --do_eval --max_steps 1000 --eval_steps 100 --logging_steps 10 \\
        --per_device_eval_batch_size 32 --per_device_train_batch_size 32 --do_predict --do_export
    python train.py --do_predict --data_dir ./data/tnews --output_dir ./predict_ckpt \\
        --resume_from_checkpoint ./checkpoints --max_seq_length 128

``--data_dir`` is a PaddleNLP data folder (``train.txt dev.txt test.txt data.txt label.txt``, see
``fewshot.data.TaskFolder``) or a FewCLUE task folder (``train_k.json``, ``dev_k.json``,
``test_public.json``, ``test.json``; ``--split k``). ``--do_train`` trains and saves the classifier to
``--output_dir`` (it also trains when no ``--resume_from_checkpoint`` is given: there is nothing else to
run); ``--do_eval`` evaluates dev (``eval_accuracy``), also every ``--eval_steps`` during training;
``--do_predict`` evaluates test (``test_accuracy``) and writes ``predictions.txt`` (``text<TAB>label``
per ``data.txt`` line; FewCLUE: ``test_predictions.json``); ``--do_export`` writes
``OUTPUT_DIR/export/``: the static graph ``model.json``/``model.pdiparams`` and the rest of our
bundle (``model.onnx``, tokenizer, ``fewshot.json``), which ``infer.py`` runs. Every metric goes to
``OUTPUT_DIR/all_results.json``. The training options and their defaults are
``PromptTrainingArguments``' fields, spelled as PaddleNLP spells them.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence

HERE = Path(__file__).resolve().parent
DEFAULT_PROMPT = "{'text': 'text_a'}这条新闻的主题是{'mask'}{'mask'}"
FEWCLUE_FIELDS = {"text_a": "sentence", "label": "label_desc"}
FEWCLUE_SPLITS = ("0", "1", "2", "3", "4", "few_all")
EXPORT_DIR = "export"
FEWCLUE_PREDICTIONS_NAME = "test_predictions.json"
RESULTS_NAME = "all_results.json"
PADDLENLP_ENCODER_HIDDEN_SIZE = 200

RUN_OPTIONS = ("do_train", "do_eval", "do_predict", "do_export", "resume_from_checkpoint")
FIT_OPTIONS = (
    "max_steps", "num_train_epochs", "per_device_train_batch_size", "learning_rate", "ppt_learning_rate", "freeze_plm",
    "use_rdrop", "alpha_rdrop", "use_rgl", "alpha_rgl", "logging_steps", "seed", "device",
    "evaluation_strategy", "eval_steps", "save_strategy", "save_steps", "load_best_model_at_end",
    "metric_for_best_model", "per_device_eval_batch_size",
)
EXAMPLE_DEFAULTS = {"do_train": False}  # PaddleNLP's: train only when asked


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """PaddleNLP's few-shot ``train.py`` options (``--do_train``, ``--per_device_train_batch_size``, ...) and
    the example's own (``--split``, ``--label_file``, ``--method``, ``--verbalizer``)."""
    from fewshot.classifier import DEFAULT_MAX_SEQ_LENGTH, METHODS
    from fewshot.cli.options import add_dataclass_options
    from fewshot.numbers import int_option
    from fewshot.prompt.verbalizers import VERBALIZERS, verbalizer_option
    from fewshot.template import ENCODERS
    from fewshot.training.arguments import PromptTrainingArguments

    p = argparse.ArgumentParser(description="Few-shot text classification with fewshot.PromptClassifier "
                                            "(PaddleNLP's few-shot example options).")
    p.add_argument("--data_dir", default=str(HERE.parents[2] / "shared" / "fewclue" / "tnews"),
                   help="PaddleNLP data folder (train.txt, dev.txt, test.txt, data.txt, label.txt) or FewCLUE "
                        "TNEWS folder (train_k.json, dev_k.json, test_public.json, test.json)")
    p.add_argument("--output_dir", default="output/tnews", help="the classifier, all_results.json, predictions, export/")
    p.add_argument("--split", default="0", choices=FEWCLUE_SPLITS, help="FewCLUE folder: few-shot split (default 0)")
    p.add_argument("--model_name_or_path", default="ernie-3.0-base-zh", help="PaddleNLP model name or local directory")
    p.add_argument("--label_file", default=None,
                   help="label==word lines (default: the folder's label.txt; FewCLUE: data/tnews/label.txt)")
    p.add_argument("--prompt", default=DEFAULT_PROMPT, help="template, PaddleNLP syntax, or its template_config.json")
    p.add_argument("--soft_encoder", choices=ENCODERS, default="lstm",
                   help="encoder of the prompt's {'soft'} tokens that name none (PaddleNLP's default lstm; "
                        "no effect on a prompt without soft tokens)")
    p.add_argument("--encoder_hidden_size", type=int_option(low=1), default=PADDLENLP_ENCODER_HIDDEN_SIZE,
                   help=f"hidden size of that encoder (default {PADDLENLP_ENCODER_HIDDEN_SIZE}, PaddleNLP's)")
    p.add_argument("--max_seq_length", type=int_option(low=8), default=DEFAULT_MAX_SEQ_LENGTH)
    p.add_argument("--method", choices=METHODS, default="prompt")
    p.add_argument("--verbalizer", type=verbalizer_option, default="soft", metavar="KIND[:OPTION=VALUE,...]",
                   help=f"one of {', '.join(VERBALIZERS)} (default soft: PaddleNLP's example trains a SoftVerbalizer)")
    p.add_argument("--early_stopping_patience", type=int_option(low=1), default=None,
                   help="stop when dev accuracy has not improved for N evaluations and keep the best model "
                        "(needs --do_eval; evaluates every --eval_steps, else every epoch)")
    options = RUN_OPTIONS + FIT_OPTIONS
    add_dataclass_options(p, PromptTrainingArguments, options, {name: "--" + name for name in options},
                          defaults=EXAMPLE_DEFAULTS)
    args = p.parse_args(argv)
    if args.early_stopping_patience and not args.do_eval:
        p.error("--early_stopping_patience needs --do_eval (it watches dev accuracy)")
    if trains(args) and args.max_steps == 0:
        p.error("--max_steps 0 trains nothing; give --resume_from_checkpoint to run a trained classifier")
    return args


def trains(args: argparse.Namespace) -> bool:
    """``--do_train``, or no ``--resume_from_checkpoint`` to run instead."""
    return bool(args.do_train or not args.resume_from_checkpoint)


def build_template(args: argparse.Namespace) -> str:
    """The prompt (text, or PaddleNLP's ``template_config.json``), its soft parts that name no encoder given
    ``--soft_encoder`` and ``--encoder_hidden_size``."""
    from dataclasses import replace

    from fewshot.importing.paddlenlp_files import template_argument
    from fewshot.template import format_part, parse_template

    prompt = template_argument(args.prompt)
    parts = parse_template(prompt)
    if args.soft_encoder == "none" or not any(p.kind == "soft" and p.encoder == "none" for p in parts):
        return prompt
    encoded = [replace(p, encoder=args.soft_encoder, hidden_size=p.hidden_size or args.encoder_hidden_size)
               if p.kind == "soft" and p.encoder == "none" else p for p in parts]
    return "".join(format_part(p) for p in encoded)


class Data:
    """The rows of ``--data_dir``: a PaddleNLP folder or a FewCLUE folder, behind one interface."""

    def __init__(self, args: argparse.Namespace) -> None:
        from fewshot.data import TaskFolder
        from fewshot.errors import DataError

        self.root = Path(args.data_dir)
        self.folder = TaskFolder.open(self.root) if TaskFolder.looks_like(self.root) else None
        self.split = args.split
        if self.folder is None and not self.root.is_dir():
            raise DataError(f"{self.root}: no such folder (--data_dir: a PaddleNLP data folder or a FewCLUE task folder)")
        if self.folder is None:
            self._fewclue_file(f"train_{self.split}.json")  # says what --data_dir must hold
        self.label_file = args.label_file or str(
            self.folder.path("labels") if self.folder else HERE.parents[1] / "data" / "tnews" / "label.txt")

    def _fewclue_file(self, name: str) -> Path:
        from fewshot.errors import DataError

        path = self.root / name
        if not path.is_file():
            raise DataError(
                f"{path} does not exist; pass a PaddleNLP data folder (train.txt, dev.txt, test.txt, data.txt, "
                "label.txt) or FewCLUE's datasets/tnews (https://github.com/CLUEbenchmark/FewCLUE) as --data_dir"
            )
        return path

    def has_test(self) -> bool:
        """Whether there is a labelled test set (``test.txt`` is optional in PaddleNLP's layout)."""
        return self.folder.has("test") if self.folder is not None else (self.root / "test_public.json").is_file()

    def has_texts(self) -> bool:
        """Whether there are texts to label (``data.txt``; FewCLUE: ``test.json``)."""
        return self.folder.has("data") if self.folder is not None else (self.root / "test.json").is_file()

    def rows(self, role: str, labels: Sequence[str]) -> List[Any]:
        """Labelled rows of ``train``, ``dev`` or ``test``."""
        from fewshot.data import read_examples

        if self.folder is not None:
            return self.folder.examples(role, labels=labels, why=f"--do_{'predict' if role == 'test' else role}")
        name = {"train": f"train_{self.split}.json", "dev": f"dev_{self.split}.json", "test": "test_public.json"}[role]
        return read_examples(self._fewclue_file(name), labels=labels, fields=FEWCLUE_FIELDS)

    def write_predictions(self, clf: Any, output: Path, batch_size: int) -> Optional[int]:
        """Predict ``data.txt`` into ``predictions.txt`` (FewCLUE: ``test.json`` into ``test_predictions.json``);
        returns the row count, None when there is nothing to predict."""
        from fewshot.atomic import atomic_file
        from fewshot.data import PREDICTIONS_NAME, write_predictions

        if not self.has_texts():
            return None
        if self.folder is not None:
            rows = self.folder.texts()
            return write_predictions(output / PREDICTIONS_NAME, rows, clf.predict(rows, batch_size=batch_size))
        records = [json.loads(line) for line in (self.root / "test.json").read_text(encoding="utf-8").splitlines()
                   if line.strip()]
        labels = clf.predict([r["sentence"] for r in records], batch_size=batch_size)
        lines = [json.dumps({"id": r.get("id"), "label_desc": label}, ensure_ascii=False)
                 for r, label in zip(records, labels)]
        with atomic_file(output / FEWCLUE_PREDICTIONS_NAME, "the predictions") as tmp:
            tmp.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
        return len(lines)


def load_checkpoint(path: str) -> Any:
    """The classifier saved in ``path`` by this example or ``fewshot-train``; a PaddleNLP checkpoint is
    refused with the one command that imports it."""
    from fewshot.classifier import CONFIG_NAME, PromptClassifier
    from fewshot.errors import BundleError

    directory = Path(path)
    if not (directory / CONFIG_NAME).is_file() and (directory / "model_state.pdparams").is_file():
        raise BundleError(
            f"{directory}: a PaddleNLP checkpoint (model_state.pdparams), not a fewshot classifier; import it once "
            f"with: fewshot-import --paddlenlp {directory} --output CLASSIFIER [--trust-pickle], then pass "
            "CLASSIFIER as --resume_from_checkpoint"
        )
    return PromptClassifier.load(directory)


def fit_options(args: argparse.Namespace) -> Dict[str, Any]:
    """``fit`` keyword arguments: the training options, with dev evaluation every ``--eval_steps`` under
    ``--do_eval`` and the early-stopping settings under ``--early_stopping_patience``."""
    from fewshot.cli.options import dataclass_values

    options = dataclass_values(args, FIT_OPTIONS)
    strategy = str(getattr(options["evaluation_strategy"], "value", options["evaluation_strategy"]))
    if args.do_eval and strategy == "no" and (args.eval_steps or args.early_stopping_patience):
        options["evaluation_strategy"] = "steps" if args.eval_steps else "epoch"
    if args.early_stopping_patience:
        strategy = str(getattr(options["evaluation_strategy"], "value", options["evaluation_strategy"]))
        options.update(save_strategy=strategy, load_best_model_at_end=True,
                       metric_for_best_model=args.metric_for_best_model or "accuracy")
        if args.eval_steps:
            options["save_steps"] = args.eval_steps
    return options


def log_metrics(split: str, metrics: Dict[str, Any]) -> None:
    """Print metrics as PaddleNLP's ``Trainer.log_metrics`` does: a header, then ``  test_accuracy = 0.5``."""
    print(f"***** {split} metrics *****")
    width = max(len(k) for k in metrics)
    for key in sorted(metrics):
        value = metrics[key]
        print(f"  {key: <{width}} = {round(value, 4) if isinstance(value, float) else value}")


def run(args: argparse.Namespace) -> Dict[str, Any]:
    """Train and/or load, evaluate, save, predict and export as the switches say; returns all_results.json's metrics."""
    from fewshot.classifier import PromptClassifier
    from fewshot.documents import json_text
    from fewshot.errors import DataError
    from fewshot.training.distributed import write_once

    data = Data(args)
    if args.do_predict and not (data.has_test() or data.has_texts()):
        raise DataError(f"{data.root}: --do_predict needs test.txt (labelled) or data.txt (texts to label); "
                        "there is neither")
    output = Path(args.output_dir)
    batch = args.per_device_eval_batch_size
    if args.resume_from_checkpoint:
        clf = load_checkpoint(args.resume_from_checkpoint)
    else:
        clf = PromptClassifier(
            args.model_name_or_path, labels=data.label_file, template=build_template(args), verbalizer=args.verbalizer,
            max_seq_length=args.max_seq_length, seed=args.seed, method=args.method,
            calibrate=args.method == "zeroshot",
        )
    results: Dict[str, Any] = {}
    dev = data.rows("dev", clf.labels) if args.do_eval else None
    if trains(args):
        callbacks = []
        if args.early_stopping_patience:
            from paddlenlp.trainer import EarlyStoppingCallback

            callbacks.append(EarlyStoppingCallback(early_stopping_patience=args.early_stopping_patience))
        fit = clf.fit(data.rows("train", clf.labels), eval_data=dev, callbacks=callbacks, **fit_options(args))
        results.update({k if k.startswith(("train", "eval")) else f"train_{k}": v for k, v in fit.items()})
        log_metrics("train", {k: v for k, v in results.items() if k.startswith("train")})
    if dev is not None and not trains(args):
        evaluation = {f"eval_{k}": v for k, v in clf.evaluate(dev, batch_size=batch).items()}
        results.update(evaluation)
    if dev is not None:
        log_metrics("eval", {k: v for k, v in results.items() if k.startswith("eval")})
    if args.do_predict and data.has_test():
        test = {f"test_{k}": v for k, v in clf.evaluate(data.rows("test", clf.labels), batch_size=batch).items()}
        results.update(test)
        log_metrics("test", test)
    if trains(args):
        clf.train_metrics = {**clf.train_metrics, **results}
        clf.save(output)  # replaces output_dir atomically, so everything else is written after it
    writes: List[Callable[[], Any]] = []
    if args.do_predict:
        writes.append(lambda: results.__setitem__("predictions", data.write_predictions(clf, output, batch)))
    if args.do_export:
        writes.append(lambda: results.__setitem__("export", str(clf.export(output / EXPORT_DIR))))
    writes.append(lambda: (output / RESULTS_NAME).write_text(json_text(results), encoding="utf-8"))

    def write_all() -> None:
        output.mkdir(parents=True, exist_ok=True)
        for write in writes:
            write()

    write_once(write_all)
    return results


def main(argv: Optional[List[str]] = None) -> int:
    """Exit status 0, or 2 with one ``train.py: error: ...`` line for bad input."""
    args = parse_args(argv)
    from fewshot.cli.common import run as run_command
    from fewshot.training.distributed import end_process
    from fewshot.training.progress import quiet_paddlenlp

    quiet_paddlenlp(False)

    def go() -> int:
        results = run(args)
        print(json.dumps({"output_dir": args.output_dir, **{k: v for k, v in results.items() if "accuracy" in k}},
                         ensure_ascii=False))
        return 0

    return end_process(run_command(go, "train.py"))


if __name__ == "__main__":
    sys.exit(main())
