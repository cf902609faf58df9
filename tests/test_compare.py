"""``fewshot-compare``: checkpoints × methods × seeds scored by ``evaluate``, per domain; Markdown and JSON tables."""

import importlib.util
import json
import shutil
from pathlib import Path

import pytest

from fewshot.classifier import PromptClassifier
from fewshot.cli.compare import main
from fewshot.comparison.checkpoints import checkpoint_step, parse_checkpoint
from fewshot.comparison.runs import ALL, CandidateResult, Run, group_rows, read_groups
from fewshot.comparison.tables import markdown_tables
from fewshot.data import Example, read_examples
from fewshot.errors import DataError
from fewshot.tasks.hierarchy import read_hierarchy
from fewshot.testing import build_tiny_model

DATA = Path(__file__).resolve().parents[1] / "data" / "hierarchical"
TEMPLATE = "{'text': 'text_a'}这条记录属于{'mask'}{'mask'}"
FIELDS = {"text_a": "text", "label": "label"}
DOMAINS = ["成本数据", "质量验收", "进度计划"]
FIT = dict(max_steps=6, per_device_train_batch_size=8, learning_rate=5e-3, early_stopping_patience=2, eval_steps=3)


def read_split(name):
    return read_examples(DATA / f"{name}.jsonl", fields=FIELDS)


@pytest.fixture(scope="module")
def hier_model(tmp_path_factory):
    """A tiny random ERNIE whose vocabulary covers the hierarchical example, its label words and the template."""
    words = [w for ws in read_hierarchy(DATA / "label.txt").words.values() for w in ws]
    texts = [e.text_a for split in ("train", "dev", "test") for e in read_split(split)] + words + [TEMPLATE]
    return build_tiny_model(tmp_path_factory.mktemp("hier-tiny"), texts, seed=0, max_position_embeddings=64)


def test_hierarchical_comparison_of_two_checkpoints_and_two_methods_reports_evaluate_per_domain(
    hier_model, tmp_path, capsys
):
    later = tmp_path / "model_320"
    shutil.copytree(hier_model, later)
    (later / "pretrain_info.json").write_text(json.dumps({"step": 320, "eval_perplexity": 12.5}), encoding="utf-8")
    argv = ["--checkpoints", f"base={hier_model}", f"base@320={later}", "--method", "prompt", "finetune",
            "--hierarchical", "--labels", str(DATA / "label.txt"), "--train", str(DATA / "train.jsonl"),
            "--dev", str(DATA / "dev.jsonl"), "--test", str(DATA / "test.jsonl"), "--group-field", "domain",
            "--fields", "text_a=text,label=label", "--template", TEMPLATE, "--max-seq-length", "48",
            "--max-steps", "6", "--batch-size", "8", "--learning-rate", "5e-3", "--early_stop_nums", "2",
            "--eval-steps", "3", "--seeds", "1", "--level-names", "专业", "分部", "--output", str(tmp_path / "compare.json"),
            "--markdown", str(tmp_path / "compare.md")]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    saved = json.loads((tmp_path / "compare.json").read_text(encoding="utf-8"))
    test = read_split("test")
    domains = [json.loads(line)["domain"] for line in (DATA / "test.jsonl").read_text(encoding="utf-8").splitlines()]
    assert saved["group_sizes"] == {**{d: domains.count(d) for d in DOMAINS}, ALL: len(test)}
    rows = saved["results"]
    assert [(r["name"], r["method"], r["step"], r["eval_perplexity"]) for r in rows] == [
        ("base", "prompt", None, None), ("base", "finetune", None, None),
        ("base@320", "prompt", 320, 12.5), ("base@320", "finetune", 320, 12.5)]

    # each run's metrics are evaluate's, overall and on each domain's rows, of the same trained classifier
    for method, row in (("prompt", rows[0]), ("finetune", rows[1])):
        clf = PromptClassifier(hier_model, labels=str(DATA / "label.txt"), hierarchical=True, template=TEMPLATE,
                               max_seq_length=48, method=method, seed=1)
        fitted = clf.fit(read_split("train"), eval_data=read_split("dev"), seed=1, **FIT)
        (run,) = row["runs"]
        assert run["seed"] == 1 and run["train_steps"] == fitted["train_steps"]
        assert run["early_stopping"] == fitted["early_stopping"]
        assert run["metrics"][ALL] == pytest.approx(clf.evaluate(test))
        for domain in DOMAINS:
            subset = [e for e, d in zip(test, domains) if d == domain]
            assert run["metrics"][domain] == pytest.approx(clf.evaluate(subset))
    # only the checkpoint path differs between base and base@320 (same weights here): the same figures
    assert [r["metrics"] for r in rows[2]["runs"]] == [r["metrics"] for r in rows[0]["runs"]]
    assert rows[0]["summary"][ALL]["exact_match"] == {"mean": rows[0]["runs"][0]["metrics"][ALL]["exact_match"],
                                                      "std": 0.0}

    table1, table2 = printed.strip().split("\n\n")
    assert table1.splitlines()[0] == (
        "| checkpoint | method | step | MLM ppl | " + " | ".join(f"{g} exact | {g} tolerant" for g in DOMAINS + [ALL])
        + " |")
    assert table1.splitlines()[4].startswith("| base@320 | prompt | 320 | 12.50 | ")
    # --level-names titles the levels it names; a level beyond them keeps its number
    assert table2.splitlines()[0] == "| domain | n | checkpoint | method | 专业 | 分部 | level 3 | exact |"
    assert f"| {ALL} | {len(test)} | base | finetune | " in table2
    assert len(table2.splitlines()) == 2 + 4 * 4
    assert (tmp_path / "compare.md").read_text(encoding="utf-8").strip() == printed.strip()


