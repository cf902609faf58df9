"""See and fix your data: label issues, selection, explanations, temperature scaling, the HTML report."""

import json
import random
import re

import numpy as np
import pytest

from fewshot.analysis.label_issues import rank_label_issues
from fewshot.analysis.selection import select_indices
from fewshot.classifier import PromptClassifier
from fewshot.cli.analyze import main as analyze_main
from fewshot.cli.report import main as report_main
from fewshot.cli.select import main as select_main
from fewshot.data import Example, read_examples
from fewshot.errors import BundleError
from fewshot.inference import OnnxPredictor
from fewshot.runtime.manifest import MANIFEST_NAME
from fewshot.tasks import HierarchicalTask, MultiLabelTask, SingleLabelTask, hierarchy_from_labels, task_from_config
from fewshot.tasks.calibration import expected_calibration_error, negative_log_likelihood
from fewshot.testing import build_tiny_model

TEMPLATE = "{'text': 'text_a'}这句话的类别是{'mask'}{'mask'}"
FAST = dict(disable_tqdm=True, logging_steps=1000, evaluation_strategy="no", report_to=[])
NEUTRAL = "的一是在了有和人这中大上个我他来们到地出就对会"
CUES = {"sports": "球赛跑", "finance": "股价钱", "weather": "雨雪风"}
WORDS = {"sports": "体育", "finance": "财经", "weather": "天气"}
KEYWORDS = {"sports": "球", "finance": "股", "weather": "雨"}


def cue_texts(n_per_class, seed, cues=CUES, count=2):
    """Texts of 2-4 neutral characters and ``count`` cue characters of their class, shuffled."""
    rng = random.Random(seed)
    rows = []
    for label, chars in cues.items():
        for _ in range(n_per_class):
            text = [rng.choice(NEUTRAL) for _ in range(rng.randint(2, 4))] + rng.sample(chars, count)
            rng.shuffle(text)
            rows.append(Example("".join(text), label=label))
    rng.shuffle(rows)
    return rows


@pytest.fixture(scope="module")
def cue_model_dir(tmp_path_factory):
    """A tiny random ERNIE whose vocabulary has every character these tests write."""
    return build_tiny_model(tmp_path_factory.mktemp("cue-ernie"),
                            ["这句话的类别是体育财经天气球赛跑股价钱雨雪风" + NEUTRAL], seed=0)


def _clf(model_dir, **kwargs):
    return PromptClassifier(model_dir, labels=WORDS, template=TEMPLATE, max_seq_length=32, seed=0, **kwargs)


@pytest.fixture(scope="module")
def trained(cue_model_dir):
    clf = _clf(cue_model_dir)
    clf.fit(cue_texts(24, 0), max_steps=120, learning_rate=5e-3, per_device_train_batch_size=8, seed=0, **FAST)
    return clf


# --- temperature scaling -------------------------------------------------------------------------------


def _overconfident(n, seed):
    """Logits of a 3-class model that is right 70 % of the time but ~99 % sure every time."""
    rng = np.random.default_rng(seed)
    gold = rng.integers(0, 3, n)
    predicted = np.where(rng.random(n) < 0.7, gold, (gold + rng.integers(1, 3, n)) % 3)
    logits = 6.0 * np.eye(3)[predicted] + rng.normal(0, 0.5, (n, 3))
    return logits, [["a", "b", "c"][g] for g in gold]


def test_temperature_scaling_lowers_ece_on_an_overconfident_model():
    task = SingleLabelTask(["a", "b", "c"])
    dev_logits, dev_gold = _overconfident(400, 0)
    test_logits, test_gold = _overconfident(400, 1)
    before = task.calibration_report(test_logits, test_gold)
    decisions = task.decode(task.activate(test_logits))
    temperature = task.fit_temperature(dev_logits, dev_gold)
    after = task.calibration_report(test_logits, test_gold)
    assert temperature > 2.0
    assert before["ece_uncalibrated"] > 0.2
    assert after["ece"] < 0.05 < before["ece"]
    assert after["ece_uncalibrated"] == pytest.approx(before["ece"])
    assert task.decode(task.activate(test_logits)) == decisions


