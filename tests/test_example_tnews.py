"""examples/tnews/train.py: argument parsing, a 2-step run on a tiny model, export and fewshot-predict."""

import importlib.util
import json
import sys
from pathlib import Path

import pytest

from fewshot.classifier import PromptClassifier

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("tnews_train_example", ROOT / "examples" / "tnews" / "train.py")
example = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = example
_spec.loader.exec_module(example)


def write_tnews_like(folder, train, test, words):
    """A TNEWS-layout folder: train_0/dev_0/test_public (labelled) and test.json (ids, no labels)."""
    folder.mkdir(parents=True, exist_ok=True)

    def dump(name, examples, labeled=True):
        rows = [{"id": i, "sentence": e.text_a, **({"label_desc": e.label} if labeled else {})}
                for i, e in enumerate(examples)]
        (folder / name).write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")

    dump("train_0.json", train)
    dump("dev_0.json", test[:12])
    dump("test_public.json", test)
    dump("test.json", test[:7], labeled=False)
    labels = folder / "label.txt"
    labels.write_text("".join(f"{label}=={ws[0]}\n" for label, ws in words.items()), encoding="utf-8")
    return folder, labels


def test_defaults_match_the_paddlenlp_example():
    args = example.parse_args([])
    assert args.model_name_or_path == "ernie-3.0-base-zh"
    assert Path(args.data_dir).parts[-3:] == ("shared", "fewclue", "tnews")
    assert args.label_file is None  # the folder's label.txt; FewCLUE JSON: data/tnews/label.txt
    assert args.prompt == example.DEFAULT_PROMPT
    assert (args.soft_encoder, args.encoder_hidden_size) == ("lstm", 200)  # PaddleNLP's defaults
    assert not (args.do_train or args.do_eval or args.do_predict or args.do_export or args.use_rdrop or args.use_rgl)
    assert args.method == "prompt" and args.verbalizer == "soft"  # PaddleNLP's example trains a SoftVerbalizer
    assert args.split == "0" and args.resume_from_checkpoint is None
    assert example.trains(args)  # nothing to resume from: it trains


def test_the_paddlenlp_command_parses_unchanged():
    args = example.parse_args([
        "--data_dir", "./data/tnews", "--output_dir", "./checkpoints/", "--prompt", "这条新闻标题的主题是",
        "--max_seq_length", "128", "--learning_rate", "3e-5", "--ppt_learning_rate", "3e-4", "--do_train", "--do_eval",
        "--max_steps", "1000", "--eval_steps", "100", "--logging_steps", "10", "--per_device_eval_batch_size", "32",
        "--per_device_train_batch_size", "32", "--do_predict", "--do_export", "--seed", "7",
        "--num_train_epochs", "3", "--soft_encoder", "mlp", "--encoder_hidden_size", "64", "--use_rdrop",
        "--early_stopping_patience", "4",
    ])
    assert (args.max_steps, args.eval_steps, args.per_device_train_batch_size, args.seed) == (1000, 100, 32, 7)
    assert (args.learning_rate, args.ppt_learning_rate, args.num_train_epochs) == (3e-5, 3e-4, 3.0)
    assert args.do_train and args.do_eval and args.do_predict and args.do_export and args.use_rdrop
    options = example.fit_options(args)
    assert (options["evaluation_strategy"], options["save_strategy"], options["save_steps"]) == ("steps", "steps", 100)
    assert options["load_best_model_at_end"] and options["metric_for_best_model"] == "accuracy"
    resumed = example.parse_args(["--do_predict", "--resume_from_checkpoint", "./checkpoints"])
    assert not example.trains(resumed)


def test_options_parse():
    args = example.parse_args([
        "--data_dir", "d", "--split", "few_all", "--prompt", "{'soft'}{'text': 'text_a'}{'mask'}",
        "--soft_encoder", "lstm", "--use_rdrop", "--use_rgl", "--max_steps", "5", "--do_predict", "--do_export",
        "--method", "finetune",
    ])
    assert (args.data_dir, args.split, args.max_steps, args.method) == ("d", "few_all", 5, "finetune")
    assert args.use_rdrop and args.use_rgl and args.do_predict and args.do_export
    assert example.build_template(args) == \
        "{'soft': None, 'length': 1, 'encoder': 'lstm', 'hidden_size': 200}{'text': 'text_a'}{'mask'}"
    args.soft_encoder = "none"
    assert example.build_template(args) == args.prompt