def _result(name, method, runs):
    return CandidateResult(name, name, method, None, None,
                           [Run(seed, 1.0, 10, metrics) for seed, metrics in enumerate(runs)])


def test_tables_bold_the_best_mean_of_each_column_and_show_std_over_seeds():
    a = _result("base", "prompt", [{"d": {"accuracy": 0.5, "macro_f1": 0.4}, ALL: {"accuracy": 0.6, "macro_f1": 0.5}},
                                   {"d": {"accuracy": 0.7, "macro_f1": 0.4}, ALL: {"accuracy": 0.6, "macro_f1": 0.5}}])
    b = _result("base@320", "finetune", [{"d": {"accuracy": 0.5, "macro_f1": 0.5}, ALL: {"accuracy": 0.7, "macro_f1": 0.6}},
                                         {"d": {"accuracy": 0.5, "macro_f1": 0.3}, ALL: {"accuracy": 0.5, "macro_f1": 0.6}}])
    assert markdown_tables([a, b], {"d": 4, ALL: 9}).split("\n") == [
        "| checkpoint | method | step | MLM ppl | d accuracy | all accuracy |",
        "|---|---|---:|---:|---:|---:|",
        "| base | prompt | – | – | **0.6000** ± 0.1000 | **0.6000** ± 0.0000 |",
        "| base@320 | finetune | – | – | 0.5000 ± 0.0000 | **0.6000** ± 0.1000 |",
        "",
        "| domain | n | checkpoint | method | accuracy | macro-F1 |",
        "|---|---:|---|---|---:|---:|",
        "| d | 4 | base | prompt | **0.6000** ± 0.1000 | **0.4000** ± 0.0000 |",
        "| d | 4 | base@320 | finetune | 0.5000 ± 0.0000 | **0.4000** ± 0.1000 |",
        "| all | 9 | base | prompt | **0.6000** ± 0.0000 | 0.5000 ± 0.0000 |",
        "| all | 9 | base@320 | finetune | **0.6000** ± 0.1000 | **0.6000** ± 0.0000 |",
    ]


def test_a_level_a_domain_lacks_is_a_dash_and_one_seed_shows_no_std():
    a = _result("a", "prompt", [{"x": {"level_1_accuracy": 1.0, "exact_match": 1.0, "tolerant_accuracy": 1.0},
                                 ALL: {"level_1_accuracy": 0.5, "level_2_accuracy": 0.25, "exact_match": 0.25,
                                       "tolerant_accuracy": 0.5}}])
    table2 = markdown_tables([a], {"x": 1, ALL: 4}).split("\n\n")[1].split("\n")
    assert table2[0] == "| domain | n | checkpoint | method | level 1 | level 2 | exact |"
    assert table2[2] == "| x | 1 | a | prompt | **1.0000** | – | **1.0000** |"