def test_fitted_temperature_is_the_nll_minimum():
    logits, gold = _overconfident(300, 2)
    targets = np.array(["abc".index(g) for g in gold])
    task = SingleLabelTask(["a", "b", "c"])
    fitted = task.fit_temperature(logits, gold)
    grid = np.exp(np.linspace(np.log(0.5), np.log(20), 2000))
    best = grid[np.argmin([negative_log_likelihood(logits / t, targets, "softmax") for t in grid])]
    assert fitted == pytest.approx(best, rel=0.01)


def test_ece_of_known_bins():
    # Two rows at 0.9, one right: gap 0.4; two at 0.6, both right: gap 0.4 → 0.4.
    assert expected_calibration_error(np.array([0.9, 0.9, 0.6, 0.6]), np.array([1, 0, 1, 1])) == pytest.approx(0.4)


@pytest.mark.parametrize("make", [
    lambda: MultiLabelTask(["a", "b", "c"], thresholds=[0.3, 0.5, 0.8]),
    lambda: HierarchicalTask(hierarchy_from_labels(["质量##混凝土", "质量##钢筋", "进度"]), thresholds=0.4),
])
def test_threshold_tasks_keep_their_decisions_under_a_new_temperature(make):
    task = make()
    logits = np.random.default_rng(0).normal(0, 3, (200, len(task.labels)))
    before = task.decode(task.activate(logits))
    task.set_temperature(2.5)
    assert task.decode(task.activate(logits)) == before
    task.set_temperature(0.7)
    assert task.decode(task.activate(logits)) == before


def test_task_config_carries_the_temperature_and_old_configs_load_at_1():
    task = SingleLabelTask(["a", "b"])
    task.set_temperature(1.8)
    assert task_from_config(["a", "b"], task.config()).temperature == 1.8
    assert task_from_config(["a", "b"], {"task": "multi_class"}).temperature == 1.0
    with pytest.raises(BundleError, match="temperature must be a finite number above 0"):
        task_from_config(["a", "b"], {"task": "multi_class", "temperature": -1})


def test_temperature_survives_save_load_export_and_the_runtime(trained, tmp_path):
    clf = PromptClassifier.load(trained.save(tmp_path / "trained"))  # a copy: the fixture stays at temperature 1
    dev = cue_texts(10, 7)
    texts = [e.text_a for e in dev]
    raw = clf.predict_proba(texts)
    temperature = clf.fit_temperature(dev)
    assert abs(temperature - 1.0) > 0.05
    calibrated = clf.predict_proba(texts)
    assert not np.allclose(calibrated, raw, atol=1e-3)
    np.testing.assert_allclose(calibrated, clf.task.activate(clf.logits(texts) / temperature, 1.0), atol=1e-6)
    report = clf.evaluate(dev, report=True)["calibration"]
    assert report["temperature"] == temperature and report["ece"] != report["ece_uncalibrated"]

    clf.save(tmp_path / "clf")
    again = PromptClassifier.load(tmp_path / "clf")
    assert again.task.temperature == temperature
    np.testing.assert_array_equal(again.predict_proba(texts), calibrated)
    bundle = again.export(tmp_path / "bundle")
    manifest = json.loads((bundle / MANIFEST_NAME).read_text(encoding="utf-8"))
    assert manifest["task_config"]["temperature"] == temperature
    predictor = OnnxPredictor(bundle)
    assert predictor.task.temperature == temperature == predictor.describe()["temperature"]
    np.testing.assert_allclose(predictor.predict_proba(texts), calibrated, atol=1e-4, rtol=0)

    del manifest["task_config"]["temperature"]  # a bundle written before temperatures existed
    (bundle / MANIFEST_NAME).write_text(json.dumps(manifest), encoding="utf-8")
    assert OnnxPredictor(bundle).task.temperature == 1.0

    config = json.loads((tmp_path / "clf" / "fewshot_config.json").read_text(encoding="utf-8"))
    del config["task"]["temperature"]
    (tmp_path / "clf" / "fewshot_config.json").write_text(json.dumps(config), encoding="utf-8")
    old = PromptClassifier.load(tmp_path / "clf")
    assert old.task.temperature == 1.0
    np.testing.assert_allclose(old.predict_proba(texts), raw, atol=1e-6)


# --- label issues ----------------------------------------------------------------------------------------


