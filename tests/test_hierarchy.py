"""Hierarchical labels: label files, path checks, consistent decoding, metrics, end to end."""

import random

import numpy as np
import pytest

from fewshot.classifier import PromptClassifier
from fewshot.errors import DataError, LabelFileError
from fewshot.tasks import Hierarchy, hierarchy_from_labels, hierarchy_metrics, read_hierarchy

TEMPLATE = "{'text': 'text_a'}这句话的类别是{'mask'}{'mask'}"
FAST = dict(disable_tqdm=True, logging_steps=1000, evaluation_strategy="no", report_to=[])
# top level by two cue characters, second level by two more; node words are single characters.
TREE = {"体育": ("球赛", {"跑": "跑天", "雨": "雨气"}), "财经": ("股价", {"钱": "钱汽", "雪": "雪车"})}
NEUTRAL = "的一是在了有和人这中大上个我他来们到地出就对会可年"


def make_path_rows(n, seed):
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        top = rng.choice(sorted(TREE))
        cues, children = TREE[top]
        child = rng.choice(sorted(children))
        chars = [rng.choice(NEUTRAL) for _ in range(rng.randint(3, 6))]
        for cue in cues + children[child]:
            chars.insert(rng.randint(0, len(chars)), cue)
        rows.append(("".join(chars), f"{top}##{child}"))
    return rows


@pytest.fixture
def tree():
    return hierarchy_from_labels(["工程##结构##钢筋", "工程##结构##模板", "工程##安装", "质量##混凝土##养护", "进度"])


def test_label_file_adds_ancestors_and_default_words(tmp_path):
    path = tmp_path / "label.txt"
    path.write_text("\ufeff质量##混凝土##养护==养护\n质量##混凝土##浇筑\n\n进度==工期\r\n进度==进展\n", encoding="utf-8")
    tree = read_hierarchy(path)
    assert tree.nodes == ["质量", "质量##混凝土", "质量##混凝土##养护", "质量##混凝土##浇筑", "进度"]
    assert tree.words["质量##混凝土"] == ["混凝土"] and tree.words["进度"] == ["工期", "进展"]
    assert tree.parent == [-1, 0, 1, 1, -1] and tree.depth == [1, 2, 3, 3, 1]
    assert read_hierarchy(path).config() == Hierarchy.from_config(tree.config()).config()


@pytest.mark.parametrize(
    "content, message",
    [
        ("质量##混凝土\n质量####养护\n", "line 2: empty level 2 in path '质量####养护'"),
        ("质量==\n", "line 1: empty word after '==' for path '质量'"),
        ("==质量\n", "line 1: empty path before '=='"),
        ("\n\n", "no paths"),
    ],
)
def test_label_file_errors_name_the_line(tmp_path, content, message):
    path = tmp_path / "label.txt"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(LabelFileError, match=message):
        read_hierarchy(path)


@pytest.mark.parametrize(
    "path, message",
    [
        ("工程##结构##钢管", "unknown node '钢管' under '工程##结构' in path '工程##结构##钢管' \\(known: 钢筋, 模板\\)"),
        ("安全", "unknown node '安全' at the top level"),
        ("工程####钢筋", "empty level 2"),
        ("工程/结构/钢筋", "unknown node '工程/结构/钢筋' at the top level.*it looks like '/' was used, but levels are separated by '##'"),
        ("工程##结构>钢筋", "unknown node '结构>钢筋' under '工程'.*it looks like '>' was used"),
    ],
)
def test_bad_paths_are_reported(tree, path, message):
    with pytest.raises(DataError, match=f"train.txt line 9: {message}"):
        tree.check_path("train.txt line 9", path)


def test_target_marks_the_path_and_its_ancestors(tree):
    target = np.array(tree.target("工程##结构##模板"))
    assert [tree.nodes[i] for i in np.flatnonzero(target)] == ["工程", "工程##结构", "工程##结构##模板"]


def test_decode_picks_the_best_whole_path():
    tree = hierarchy_from_labels(["a##x", "b##y"])  # nodes a, a##x, b, b##y
    probs = np.array([[0.9, 0.3, 0.6, 0.95], [0.9, 0.3, 0.6, 0.2], [0.9, 0.8, 0.1, 0.1]])
    assert tree.decode(probs) == ["b##y", "a", "a##x"]
    assert tree.decode(probs, complete_paths=True) == ["b##y", "a##x", "a##x"]
    assert tree.decode(probs, thresholds=[0.5, 0.2, 0.5, 0.5]) == ["b##y", "a##x", "a##x"]


