"""Checkpoint comparison: same settings for every checkpoint, overall and per-group tables (fewshot.pretraining.compare)."""

import json
import shutil

import pytest

from fewshot.classifier import PromptClassifier
from fewshot.pretraining.compare import (
    CheckpointResult,
    checkpoint_step,
    compare_checkpoints,
    evaluate_predictions,
    markdown_table,
    parse_checkpoint,
    read_groups,
)
from fewshot.cli.compare import main
from fewshot.errors import DataError

TEMPLATE = "{'text': 'text_a'}这句话的类别是{'mask'}{'mask'}"
FIT = dict(max_steps=100, learning_rate=5e-3, per_device_train_batch_size=8)


def test_every_checkpoint_gets_the_same_training_as_a_direct_prompt_classifier(tiny_model_dir, separable_task, tmp_path):
    train, test, words = separable_task
    copy = tmp_path / "model_320"
    shutil.copytree(tiny_model_dir, copy)
    (copy / "pretrain_info.json").write_text(json.dumps({"step": 320, "eval_perplexity": 12.5}), encoding="utf-8")
    groups = ["even" if i % 2 == 0 else "odd" for i in range(len(test))]
    results = compare_checkpoints(
        [("base", tiny_model_dir), ("model_320", str(copy))], train, test, words,
        template=TEMPLATE, groups=groups, seeds=[0], max_seq_length=32, **FIT,
    )

    clf = PromptClassifier(tiny_model_dir, labels=words, template=TEMPLATE, max_seq_length=32, seed=0)
    clf.fit(train, seed=0, disable_tqdm=True, save_strategy="no", evaluation_strategy="no", report_to=[], **FIT)
    direct = clf.evaluate(test)
    base, copied = results
    assert base.accuracy == pytest.approx(direct["accuracy"]) and base.macro_f1 == pytest.approx(direct["macro_f1"])
    assert copied.accuracy == base.accuracy and copied.group_accuracy == base.group_accuracy
    assert base.accuracy >= 0.8
    assert (base.step, base.eval_perplexity) == (None, None)
    assert (copied.step, copied.eval_perplexity) == (320, 12.5)
    even = [i for i in range(len(test)) if i % 2 == 0]
    predicted = clf.predict(test)
    assert base.group_accuracy["even"] == pytest.approx(sum(predicted[i] == test[i].label for i in even) / len(even))


def _result(name, accuracy, groups, step=None, runs=1):
    return CheckpointResult(name=name, path=name, step=step, eval_perplexity=None, accuracy=accuracy,
                            accuracy_std=0.01 if runs > 1 else 0.0, macro_f1=accuracy - 0.1,
                            group_accuracy=groups, runs=[{}] * runs)


def test_markdown_table_bolds_the_best_checkpoint_overall_and_per_group():
    results = [
        _result("base", 0.5, {"finance": 0.6, "sports": 0.4}),
        _result("model_320", 0.55, {"finance": 0.5, "sports": 0.6}, step=320),
    ]
    assert markdown_table(results, {"finance": 10, "sports": 12}).split("\n") == [
        "| checkpoint | step | held-out MLM ppl | accuracy | macro-F1 |",
        "|---|---:|---:|---:|---:|",
        "| base | – | – | 0.5000 | 0.4000 |",
        "| model_320 | 320 | – | **0.5500** | 0.4500 |",
        "",
        "| group | n | base | model_320 |",
        "|---|---:|---:|---:|",
        "| finance | 10 | **0.6000** | 0.5000 |",
        "| sports | 12 | 0.4000 | **0.6000** |",
    ]
    several_seeds = markdown_table([_result("base", 0.5, {}, runs=3)])
    assert "| base | – | – | **0.5000** ± 0.0100 | 0.4000 |" in several_seeds and "group" not in several_seeds


def test_evaluate_predictions_per_group():
    metrics = evaluate_predictions(["a", "b", "a", "a"], ["a", "b", "b", "a"], ["a", "b"], ["x", "x", "y", "y"])
    assert metrics["accuracy"] == 0.75
    assert metrics["groups"] == {"x": 1.0, "y": 0.5}


def test_checkpoint_names_and_steps(tmp_path):
    assert parse_checkpoint("base=../shared/models/zh-ernie-tiny") == ("base", "../shared/models/zh-ernie-tiny")
    assert parse_checkpoint("out/model_960/") == ("model_960", "out/model_960/")
    (tmp_path / "model_960").mkdir()
    assert checkpoint_step(str(tmp_path / "model_960")) == (960, None)
    assert checkpoint_step("ernie-3.0-nano-zh") == (None, None)


def test_read_groups_names_the_line_without_a_group(tmp_path):
    path = tmp_path / "test.json"
    path.write_text('{"sentence": "a", "domain": "law"}\n\n{"sentence": "b", "domain": 3}\n{"sentence": "c"}\n',
                    encoding="utf-8")
    with pytest.raises(DataError, match=r"test.json line 4: no group in 'domain'"):
        read_groups(path, "domain")
    path.write_text('{"sentence": "a", "domain": "law"}\n\n{"sentence": "b", "domain": 3}\n', encoding="utf-8")
    assert read_groups(path, "domain") == ["law", "3"]
    with pytest.raises(DataError, match=r"test.tsv: --group-field needs JSON lines"):
        read_groups(tmp_path / "test.tsv", "domain")


def test_cli_prints_the_table_and_writes_json(tiny_model_dir, separable_task, tmp_path, capsys):
    train, test, words = separable_task

    def write(path, examples):
        rows = [{"sentence": e.text_a, "label_desc": e.label, "domain": "d" + str(i % 2)} for i, e in enumerate(examples)]
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")

    write(tmp_path / "train.json", train)
    write(tmp_path / "test.json", test)
    (tmp_path / "labels.json").write_text(json.dumps(words, ensure_ascii=False), encoding="utf-8")
    argv = ["--checkpoints", f"base={tiny_model_dir}", "--train", str(tmp_path / "train.json"),
            "--test", str(tmp_path / "test.json"), "--labels", str(tmp_path / "labels.json"), "--template", TEMPLATE,
            "--group-field", "domain", "--max-steps", "10", "--learning-rate", "5e-3", "--max-seq-length", "32",
            "--output", str(tmp_path / "results.json"), "--markdown", str(tmp_path / "table.md")]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert out.startswith("| checkpoint | step | held-out MLM ppl | accuracy | macro-F1 |")
    assert "| group | n | base |" in out and f"| d0 | {(len(test) + 1) // 2} |" in out
    saved = json.loads((tmp_path / "results.json").read_text(encoding="utf-8"))
    assert saved["results"][0]["name"] == "base" and set(saved["results"][0]["group_accuracy"]) == {"d0", "d1"}
    assert (tmp_path / "table.md").read_text(encoding="utf-8").strip() == out.strip()

    assert main(argv[:-4] + ["--labels", str(tmp_path / "missing.txt")]) == 2
    assert "missing.txt" in capsys.readouterr().err
