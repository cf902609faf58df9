"""``fewshot-train --multi-label`` / ``--hierarchical``: options reach the classifier, bad rows name their line."""

import json
import os

import pytest

from fewshot.classifier import PromptClassifier
from fewshot.cli.train import main as train_main

TEMPLATE = "{'text': 'text_a'}这句话的类别是{'mask'}{'mask'}"
COMMON = ["--template", TEMPLATE, "--max-steps", "2", "--batch-size", "4", "--max-seq-length", "32"]


def _write(path, rows):
    path.write_text("".join(f"{text}\t{label}\n" for text, label in rows), encoding="utf-8")
    return str(path)


def test_multi_label_cli_tunes_and_saves_thresholds(tiny_model_dir, tmp_path, capsys):
    (tmp_path / "label.txt").write_text("体育==体育\n财经==财经\n天气==天气\n", encoding="utf-8")
    rows = [("球赛跑", "体育"), ("股价钱", "财经"), ("球赛股价", "体育;财经"), ("雨雪风", "天气")] * 3
    code = train_main([
        "--train", _write(tmp_path / "train.txt", rows), "--dev", _write(tmp_path / "dev.txt", rows),
        "--labels", str(tmp_path / "label.txt"), "--model", tiny_model_dir, "--output", str(tmp_path / "out"),
        "--multi-label", "--label-delimiter", ";", "--tune-thresholds", *COMMON,
    ])
    assert code == 0, capsys.readouterr().err
    clf = PromptClassifier.load(tmp_path / "out")
    assert clf.task.config()["task"] == "multi_label"
    assert all(isinstance(p, list) for p in clf.predict(["球赛股价"]))
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text(encoding="utf-8"))
    assert {"eval_micro_f1", "eval_macro_f1", "eval_exact_match"} <= set(metrics)


def test_hierarchical_cli_reports_an_unknown_node_by_line(tiny_model_dir, tmp_path, capsys):
    (tmp_path / "label.txt").write_text("体育##跑==跑步\n体育##雨==雨天\n财经##钱==钱财\n", encoding="utf-8")
    train = _write(tmp_path / "train.txt", [("球赛跑", "体育##跑"), ("股价钱", "财经##雪")])
    code = train_main(["--train", train, "--labels", str(tmp_path / "label.txt"), "--model", tiny_model_dir,
                       "--output", str(tmp_path / "out"), "--hierarchical", *COMMON])
    assert code == 2
    assert "train.txt line 2: unknown node '雪' under '财经'" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_tune_thresholds_needs_a_task_and_dev(tiny_model_dir, tmp_path, capsys):
    with pytest.raises(SystemExit):
        train_main(["--train", "t.txt", "--labels", "l.txt", "--model", tiny_model_dir, "--output", "o",
                    "--tune-thresholds"])
    assert "--tune-thresholds needs --multi-label or --hierarchical, and --dev" in capsys.readouterr().err


def test_fewshot_train_says_one_line_before_the_progress_bar(tiny_model_dir, separable_task, tmp_path):
    import subprocess
    import sys

    train, _, words = separable_task
    (tmp_path / "label.txt").write_text("".join(f"{k}=={v[0]}\n" for k, v in words.items()), encoding="utf-8")
    (tmp_path / "train.txt").write_text("".join(f"{e.text_a}\t{e.label}\n" for e in train), encoding="utf-8")
    command = [sys.executable, "-m", "fewshot.cli.train", "--train", str(tmp_path / "train.txt"), "--labels",
               str(tmp_path / "label.txt"), "--model", tiny_model_dir, "--output", str(tmp_path / "out"),
               "--template", "{'text': 'text_a'}这句话的类别是{'mask'}{'mask'}", "--max-steps", "2"]
    # OMP_NUM_THREADS=1: with more threads Paddle itself prints a two-line notice at import (docs/cpu.md)
    result = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr[-2000:]
    before_bar = result.stderr.split("TrainProcess")[0].strip().splitlines()
    assert len(before_bar) == 1 and before_bar[0].startswith("fewshot-train: 48 training rows"), before_bar
