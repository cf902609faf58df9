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
    assert Path(args.label_file) == ROOT / "data" / "tnews" / "label.txt"
    assert args.prompt == example.DEFAULT_PROMPT and args.soft_encoder is None
    assert not (args.use_rdrop or args.use_rgl or args.do_predict or args.do_export)
    assert args.method == "prompt" and args.split == "0"


def test_options_parse():
    args = example.parse_args([
        "--data_dir", "d", "--split", "few_all", "--prompt", "{'soft'}{'text': 'text_a'}{'mask'}",
        "--soft_encoder", "lstm", "--use_rdrop", "--use_rgl", "--max_steps", "5", "--do_predict", "--do_export",
        "--method", "finetune",
    ])
    assert (args.data_dir, args.split, args.max_steps, args.method) == ("d", "few_all", 5, "finetune")
    assert args.use_rdrop and args.use_rgl and args.do_predict and args.do_export
    assert example.build_template(args) == "{'soft': None, 'length': 1, 'encoder': 'lstm'}{'text': 'text_a'}{'mask'}"


@pytest.mark.parametrize("argv, message", [
    (["--split", "7"], "--split must be 0..4 or few_all"),
    (["--max_steps", "0"], "--max_steps must be at least 1"),
    (["--soft_encoder", "gru"], "invalid choice"),
])
def test_bad_options_exit_with_a_message(argv, message, capsys):
    with pytest.raises(SystemExit):
        example.parse_args(argv)
    assert message in capsys.readouterr().err


def test_missing_data_says_where_to_download(tmp_path):
    with pytest.raises(SystemExit, match="train_0.json does not exist; download FewCLUE"):
        example.main(["--data_dir", str(tmp_path), "--model_name_or_path", "unused"])


def _run(tmp_path, tiny_model_dir, separable_task, *extra):
    train, test, words = separable_task
    data, labels = write_tnews_like(tmp_path / "tnews", train, test, words)
    out = tmp_path / "out"
    argv = ["--data_dir", str(data), "--label_file", str(labels), "--model_name_or_path", tiny_model_dir,
            "--prompt", "{'text': 'text_a'}这句话的类别是{'mask'}{'mask'}", "--max_steps", "2",
            "--batch_size", "4", "--max_seq_length", "32", "--output_dir", str(out), "--do_predict", *extra]
    assert example.main(argv) == 0
    return out, test


def test_two_step_run_evaluates_saves_and_predicts(tmp_path, tiny_model_dir, separable_task):
    out, test = _run(tmp_path, tiny_model_dir, separable_task, "--use_rdrop")
    metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["train"]["train_steps"] == 2
    assert 0.0 <= metrics["dev"]["accuracy"] <= 1.0 and 0.0 <= metrics["test_public"]["accuracy"] <= 1.0
    predictions = [json.loads(line) for line in (out / "test_predictions.json").read_text(encoding="utf-8").splitlines()]
    assert [p["id"] for p in predictions] == list(range(7))
    clf = PromptClassifier.load(out)
    assert [p["label_desc"] for p in predictions] == clf.predict([e.text_a for e in test[:7]])
    assert clf.evaluate(test)["accuracy"] == metrics["test_public"]["accuracy"]


def test_export_bundle_predicts_test_set_like_training(tmp_path, tiny_model_dir, separable_task):
    out, test = _run(tmp_path, tiny_model_dir, separable_task, "--do_export")
    metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    assert Path(metrics["bundle"]) == out / "bundle" and (out / "bundle").is_dir()
    from fewshot.cli.predict import main as predict_main

    preds = tmp_path / "preds.jsonl"
    assert predict_main(["--bundle", str(out / "bundle"), "--input", str(tmp_path / "tnews" / "test_public.json"),
                         "--output", str(preds), "--no-progress"]) == 0
    records = [json.loads(line) for line in preds.read_text(encoding="utf-8").splitlines()]
    predicted = [r["label"] for r in records]
    accuracy = sum(p == e.label for p, e in zip(predicted, test)) / len(test)
    assert len(records) == len(test)
    assert accuracy == pytest.approx(metrics["test_public"]["accuracy"])


@pytest.mark.shared
def test_default_data_dir_holds_tnews_when_shared_is_present(tnews_dir):
    args = example.parse_args([])
    assert Path(args.data_dir).resolve() == tnews_dir.resolve()
    assert example.data_file(Path(args.data_dir), "train_0.json").is_file()
    assert example.data_file(Path(args.data_dir), "test_public.json").is_file()