def test_checkpoint_names_steps_and_groups(tmp_path):
    assert parse_checkpoint("base@320=out/model_320") == ("base@320", "out/model_320")
    assert parse_checkpoint("out/model_960/") == ("model_960", "out/model_960/")
    (tmp_path / "model_960").mkdir()
    assert checkpoint_step(str(tmp_path / "model_960")) == (960, None)
    assert checkpoint_step("ernie-3.0-nano-zh") == (None, None)
    rows = [Example(text_a=t, label="x") for t in "abc"]
    assert list(group_rows(rows, ["q", "p", "q"])) == ["p", "q", ALL]
    with pytest.raises(DataError, match="a group is named 'all'"):
        group_rows(rows, ["all", "p", "q"])
    with pytest.raises(DataError, match="2 groups for 3 test rows"):
        group_rows(rows, ["p", "q"])


def test_read_groups_names_the_line_without_a_group(tmp_path):
    path = tmp_path / "test.json"
    path.write_text('{"text": "a", "domain": "law"}\n\n{"text": "b", "domain": 3}\n{"text": "c"}\n', encoding="utf-8")
    with pytest.raises(DataError, match=r"test.json line 4: no group in 'domain'"):
        read_groups(path, "domain")
    path.write_text('{"text": "a", "domain": "law"}\n\n{"text": "b", "domain": 3}\n', encoding="utf-8")
    assert read_groups(path, "domain") == ["law", "3"]
    with pytest.raises(DataError, match=r"test.tsv: --group-field needs JSON lines"):
        read_groups(tmp_path / "test.tsv", "domain")


def test_cli_single_label_reports_accuracy_and_one_line_errors(tiny_model_dir, separable_task, tmp_path, capsys):
    train, test, words = separable_task
    for name, rows in (("train.txt", train), ("test.txt", test)):
        (tmp_path / name).write_text("".join(f"{e.text_a}\t{e.label}\n" for e in rows), encoding="utf-8")
    (tmp_path / "labels.json").write_text(json.dumps(words, ensure_ascii=False), encoding="utf-8")
    argv = ["--checkpoints", tiny_model_dir, "--train", str(tmp_path / "train.txt"), "--test", str(tmp_path / "test.txt"),
            "--labels", str(tmp_path / "labels.json"), "--template", "{'text': 'text_a'}这句话的类别是{'mask'}{'mask'}",
            "--max-steps", "4", "--max-seq-length", "32"]
    assert main(argv) == 0
    assert capsys.readouterr().out.startswith("| checkpoint | method | step | MLM ppl | all accuracy |\n")
    assert main(argv + ["--early-stopping-patience", "1"]) == 2
    assert capsys.readouterr().err.strip().endswith("early_stopping_patience needs eval_data (the dev set it watches)")
    assert main(argv[:-2] + ["--group-field", "domain"]) == 2
    assert "test.txt: --group-field needs JSON lines" in capsys.readouterr().err


