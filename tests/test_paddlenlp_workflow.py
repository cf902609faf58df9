"""PaddleNLP's few-shot example workflow, its commands unchanged (issue 27): train with eval, predict from
``--resume_from_checkpoint``, export, ``infer.py`` on the export; ``fewshot-train`` with PaddleNLP's spellings.

Runs on a tiny random ERNIE and a PaddleNLP-layout folder written here (train/dev/test/data/label.txt).
"""

import importlib.util
import json
import sys
from pathlib import Path

import pytest

from fewshot.classifier import PromptClassifier
from fewshot.data import TaskFolder, write_predictions
from fewshot.errors import DataError

ROOT = Path(__file__).resolve().parents[1]
PROMPT = "{'text': 'text_a'}这句话的类别是{'mask'}{'mask'}"
SHORT_PROMPT = "这条新闻标题的主题是"  # PaddleNLP's: text slot first and one [MASK] last implied; 体育 read at one mask


def _load(name):
    spec = importlib.util.spec_from_file_location(f"tnews_{name}_example", ROOT / "examples" / "tnews" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


train_example = _load("train")
infer_example = _load("infer")


def write_paddlenlp_folder(folder, train, test, words):
    """PaddleNLP's few-shot layout: text<TAB>label rows, data.txt texts, label.txt label==word lines."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = lambda examples: "".join(f"{e.text_a}\t{e.label}\n" for e in examples)  # noqa: E731
    (folder / "train.txt").write_text(rows(train), encoding="utf-8")
    (folder / "dev.txt").write_text(rows(test[:12]), encoding="utf-8")
    (folder / "test.txt").write_text(rows(test), encoding="utf-8")
    (folder / "data.txt").write_text("".join(f"{e.text_a}\n" for e in test[:9]), encoding="utf-8")
    (folder / "label.txt").write_text("".join(f"{k}=={ws[0]}\n" for k, ws in words.items()), encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def workflow(tmp_path_factory, tiny_model_dir, separable_task):
    """The issue's first command, with tiny numbers: train, eval, predict, export into ./checkpoints."""
    train, test, words = separable_task
    base = tmp_path_factory.mktemp("workflow")
    data = write_paddlenlp_folder(base / "data" / "tnews", train, test, words)
    checkpoints = base / "checkpoints"
    argv = ["--data_dir", str(data), "--output_dir", str(checkpoints), "--prompt", SHORT_PROMPT,
            "--model_name_or_path", tiny_model_dir, "--max_seq_length", "32", "--learning_rate", "1e-3",
            "--ppt_learning_rate", "1e-2", "--do_train", "--do_eval", "--max_steps", "12", "--eval_steps", "4",
            "--logging_steps", "4", "--per_device_eval_batch_size", "32", "--per_device_train_batch_size", "8",
            "--do_predict", "--do_export"]
    assert train_example.main(argv) == 0
    return base, data, checkpoints, test


def test_train_with_eval_predict_and_export_writes_what_paddlenlp_writes(workflow, capsys):
    base, data, checkpoints, test = workflow
    results = json.loads((checkpoints / "all_results.json").read_text(encoding="utf-8"))
    assert results["train_steps"] == 12
    assert 0.0 <= results["eval_accuracy"] <= 1.0 and 0.0 <= results["test_accuracy"] <= 1.0
    export = checkpoints / "export"
    assert {"model.json", "model.pdiparams", "model.onnx", "fewshot.json"} <= {p.name for p in export.iterdir()}
    clf = PromptClassifier.load(checkpoints)
    assert clf.template.text == SHORT_PROMPT and clf.template.num_masks == 1
    assert clf.evaluate(test)["accuracy"] == pytest.approx(results["test_accuracy"])
    lines = (checkpoints / "predictions.txt").read_text(encoding="utf-8").splitlines()
    assert lines == [f"{e.text_a}\t{label}" for e, label in zip(test[:9], clf.predict(test[:9]))]


def test_predict_from_resume_from_checkpoint_does_not_train(workflow, capsys):
    base, data, checkpoints, test = workflow
    predict_ckpt = base / "predict_ckpt"
    before = (checkpoints / "fewshot_config.json").read_bytes()
    argv = ["--do_predict", "--data_dir", str(data), "--output_dir", str(predict_ckpt),
            "--resume_from_checkpoint", str(checkpoints), "--max_seq_length", "32"]
    assert train_example.main(argv) == 0
    out = capsys.readouterr().out
    assert "***** test metrics *****" in out and "train metrics" not in out
    accuracy = json.loads((checkpoints / "all_results.json").read_text(encoding="utf-8"))["test_accuracy"]
    assert f"test_accuracy = {round(accuracy, 4)}" in out
    results = json.loads((predict_ckpt / "all_results.json").read_text(encoding="utf-8"))
    assert results == {"test_accuracy": pytest.approx(accuracy), "test_macro_f1": pytest.approx(results["test_macro_f1"]),
                       "predictions": 9}
    assert (predict_ckpt / "predictions.txt").read_text(encoding="utf-8") == \
        (checkpoints / "predictions.txt").read_text(encoding="utf-8")
    assert (checkpoints / "fewshot_config.json").read_bytes() == before


def test_infer_on_the_export_prints_one_label_per_data_line(workflow, capsys, tmp_path):
    base, data, checkpoints, test = workflow
    capsys.readouterr()
    output = tmp_path / "labels.txt"
    argv = ["--model_path_prefix", str(checkpoints / "export" / "model"), "--data_dir", str(data),
            "--batch_size", "4", "--device", "cpu", "--output_file", str(output)]
    assert infer_example.main(argv) == 0
    printed = capsys.readouterr().out.splitlines()
    expected = [line.split("\t")[-1] for line in (checkpoints / "predictions.txt").read_text(encoding="utf-8").splitlines()]
    assert printed == expected and len(printed) == 9
    assert output.read_text(encoding="utf-8") == (checkpoints / "predictions.txt").read_text(encoding="utf-8")


@pytest.mark.parametrize("extra, message", [
    (["--max_seq_length", "64"], "was exported with 32"),
    (["--model_path_prefix", "nowhere/model"], "no fewshot.json"),
])
def test_infer_refuses_a_mismatch_in_one_line(workflow, capsys, extra, message):
    base, data, checkpoints, test = workflow
    argv = ["--model_path_prefix", str(checkpoints / "export" / "model"), "--data_dir", str(data), "--device", "cpu",
            *extra]
    assert infer_example.main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("infer.py: error:") and message in err[0]


def test_resume_from_a_paddlenlp_checkpoint_names_the_import_command(tmp_path, capsys, separable_task):
    train, test, words = separable_task
    data = write_paddlenlp_folder(tmp_path / "data", train, test, words)
    paddlenlp_ckpt = tmp_path / "paddlenlp_ckpt"
    paddlenlp_ckpt.mkdir()
    (paddlenlp_ckpt / "model_state.pdparams").write_bytes(b"not read")
    argv = ["--do_predict", "--data_dir", str(data), "--output_dir", str(tmp_path / "out"),
            "--resume_from_checkpoint", str(paddlenlp_ckpt)]
    assert train_example.main(argv) == 2
    err = capsys.readouterr().err
    assert f"fewshot-import --paddlenlp {paddlenlp_ckpt} --output CLASSIFIER" in err
    assert not (tmp_path / "out").exists()


def test_fewshot_train_accepts_paddlenlp_spellings_and_a_data_folder(workflow, tiny_model_dir, tmp_path):
    from fewshot.cli.train import main as fewshot_train

    base, data, checkpoints, test = workflow
    out = tmp_path / "model"
    argv = ["--data_dir", str(data), "--output_dir", str(out), "--model_name_or_path", tiny_model_dir,
            "--prompt", PROMPT, "--max_seq_length", "32", "--learning_rate", "1e-3", "--max_steps", "3",
            "--per_device_train_batch_size", "8", "--per_device_eval_batch_size", "16", "--logging_steps", "1",
            "--seed", "3"]
    assert fewshot_train(argv) == 0
    metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["train_steps"] == 3 and "eval_accuracy" in metrics  # dev.txt of the folder was the dev set
    clf = PromptClassifier.load(out)
    assert clf.labels == list(TaskFolder.open(data).label_words()) and clf.max_seq_length == 32


def test_fewshot_train_paddlenlp_spellings_are_the_same_options():
    from fewshot.cli.train import build_parser

    parser = build_parser()
    ours = parser.parse_args(["--train", "t", "--labels", "l", "--model", "m", "--output", "o", "--max-steps", "5",
                              "--batch-size", "4", "--eval-batch-size", "9", "--learning-rate", "0.1", "--rdrop",
                              "--max-seq-length", "40", "--template", PROMPT])
    theirs = parser.parse_args(["--train", "t", "--labels", "l", "--model_name_or_path", "m", "--output_dir", "o",
                                "--max_steps", "5", "--per_device_train_batch_size", "4",
                                "--per_device_eval_batch_size", "9", "--learning_rate", "0.1", "--use_rdrop",
                                "--max_seq_length", "40", "--prompt", PROMPT])
    assert vars(ours) == vars(theirs)


def test_task_folder_reads_the_paddlenlp_layout(tmp_path, separable_task):
    train, test, words = separable_task
    folder = TaskFolder.open(write_paddlenlp_folder(tmp_path / "d", train, test, words))
    assert folder.label_words() == {k: [ws[0]] for k, ws in words.items()}
    assert folder.examples("train", labels=list(words)) == list(train)
    assert [e.text_a for e in folder.texts()] == [e.text_a for e in test[:9]]
    assert TaskFolder.looks_like(folder.root) and not TaskFolder.looks_like(tmp_path)


def test_task_folder_errors_name_the_file(tmp_path, separable_task):
    with pytest.raises(DataError, match=r"label.txt: file does not exist"):
        TaskFolder.open(tmp_path)
    with pytest.raises(DataError, match=r"not a folder"):
        TaskFolder.open(tmp_path / "missing")
    (tmp_path / "label.txt").write_text("a\nb\n", encoding="utf-8")
    (tmp_path / "train.txt").write_text("文本\tc\n", encoding="utf-8")
    folder = TaskFolder.open(tmp_path)
    with pytest.raises(DataError, match=r"train.txt line 1: unknown label 'c'"):
        folder.examples("train", labels=["a", "b"])
    with pytest.raises(DataError, match=r"data.txt: file does not exist \(infer.py needs it\)"):
        folder.texts(why="infer.py")


def test_write_predictions_matches_the_train_txt_layout(tmp_path):
    from fewshot.data import Example, read_tsv

    assert write_predictions(tmp_path / "p.txt", [Example("球赛"), Example("下雨")], ["sports", "weather"]) == 2
    assert (tmp_path / "p.txt").read_text(encoding="utf-8") == "球赛\tsports\n下雨\tweather\n"
    assert read_tsv(tmp_path / "p.txt") == [Example("球赛", label="sports"), Example("下雨", label="weather")]
    write_predictions(tmp_path / "pairs.txt", [Example("股价", "钱")], ["finance"])
    assert (tmp_path / "pairs.txt").read_text(encoding="utf-8") == "股价\t钱\tfinance\n"


def test_train_py_under_paddle_distributed_launch_trains_one_model_and_exports_it(
        tiny_model_dir, separable_task, tmp_path):
    import os
    import subprocess

    train, test, words = separable_task
    data = write_paddlenlp_folder(tmp_path / "data", train, test, words)
    out = tmp_path / "checkpoints"
    command = [sys.executable, "-m", "paddle.distributed.launch", "--nproc_per_node", "2", "--host", "127.0.0.1",
               "--log_dir", str(tmp_path / "logs"), str(ROOT / "examples" / "tnews" / "train.py"),
               "--data_dir", str(data), "--output_dir", str(out), "--prompt", PROMPT,
               "--model_name_or_path", tiny_model_dir, "--max_seq_length", "32", "--learning_rate", "1e-3",
               "--do_train", "--do_eval", "--max_steps", "6", "--per_device_train_batch_size", "8",
               "--do_predict", "--do_export"]
    done = subprocess.run(command, cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True,
                          text=True, timeout=240)
    logs = "".join((tmp_path / "logs" / f"workerlog.{r}").read_text(errors="replace")[-1500:] for r in (0, 1))
    assert done.returncode == 0, done.stderr[-1500:] + logs
    results = json.loads((out / "all_results.json").read_text(encoding="utf-8"))
    assert results["train_steps"] == 6 and results["predictions"] == 9
    assert (out / "export" / "model.json").is_file()
    clf = PromptClassifier.load(out)
    assert clf.evaluate(test)["accuracy"] == pytest.approx(results["test_accuracy"])


def test_infer_py_runs_without_importing_paddle(workflow, tmp_path):
    import os
    import subprocess

    base, data, checkpoints, test = workflow
    script = ROOT / "examples" / "tnews" / "infer.py"
    code = ("import runpy, sys\n"
            f"sys.argv = ['infer.py', '--model_path_prefix', {str(checkpoints / 'export' / 'model')!r}, "
            f"'--data_dir', {str(data)!r}, '--device', 'cpu']\n"
            "try:\n    runpy.run_path(" + repr(str(script)) + ", run_name='__main__')\n"
            "except SystemExit as exc:\n    status = exc.code\n"
            "print('status', status, 'paddle loaded', any(m.split('.')[0] in ('paddle', 'paddlenlp') for m in sys.modules))\n")
    done = subprocess.run([sys.executable, "-c", code], env={**os.environ, "PYTHONPATH": str(ROOT)},
                          capture_output=True, text=True, timeout=120)
    lines = done.stdout.splitlines()
    assert lines[-1] == "status 0 paddle loaded False", done.stderr[-2000:]
    assert len(lines) == 10  # one label per data.txt line, then the check


def test_early_stopping_patience_stops_when_dev_accuracy_stops_improving(tiny_model_dir, separable_task, tmp_path):
    train, test, words = separable_task
    data = write_paddlenlp_folder(tmp_path / "data", train, test, words)
    (data / "test.txt").unlink()  # optional in PaddleNLP's layout: --do_predict then labels data.txt only
    out = tmp_path / "out"
    argv = ["--data_dir", str(data), "--output_dir", str(out), "--prompt", PROMPT, "--model_name_or_path",
            tiny_model_dir, "--max_seq_length", "32", "--learning_rate", "1e-12", "--ppt_learning_rate", "1e-12",
            "--do_train", "--do_eval", "--max_steps", "40", "--eval_steps", "2", "--per_device_train_batch_size", "4",
            "--early_stopping_patience", "1", "--do_predict"]
    assert train_example.main(argv) == 0
    results = json.loads((out / "all_results.json").read_text(encoding="utf-8"))
    assert results["train_steps"] == 4  # best at step 2, no better at step 4: stop
    assert "test_accuracy" not in results and results["predictions"] == 9


def test_do_predict_without_test_or_data_says_so(tmp_path, capsys, separable_task, tiny_model_dir):
    train, test, words = separable_task
    data = write_paddlenlp_folder(tmp_path / "data", train, test, words)
    (data / "test.txt").unlink()
    (data / "data.txt").unlink()
    argv = ["--data_dir", str(data), "--output_dir", str(tmp_path / "out"), "--model_name_or_path", tiny_model_dir,
            "--do_predict"]
    assert train_example.main(argv) == 2
    assert "--do_predict needs test.txt (labelled) or data.txt" in capsys.readouterr().err


def test_a_model_trained_by_paddlenlp_imports_then_predicts_and_exports_through_train_py(
        tiny_model_dir, separable_task, tmp_path, capsys):
    """PaddleNLP's own PromptTrainer trains and saves as its example does (tests/test_import_paddlenlp.py);
    fewshot-import once, then PaddleNLP's predict/export commands run on the imported classifier."""
    pytest.importorskip("paddlenlp.prompt")
    from fewshot.cli.import_paddlenlp import main as import_main

    spec = importlib.util.spec_from_file_location("import_paddlenlp_tests", ROOT / "tests" / "test_import_paddlenlp.py")
    helpers = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(helpers)
    paddlenlp_ckpt = tmp_path / "checkpoints"
    labels, expected = helpers._paddlenlp_checkpoint(tiny_model_dir, paddlenlp_ckpt, True, SHORT_PROMPT)
    train, test, words = separable_task
    data = write_paddlenlp_folder(tmp_path / "data", train, test, words)
    (data / "data.txt").write_text("".join(t + "\n" for t in helpers.TEXTS), encoding="utf-8")
    argv = ["--do_predict", "--do_export", "--data_dir", str(data), "--output_dir", str(tmp_path / "predict_ckpt"),
            "--resume_from_checkpoint", str(paddlenlp_ckpt)]
    assert train_example.main(argv) == 2
    assert "fewshot-import --paddlenlp" in capsys.readouterr().err
    assert import_main(["--paddlenlp", str(paddlenlp_ckpt), "--output", str(tmp_path / "classifier"),
                        "--model_name_or_path", tiny_model_dir, "--trust-pickle"]) == 0
    argv[argv.index(str(paddlenlp_ckpt))] = str(tmp_path / "classifier")
    assert train_example.main(argv) == 0
    out = tmp_path / "predict_ckpt"
    predicted = [line.split("\t")[-1] for line in (out / "predictions.txt").read_text(encoding="utf-8").splitlines()]
    assert predicted == [labels[i] for i in expected.argmax(axis=1)]  # what paddlenlp.prompt predicts
    capsys.readouterr()
    assert infer_example.main(["--model_path_prefix", str(out / "export" / "model"), "--data_dir", str(data),
                               "--device", "cpu"]) == 0
    assert capsys.readouterr().out.splitlines() == predicted