def test_decoded_paths_are_always_consistent(tree):
    rng = np.random.default_rng(0)
    probs = rng.random((500, len(tree.nodes))) ** rng.uniform(0.2, 5, size=(500, 1))
    naive = probs >= 0.5
    inconsistent = sum(any(row[n] and not row[p] for n, p in enumerate(tree.parent) if p >= 0) for row in naive)
    assert inconsistent > 50  # thresholding nodes independently does break paths...
    for path, row in zip(tree.decode(probs), probs):
        nodes = tree.path_nodes(path)  # ...decoding never does: every prefix is a node
        assert path in tree.nodes and len(nodes) == len(tree.split(path))
        assert all(tree.parent[c] == p for p, c in zip(nodes, nodes[1:]))
    assert all(tree.is_leaf(tree.index[p]) for p in tree.decode(probs, complete_paths=True))


def test_metrics_hand_checked_on_fixed_predictions(tree):
    gold = ["工程##结构##钢筋", "工程##结构##钢筋", "工程##安装", "质量##混凝土", "进度", "工程##结构##模板"]
    pred = ["工程##结构##钢筋", "工程##结构##模板", "工程##结构", "质量##混凝土##养护", "进度", "质量##混凝土##养护"]
    metrics = hierarchy_metrics(pred, gold, hierarchy=tree)
    assert metrics["level_1_accuracy"] == pytest.approx(5 / 6)  # only the last row's top level is wrong
    assert metrics["level_2_accuracy"] == pytest.approx(3 / 5)  # 5 gold paths reach level 2; rows 0, 1, 3 match
    assert metrics["level_3_accuracy"] == pytest.approx(1 / 3)  # 3 gold paths reach level 3; row 0 matches
    assert metrics["exact_match"] == pytest.approx(2 / 6)  # rows 0 and 4
    assert metrics["tolerant_accuracy"] == pytest.approx(3 / 6)  # rows 0, 3 (deeper below a correct gold), 4
    # Node sets: tp = 3+2+1+2+1+0 = 9, predicted 3+3+2+3+1+3 = 15, gold 3+3+2+2+1+3 = 14.
    assert metrics["node_micro_f1"] == pytest.approx(2 * 9 / (15 + 14))


def test_bad_rows_in_a_data_file_are_reported_by_line(tiny_model_dir, tmp_path):
    clf = PromptClassifier(tiny_model_dir, labels=list({f"{t}##{c}" for t in TREE for c in TREE[t][1]}),
                           template=TEMPLATE, max_seq_length=32, hierarchical=True)
    cases = {
        "球赛跑\t体育##跑\n股价\t钱\t财经\n": "line 2: expected 2 tab-separated columns",
        "球赛跑\t体育##跑\n股价\t \n": "line 2: empty label",
        "球赛跑\t体育##跑\n\n股价钱\t财经##金\n": "line 3: unknown node '金' under '财经'",
        "股价钱\t财经,钱\n": "line 1: unknown node '财经,钱' at the top level.*it looks like ',' was used",
    }
    for i, (content, message) in enumerate(cases.items()):
        path = tmp_path / f"train{i}.txt"
        path.write_text(content, encoding="utf-8")
        with pytest.raises(DataError, match=f"train{i}.txt {message}"):
            clf.evaluate(str(path))


def test_learns_hierarchy_predicts_paths_and_round_trips(tiny_model_dir, tmp_path):
    labels = [f"{top}##{child}" for top in sorted(TREE) for child in sorted(TREE[top][1])]
    clf = PromptClassifier(tiny_model_dir, labels=labels, template=TEMPLATE, max_seq_length=32, seed=0,
                           hierarchical=True, verbalizer="soft", complete_paths=True)
    assert clf.labels == ["体育", "体育##跑", "体育##雨", "财经", "财经##钱", "财经##雪"]
    train, test = make_path_rows(64, 1), make_path_rows(24, 2)
    # BCE over nodes learns sibling distinctions slower than a softmax would: a high learning rate for
    # the soft head (5e-2) and 200 steps pass on every seed tried (0-3), where 1e-2 for all reached level 2 on few.
    clf.fit(train, max_steps=200, learning_rate=3e-3, ppt_learning_rate=5e-2, seed=0, **FAST)
    metrics = clf.evaluate(test)
    assert metrics["level_1_accuracy"] >= 0.9 and metrics["exact_match"] >= 0.8, metrics
    predictions = clf.predict([text for text, _ in test])
    assert all(p in labels for p in predictions)

    clf.save(tmp_path / "h")
    again = PromptClassifier.load(tmp_path / "h")
    assert again.task.hierarchy.nodes == clf.labels and again.task.complete_paths
    assert again.predict([text for text, _ in test]) == predictions