def test_domain_files_are_what_make_data_writes():
    spec = importlib.util.spec_from_file_location("hier_make_data", DATA / "make_data.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for split, rows in module.assign_domains(module.make_splits()).items():
        lines = (DATA / f"{split}.jsonl").read_text(encoding="utf-8").splitlines()
        assert [tuple(json.loads(line).values()) for line in lines] == rows, f"{split}.jsonl is stale"
        assert {domain for _, _, domain in rows} == set(DOMAINS)
    corpus = [json.loads(line)["text"] for line in (DATA / "corpus" / "site_logs.jsonl").read_text(encoding="utf-8").splitlines()]
    assert corpus == module.make_corpus(module.make_splits())
    records = {record for doc in corpus for record in doc.rstrip("。").split("。")}
    assert not records & {e.text_a for split in ("train", "dev", "test") for e in read_split(split)}


def test_cli_multi_label_table_shows_exact_match_and_micro_f1_as_evaluate_gives_them(
    tiny_model_dir, separable_task, tmp_path, capsys
):
    train, test, words = separable_task
    for name, rows in (("train.txt", train), ("test.txt", test)):
        (tmp_path / name).write_text("".join(f"{e.text_a}\t{e.label}\n" for e in rows), encoding="utf-8")
    (tmp_path / "label.txt").write_text("".join(f"{k}=={w[0]}\n" for k, w in words.items()), encoding="utf-8")
    template = "{'text': 'text_a'}这句话的类别是{'mask'}{'mask'}"
    argv = ["--checkpoints", tiny_model_dir, "--multi-label", "--train", str(tmp_path / "train.txt"),
            "--test", str(tmp_path / "test.txt"), "--labels", str(tmp_path / "label.txt"), "--template", template,
            "--max-steps", "4", "--max-seq-length", "32", "--seed", "3", "--output", str(tmp_path / "c.json")]
    assert main(argv) == 0
    table1, table2 = capsys.readouterr().out.strip().split("\n\n")
    assert table1.splitlines()[0] == "| checkpoint | method | step | MLM ppl | all exact | all micro-F1 |"
    assert table2.splitlines()[0] == "| domain | n | checkpoint | method | exact | macro-F1 |"
    clf = PromptClassifier(tiny_model_dir, labels=str(tmp_path / "label.txt"), multi_label=True, template=template,
                           max_seq_length=32, seed=3)
    clf.fit(train, seed=3, max_steps=4)
    saved = json.loads((tmp_path / "c.json").read_text(encoding="utf-8"))
    assert [run["seed"] for run in saved["results"][0]["runs"]] == [3]  # --seed alone: one run with it
    assert saved["results"][0]["runs"][0]["metrics"][ALL] == pytest.approx(clf.evaluate(test))


@pytest.mark.shared
def test_the_workflow_on_the_shared_model_pretrains_with_paddlenlp_flags_then_compares_per_domain(tmp_path, capsys):
    model = Path(__file__).resolve().parents[2] / "shared" / "models" / "zh-ernie-tiny"
    if not (model / "config.json").is_file():
        pytest.skip("../shared/models/zh-ernie-tiny is not present")
    from fewshot.cli.pretrain import main as pretrain_main

    assert pretrain_main(["--model_name_or_path", str(model), "--input_dir", str(DATA / "corpus"), "--output_dir",
                          str(tmp_path / "pre"), "--split", "18,1,1", "--binary_head", "True", "--max_seq_len", "32",
                          "--micro_batch_size", "8", "--max_steps", "2", "--checkpoint_steps", "2", "--save_steps", "2",
                          "--logging_freq", "1", "--eval_freq", "2", "--disable-tqdm"]) == 0
    capsys.readouterr()
    argv = ["--checkpoints", f"base={model}", f"base@2={tmp_path / 'pre' / 'model_2'}", "--method", "prompt", "finetune",
            "--hierarchical", "--labels", str(DATA / "label.txt"), "--train", str(DATA / "train.jsonl"),
            "--test", str(DATA / "test.jsonl"), "--group-field", "domain", "--fields", "text_a=text,label=label",
            "--template", TEMPLATE, "--max-seq-length", "48", "--max-steps", "2", "--batch-size", "8",
            "--eval-batch-size", "64", "--output", str(tmp_path / "c.json")]
    assert main(argv) == 0
    table1, table2 = capsys.readouterr().out.strip().split("\n\n")
    assert [line.split(" | ")[:3] for line in table1.splitlines()[2:]] == [
        ["| base", "prompt", "–"], ["| base", "finetune", "–"], ["| base@2", "prompt", "2"], ["| base@2", "finetune", "2"]]
    assert len(table2.splitlines()) == 2 + 4 * 4
    saved = json.loads((tmp_path / "c.json").read_text(encoding="utf-8"))
    assert all(set(run["metrics"]) == {*DOMAINS, ALL} for r in saved["results"] for run in r["runs"])
