"""benchmarks/fewclue.py: split discovery, summary and targets, report files, and a 2-step run on a tiny model."""

import importlib.util
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))  # as when the script runs: its folder first on the path
_spec = importlib.util.spec_from_file_location("fewclue_benchmark", ROOT / "benchmarks" / "fewclue.py")
fewclue = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = fewclue  # dataclasses look their module up there
_spec.loader.exec_module(fewclue)


def write_fewclue_task(folder, train, test, words, splits=(0,)):
    """A FewCLUE-layout folder (train_k/dev_k/test_public JSON lines) and its label file."""
    folder.mkdir(parents=True, exist_ok=True)

    def dump(name, examples):
        lines = [json.dumps({"sentence": e.text_a, "label_desc": e.label}, ensure_ascii=False) for e in examples]
        (folder / name).write_text("\n".join(lines) + "\n", encoding="utf-8")

    for k in splits:
        dump(f"train_{k}.json", train)
        dump(f"dev_{k}.json", test[:12])
    dump("train_few_all.json", train)
    dump("test_public.json", test)
    labels = folder / "label.txt"
    labels.write_text("".join(f"{label}=={ws[0]}\n" for label, ws in words.items()), encoding="utf-8")
    return folder, labels


def test_discover_splits_sorts_numerically_and_ignores_few_all(tmp_path, separable_task):
    train, test, words = separable_task
    task, _ = write_fewclue_task(tmp_path / "task", train, test, words, splits=(10, 2, 0))
    splits = fewclue.discover_splits(task)
    assert [s.index for s in splits] == [0, 2, 10]
    assert splits[1].train.name == "train_2.json" and splits[1].dev.name == "dev_2.json"
    assert [s.index for s in fewclue.discover_splits(task, only=[10])] == [10]


def test_discover_splits_errors_name_the_folder_and_problem(tmp_path, separable_task):
    train, test, words = separable_task
    task, _ = write_fewclue_task(tmp_path / "task", train, test, words, splits=(0, 1))
    with pytest.raises(FileNotFoundError, match=r"no split\(s\) \[3\]; found \[0, 1\]"):
        fewclue.discover_splits(task, only=[3])
    (task / "dev_1.json").unlink()
    with pytest.raises(FileNotFoundError, match="train_1.json has no matching dev_1.json"):
        fewclue.discover_splits(task)
    (task / "test_public.json").unlink()
    with pytest.raises(FileNotFoundError, match=f"{task}: no test_public.json"):
        fewclue.discover_splits(task)
    with pytest.raises(FileNotFoundError, match="task folder does not exist"):
        fewclue.discover_splits(tmp_path / "missing")
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "test_public.json").write_text("", encoding="utf-8")
    with pytest.raises(FileNotFoundError, match="no few-shot splits"):
        fewclue.discover_splits(empty)


def test_first_characters_must_be_distinct():
    assert fewclue.first_characters({"a": ["汽车"], "b": ["体育"]}) == {"a": ["汽"], "b": ["体"]}
    with pytest.raises(ValueError, match="'a' and 'b' share the first character '体'"):
        fewclue.first_characters({"a": ["体育"], "b": ["体操"]})


def _runs(accuracies):
    return [
        fewclue.RunResult(method, split, acc, acc / 2, 10.0, 5)
        for method, values in accuracies.items()
        for split, acc in enumerate(values)
    ]


def test_summary_and_targets():
    runs = _runs({"zeroshot": [0.10, 0.12], "finetune": [0.30, 0.34], "prompt": [0.35, 0.37],
                  "prompt-rgl": [0.30, 0.30], "paddlenlp": [0.33, 0.37]})
    summary = fewclue.summarize(runs, ["zeroshot", "finetune", "prompt", "prompt-rgl", "paddlenlp"])
    row = {r["method"]: r for r in summary}
    assert row["finetune"]["accuracy_mean"] == pytest.approx(0.32)
    assert row["finetune"]["accuracy_std"] == pytest.approx(0.0282843, abs=1e-6)
    assert row["prompt"]["wall_seconds"] == 20.0 and row["prompt"]["splits"] == 2
    targets = fewclue.check_targets(summary, num_labels=15)
    assert targets["prompt_beats_finetune_by_3"]["best_prompt"] == "prompt"
    assert targets["prompt_beats_finetune_by_3"]["margin_points"] == pytest.approx(4.0)
    assert targets["prompt_beats_finetune_by_3"]["met"]
    assert targets["ours_vs_paddlenlp"]["margin_points"] == pytest.approx(1.0) and targets["ours_vs_paddlenlp"]["met"]
    assert targets["zeroshot_above_chance"]["margin_points"] == pytest.approx(100 * (0.11 - 1 / 15))