def test_flipped_labels_rank_at_the_top(cue_model_dir, tmp_path):
    rows = cue_texts(40, 0)
    labels = list(WORDS)
    flipped = list(range(6))
    lines = []
    for i, e in enumerate(rows):
        label = labels[(labels.index(e.label) + 1) % 3] if i in flipped else e.label
        lines.append(f"{e.text_a}\t{label}\n")
    lines.insert(3, "\n")  # a blank line: file lines are not row indices
    (tmp_path / "train.txt").write_text("".join(lines), encoding="utf-8")
    (tmp_path / "label.txt").write_text("".join(f"{k}=={v}\n" for k, v in WORDS.items()), encoding="utf-8")
    out = tmp_path / "issues.tsv"
    status = analyze_main([
        "label-issues", "--train", str(tmp_path / "train.txt"), "--labels", str(tmp_path / "label.txt"),
        "--model", cue_model_dir, "--template", TEMPLATE, "--max-seq-length", "32", "--folds", "3",
        "--max-steps", "150", "--learning-rate", "5e-3", "--batch-size", "8", "--seed", "0",
        "--output", str(out), "--all",
    ])
    assert status == 0
    header, *table = [line.split("\t") for line in out.read_text(encoding="utf-8").splitlines()]
    assert header == ["line", "text", "given", "suggested", "score", "flagged", "fold_accuracy"]
    assert len(table) == len(rows)
    flipped_lines = {i + 1 if i < 3 else i + 2 for i in flipped}
    ranked_lines = [int(row[0]) for row in table]
    assert len(flipped_lines & set(ranked_lines[:6])) >= 5
    assert flipped_lines <= set(ranked_lines[:12])
    top = table[0]
    assert top[5] == "yes" and top[2] != top[3]
    assert float(top[4]) <= min(float(row[4]) for row in table if row[5] == "yes")


@pytest.mark.filterwarnings("ignore:May not flag all label issues:UserWarning")  # a few rows per class, on purpose
def test_hierarchical_issues_rank_paths_and_multi_label_issues_rank_sets():
    task = HierarchicalTask(hierarchy_from_labels(["质量##混凝土", "质量##钢筋", "进度##延误", "进度##节点"]))
    paths = ["质量##混凝土", "质量##钢筋", "进度##延误", "进度##节点"]
    rng = np.random.default_rng(0)
    gold = [paths[i % 4] for i in range(80)]
    probs = np.full((80, len(task.labels)), 0.05)
    for row, path in enumerate(gold):
        probs[row, task.hierarchy.path_nodes(path)] = 0.95
    probs = np.clip(probs + rng.normal(0, 0.02, probs.shape), 0.01, 0.99)
    given = list(gold)
    given[5], given[17] = "质量##混凝土", "进度##节点"  # 5 is 质量##钢筋 (wrong leaf), 17 is 质量##钢筋 (wrong tree)
    examples = [Example(f"t{i}", label=label) for i, label in enumerate(given)]
    issues = rank_label_issues(task, examples, probs)
    assert {issue.index for issue in issues[:2]} == {5, 17}
    assert issues[0].suggested == "质量##钢筋"

    multi = MultiLabelTask(["a", "b", "c"])
    sets = [["a"], ["b"], ["a", "c"], ["c"]] * 15
    probs = np.array([[0.95 if x in s else 0.05 for x in "abc"] for s in sets]) + rng.normal(0, 0.02, (60, 3))
    fields = [",".join(s) for s in sets]
    fields[9], fields[21], fields[35] = "a,b", "a,b", "b,c"  # each was a one-label row
    issues = rank_label_issues(multi, [Example(f"t{i}", label=f) for i, f in enumerate(fields)],
                               np.clip(probs, 0.01, 0.99), include_unflagged=True)
    assert {issue.index for issue in issues[:3]} == {9, 21, 35}
    assert issues[0].flagged and not issues[3].flagged
    assert {tuple(issue.suggested) for issue in issues[:3]} == {("b",), ("c",)}


# --- what to label next --------------------------------------------------------------------------------