@pytest.mark.parametrize("argv, message", [
    (["--split", "7"], "invalid choice: '7'"),
    (["--max_steps", "0"], "--max_steps 0 trains nothing"),
    (["--soft_encoder", "gru"], "invalid choice"),
    (["--early_stopping_patience", "2"], "--early_stopping_patience needs --do_eval"),
    (["--encoder_hidden_size", "0"], "encoder_hidden_size"),
])
def test_bad_options_exit_with_a_message(argv, message, capsys):
    with pytest.raises(SystemExit):
        example.parse_args(argv)
    assert message in capsys.readouterr().err


def test_missing_data_says_what_data_dir_must_hold(tmp_path, capsys):
    assert example.main(["--data_dir", str(tmp_path), "--model_name_or_path", "unused"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "train_0.json does not exist; pass a PaddleNLP data folder" in err[0]
    assert "FewCLUE" in err[0] and err[0].startswith("train.py: error:")
    assert example.main(["--data_dir", str(tmp_path / "nowhere"), "--model_name_or_path", "unused"]) == 2
    assert "nowhere: no such folder" in capsys.readouterr().err


def _run(tmp_path, tiny_model_dir, separable_task, *extra):
    train, test, words = separable_task
    data, labels = write_tnews_like(tmp_path / "tnews", train, test, words)
    out = tmp_path / "out"
    argv = ["--data_dir", str(data), "--label_file", str(labels), "--model_name_or_path", tiny_model_dir,
            "--prompt", "{'text': 'text_a'}这句话的类别是{'mask'}{'mask'}", "--max_steps", "2",
            "--per_device_train_batch_size", "4", "--max_seq_length", "32", "--output_dir", str(out), "--do_train",
            "--do_eval", "--do_predict", *extra]
    assert example.main(argv) == 0
    return out, test


def test_two_step_run_evaluates_saves_and_predicts(tmp_path, tiny_model_dir, separable_task):
    out, test = _run(tmp_path, tiny_model_dir, separable_task, "--use_rdrop")
    metrics = json.loads((out / "all_results.json").read_text(encoding="utf-8"))
    assert metrics["train_steps"] == 2
    assert 0.0 <= metrics["eval_accuracy"] <= 1.0 and 0.0 <= metrics["test_accuracy"] <= 1.0
    predictions = [json.loads(line) for line in (out / "test_predictions.json").read_text(encoding="utf-8").splitlines()]
    assert [p["id"] for p in predictions] == list(range(7))
    clf = PromptClassifier.load(out)
    assert [p["label_desc"] for p in predictions] == clf.predict([e.text_a for e in test[:7]])
    assert clf.evaluate(test)["accuracy"] == metrics["test_accuracy"]
    assert clf.train_metrics["test_accuracy"] == metrics["test_accuracy"]


def test_export_bundle_predicts_test_set_like_training(tmp_path, tiny_model_dir, separable_task):
    out, test = _run(tmp_path, tiny_model_dir, separable_task, "--do_export")
    metrics = json.loads((out / "all_results.json").read_text(encoding="utf-8"))
    assert Path(metrics["export"]) == out / "export" and (out / "export" / "model.json").is_file()
    from fewshot.cli.predict import main as predict_main

    preds = tmp_path / "preds.jsonl"
    assert predict_main(["--bundle", str(out / "export"), "--input", str(tmp_path / "tnews" / "test_public.json"),
                         "--output", str(preds), "--no-progress"]) == 0
    records = [json.loads(line) for line in preds.read_text(encoding="utf-8").splitlines()]
    predicted = [r["label"] for r in records]
    accuracy = sum(p == e.label for p, e in zip(predicted, test)) / len(test)
    assert len(records) == len(test)
    assert accuracy == pytest.approx(metrics["test_accuracy"])


@pytest.mark.shared
def test_default_data_dir_holds_tnews_when_shared_is_present(tnews_dir):
    args = example.parse_args([])
    assert Path(args.data_dir).resolve() == tnews_dir.resolve()
    data = example.Data(args)
    assert data.folder is None and data.has_test() and data.has_texts()
    from fewshot.tasks import resolve_label_words

    assert len(data.rows("train", list(resolve_label_words(data.label_file)))) == 240