def test_write_report_writes_json_and_markdown_table(tmp_path):
    runs = _runs({"finetune": [0.30, 0.34], "prompt": [0.31, 0.31]})
    summary = fewclue.summarize(runs, ["finetune", "prompt"])
    settings = fewclue.Settings(model="m", labels="l.txt", fields={})
    report = {"task": "/data/tnews", "splits": [0, 1], "methods": ["finetune", "prompt"],
              "settings": vars(settings), "runs": [vars(r) for r in runs], "summary": summary,
              "targets": fewclue.check_targets(summary, 15), "wall_seconds": 40.0}
    fewclue.write_report(tmp_path / "out", report)
    assert json.loads((tmp_path / "out" / "fewclue.json").read_text(encoding="utf-8"))["summary"] == summary
    markdown = (tmp_path / "out" / "fewclue.md").read_text(encoding="utf-8")
    assert "| finetune | 2 | 32.00 ± 2.83 | 16.00 | 0.3 min |" in markdown
    assert "prompt_beats_finetune_by_3: MISSED (-1.00 points)" in markdown


def test_main_runs_methods_on_generated_task(tmp_path, tiny_model_dir, separable_task, capsys):
    train, test, words = separable_task
    task, labels = write_fewclue_task(tmp_path / "task", train, test, words)
    out = tmp_path / "report"
    report = fewclue.main([
        "--task", str(task), "--model", tiny_model_dir, "--labels", str(labels), "--steps", "2",
        "--batch_size", "4", "--max_seq_length", "32", "--output", str(out),
        "--methods", "zeroshot,finetune,prompt,paddlenlp,prompt-1mask,embed-lr,setfit",
    ])
    assert [r["method"] for r in report["summary"]] == ["zeroshot", "finetune", "prompt", "paddlenlp", "prompt-1mask",
                                                        "embed-lr", "setfit"]
    steps = {r["method"]: r["train_steps"] for r in report["runs"]}
    assert steps == {"zeroshot": 0, "finetune": 2, "prompt": 2, "paddlenlp": 2, "prompt-1mask": 2, "embed-lr": 0,
                     "setfit": 2}
    assert all(0.0 <= r["test_accuracy"] <= 1.0 for r in report["runs"])
    assert set(report["targets"]) == {"prompt_beats_finetune_by_3", "ours_vs_paddlenlp", "zeroshot_above_chance",
                                      "prompt_beats_finetune"}
    assert report["targets"]["ours_vs_paddlenlp"]["ours"] == "prompt-1mask"
    assert json.loads((out / "fewclue.json").read_text(encoding="utf-8"))["runs"] == report["runs"]
    assert "| paddlenlp | 1 |" in capsys.readouterr().out


def test_main_runs_the_new_methods_with_their_extra_rows(tmp_path, tiny_model_dir, separable_task):
    train, test, words = separable_task
    task, labels = write_fewclue_task(tmp_path / "task", train, test, words)
    (task / "unlabeled.json").write_text("".join(json.dumps({"sentence": e.text_a}, ensure_ascii=False) + "\n"
                                                 for e in test), encoding="utf-8")
    patterns = ["{'text': 'text_a'}这条新闻的主题是{'mask'}{'mask'}", "这是一条{'mask'}{'mask'}新闻{'text': 'text_a'}"]
    report = fewclue.main([
        "--task", str(task), "--model", tiny_model_dir, "--labels", str(labels), "--steps", "2",
        "--batch_size", "4", "--max_seq_length", "32", "--output", str(tmp_path / "report"),
        "--methods", "prompt,prompt-rdrop,auto-words,pet,pet-student,ipet,self-train,long-text",
        "--pet_patterns", patterns[0], "--pet_patterns", patterns[1], "--student_steps", "3", "--student_layers", "1",
        "--pseudo_labels", "6",
    ])
    names = [r["method"] for r in report["summary"]]
    assert names == ["prompt", "prompt-rdrop", "auto-words", "pet", "pet-ensemble", "pet-student", "ipet",
                     "ipet-ensemble", "self-train", "long-text", "long-text[logprob_mean]", "long-text[max]",
                     "long-text[prob_mean]"]
    steps = {r["method"]: r["train_steps"] for r in report["runs"]}
    assert steps["pet"] == steps["ipet"] == 3 and steps["auto-words"] == 2
    assert {"new_beats_prompt_rdrop_by_3", "auto_words_within_1_of_prompt", "long_text_beats_truncation"} <= set(
        report["targets"])
    details = {d["method"]: d for d in report["details"]}
    assert set(details["auto-words"]["label_words"]) == set(words)
    assert sorted(details["ipet"]["members"]) == ["g1-0", "g1-1"]
    student = tmp_path / "report" / "runs" / "student-1-layers" / "config.json"
    assert json.loads(student.read_text(encoding="utf-8"))["num_hidden_layers"] == 1


def test_main_rejects_unknown_method(tmp_path):
    with pytest.raises(SystemExit, match="unknown method"):
        fewclue.main(["--task", str(tmp_path), "--methods", "prompt,magic"])


@pytest.mark.shared
def test_discovers_the_five_shared_tnews_splits(tnews_dir):
    splits = fewclue.discover_splits(tnews_dir)
    assert [s.index for s in splits] == [0, 1, 2, 3, 4]
    words = fewclue.first_characters(
        __import__("fewshot.data.labels", fromlist=["read_label_words"]).read_label_words(fewclue.DEFAULT_LABELS)
    )
    assert len(words) == 15