def test_diverse_selection_spreads_over_clusters_where_margin_does_not():
    task = SingleLabelTask(["a", "b", "c"])
    rng = np.random.default_rng(0)
    centres = rng.normal(0, 1, (5, 16)) * 10
    cluster = np.repeat(np.arange(5), [20, 6, 6, 6, 6])
    hidden = centres[cluster] + rng.normal(0, 0.1, (len(cluster), 16))
    # Cluster 0: twenty near-copies of one confusing text (p1 ≈ p2); the others: less uncertain.
    probs = np.where(cluster[:, None] == 0, [0.46, 0.44, 0.10], [0.60, 0.30, 0.10]) + rng.uniform(0, 0.01, (len(cluster), 3))
    probs /= probs.sum(axis=1, keepdims=True)
    margin, _ = select_indices(probs, hidden, task, k=5, strategy="margin")
    diverse, _ = select_indices(probs, hidden, task, k=5, strategy="diverse")
    assert set(cluster[margin]) == {0}
    assert len(set(cluster[diverse])) == 5
    assert cluster[diverse[0]] == 0
    entropy, _ = select_indices(probs, hidden, task, k=5, strategy="entropy")
    assert set(cluster[entropy]) == {0}


def test_fewshot_select_does_not_pick_copies_of_one_text(trained, tmp_path):
    trained.save(tmp_path / "clf")
    pool = sorted({e.text_a for e in cue_texts(8, 3)})
    probs = trained.predict_proba(pool)
    top = np.sort(probs, axis=1)
    confusing = pool[int(np.argmin(top[:, -1] - top[:, -2]))]
    (tmp_path / "pool.txt").write_text("\n".join(pool + [confusing] * 10) + "\n", encoding="utf-8")
    chosen = {}
    for strategy in ("margin", "diverse"):
        out = tmp_path / f"{strategy}.tsv"
        assert select_main(["--classifier", str(tmp_path / "clf"), "--unlabeled", str(tmp_path / "pool.txt"),
                            "--k", "5", "--strategy", strategy, "--output", str(out)]) == 0
        header, *rows = [line.split("\t") for line in out.read_text(encoding="utf-8").splitlines()]
        assert header == ["line", "text", "predicted", "score"] and len(rows) == 5
        chosen[strategy] = [row[1] for row in rows]
    assert chosen["margin"].count(confusing) == 5
    assert chosen["diverse"].count(confusing) == 1 and len(set(chosen["diverse"])) == 5


def test_fewshot_select_rejects_a_bad_k(trained, tmp_path, capsys):
    trained.save(tmp_path / "clf")
    (tmp_path / "pool.txt").write_text("球赛\n", encoding="utf-8")
    with pytest.raises(SystemExit) as exit_info:
        select_main(["--classifier", str(tmp_path / "clf"), "--unlabeled", str(tmp_path / "pool.txt"),
                     "--k", "0", "--output", str(tmp_path / "out.tsv")])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.strip().endswith("fewshot-select: error: argument --k: must be ≥ 1, got 0")


# --- explanations --------------------------------------------------------------------------------------


def test_the_deciding_keyword_gets_the_highest_attribution(tmp_path):
    # Each sports/finance/weather text holds its one keyword (球/股/雨); texts without one are "other",
    # so no class can be learned as "none of the other keywords".
    model = build_tiny_model(tmp_path / "m", ["这句话的类别是体育财经天气其他" + "".join(KEYWORDS.values()) + NEUTRAL])
    words = {**WORDS, "other": "其他"}

    def rows(n, seed):
        rng = random.Random(seed + 100)
        out = cue_texts(n, seed, KEYWORDS, count=1)
        out += [Example("".join(rng.choice(NEUTRAL) for _ in range(rng.randint(3, 5))), label="other") for _ in range(n)]
        rng.shuffle(out)
        return out

    clf = PromptClassifier(model, labels=words, template=TEMPLATE, max_seq_length=32, seed=0)
    clf.fit(rows(32, 1), max_steps=300, learning_rate=3e-3, per_device_train_batch_size=8, seed=0, **FAST)
    test = cue_texts(10, 2, KEYWORDS, count=1)
    assert clf.evaluate(test)["accuracy"] >= 0.9
    explanations = clf.explain([e.text_a for e in test])
    assert len(explanations) == len(test)
    for explanation, example in zip(explanations, test):
        assert "".join(piece for _, piece, _ in explanation.units) == example.text_a
    hits = [e.top_piece() == KEYWORDS[example.label] for e, example in zip(explanations, test)]
    assert np.mean(hits) >= 0.9, hits


def test_explain_keeps_ascii_words_whole_and_explains_text_pairs(tiny_model_dir):
    template = "{'text': 'text_a'}{'sep'}{'text': 'text_b'}这句话的类别是{'mask'}{'mask'}"
    clf = PromptClassifier(tiny_model_dir, labels={"sports": "体育", "finance": "财经"}, template=template,
                           max_seq_length=32, seed=0)
    (explanation,) = clf.explain([("球赛 abc12", "股价")])
    assert [(slot, piece) for slot, piece, _ in explanation.units] == [
        ("text_a", "球"), ("text_a", "赛"), ("text_a", " "), ("text_a", "abc12"), ("text_b", "股"), ("text_b", "价")]
    assert explanation.units[2][2] == 0.0
    assert explanation.label == explanation.prediction
    np.testing.assert_allclose(explanation.probability, clf.predict_proba([("球赛 abc12", "股价")]).max(), atol=1e-6)


# --- the report ----------------------------------------------------------------------------------------


def _no_external_links(html):
    assert not re.search(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", html, re.I)
    assert "http://" not in html and "https://" not in html


def test_report_has_every_section_and_no_external_url(trained, tmp_path):
    trained.save(tmp_path / "clf")
    test = cue_texts(8, 4)
    (tmp_path / "test.txt").write_text("".join(f"{e.text_a}\t{e.label}\n" for e in test), encoding="utf-8")
    (tmp_path / "train.txt").write_text("".join(f"{e.text_a}\t{e.label}\n" for e in cue_texts(10, 5)),
                                        encoding="utf-8")
    out = tmp_path / "report.html"
    status = report_main(["--classifier", str(tmp_path / "clf"), "--data", str(tmp_path / "test.txt"),
                          "--train", str(tmp_path / "train.txt"), "--max-steps", "20", "--learning-rate", "5e-3",
                          "--batch-size", "8", "--explain", "6", "--output", str(out), "--trust-pickle"])
    assert status == 0
    html = out.read_text(encoding="utf-8")
    for section in ("overview", "metrics", "per-class", "confusion", "confused-pairs", "calibration", "explanations",
                    "label-issues"):
        assert f'<section id="{section}">' in html
    assert html.count('src="data:image/png;base64,') == 2
    assert html.count('<span class=u style="background:rgba(') >= 6 * 4
    assert "Not run" not in html and "training rows" in html
    for name in ("accuracy", "macro_f1", "ece_uncalibrated", "sports", "finance", "weather"):
        assert name in html
    _no_external_links(html)


def test_hierarchical_report_has_its_own_metrics_and_a_class_key(tiny_model_dir, tmp_path):
    labels = {"质量##混凝土": "天气", "质量##钢筋": "体育", "进度": "财经"}
    clf = PromptClassifier(tiny_model_dir, labels=labels, template=TEMPLATE, max_seq_length=32, seed=0,
                           hierarchical=True)
    rows = [("球赛跑", "质量##钢筋"), ("雨雪风", "质量##混凝土"), ("股价钱", "进度"), ("雨风", "质量")]
    clf.fit(rows * 4, max_steps=10, learning_rate=5e-3, seed=0, **FAST)
    clf.save(tmp_path / "clf")
    (tmp_path / "test.txt").write_text("".join(f"{t}\t{p}\n" for t, p in rows), encoding="utf-8")
    out = tmp_path / "report.html"
    assert report_main(["--classifier", str(tmp_path / "clf"), "--data", str(tmp_path / "test.txt"),
                        "--output", str(out)]) == 0
    html = out.read_text(encoding="utf-8")
    for name in ("level_1_accuracy", "level_2_accuracy", "exact_match", "tolerant_accuracy", "node_micro_f1"):
        assert name in html
    assert "<table class=key>" in html and "质量##混凝土" in html
    assert "Not run: give the training data" in html
    _no_external_links(html)


def test_examples_remember_their_file_lines(tmp_path):
    path = tmp_path / "train.txt"
    path.write_text("球赛\tsports\n\n股价\tfinance\n", encoding="utf-8")
    assert [e.line for e in read_examples(path)] == [1, 3]
    assert read_examples(path)[1] == Example("股价", label="finance")
