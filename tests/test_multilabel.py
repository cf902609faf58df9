"""Multi-label classification: label-set rows, BCE, per-label logits, thresholds, metrics, end to end."""

import random

import numpy as np
import paddle
import pytest

from fewshot.classifier import PromptClassifier
from fewshot.errors import DataError, LabelFileError
from fewshot.prompt.heads import SigmoidHead as MultiLabelHead
from fewshot.tasks import multilabel_metrics, tune_thresholds
from fewshot.tasks.multi_label import parse_label_set, to_multi_hot
from fewshot.training.arguments import PromptTrainingArguments
from fewshot.training.losses import bce_loss
from fewshot.training.trainer import PromptTrainer, make_collator

TEMPLATE = "{'text': 'text_a'}这句话的类别是{'mask'}{'mask'}"
FAST = dict(disable_tqdm=True, logging_steps=1000, evaluation_strategy="no", report_to=[])
CUES = {"sports": "球赛跑", "finance": "股价钱", "weather": "雨雪风"}
NEUTRAL = "的一是在了有和人这中大上个我他来们到地出就对会可年"


def make_multilabel_rows(n, seed):
    """Texts with the cue characters of 1 or 2 classes; label field 'a,b'."""
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        chosen = sorted(rng.sample(sorted(CUES), rng.choice([1, 1, 2])))
        chars = [rng.choice(NEUTRAL) for _ in range(rng.randint(3, 6))]
        for label in chosen:
            for cue in CUES[label]:
                chars.insert(rng.randint(0, len(chars)), cue)
        rows.append(("".join(chars), ",".join(chosen)))
    return rows


def test_parse_label_set_keeps_order_and_drops_repeats():
    assert parse_label_set("row 0", " 盗窃 , 抢劫,盗窃", ["抢劫", "盗窃"]) == ["盗窃", "抢劫"]
    assert parse_label_set("row 0", "盗窃|抢劫", ["盗窃", "抢劫"], delimiter="|") == ["盗窃", "抢劫"]


@pytest.mark.parametrize(
    "field, message",
    [
        ("盗窃,,抢劫", "row 4: empty label in '盗窃,,抢劫'"),
        ("诈骗", "row 4: unknown label '诈骗' \\(known: 盗窃, 抢劫\\)"),
        ("盗窃;抢劫", "row 4: unknown label '盗窃;抢劫'; it looks like ';' was used, but labels are separated by ','"),
    ],
)
def test_parse_label_set_reports_bad_fields(field, message):
    with pytest.raises(DataError, match=message):
        parse_label_set("row 4", field, ["盗窃", "抢劫"])


def test_bce_loss_matches_hand_computation():
    logits = np.array([[2.0, -1.0], [0.0, 3.0]], dtype="float32")
    targets = np.array([[1.0, 0.0], [0.0, 1.0]], dtype="float32")
    p = 1 / (1 + np.exp(-logits))
    expected = -np.mean(targets * np.log(p) + (1 - targets) * np.log(1 - p))
    got = float(bce_loss(paddle.to_tensor(logits), paddle.to_tensor(targets)))
    assert got == pytest.approx(expected, rel=1e-5)


class _FixedScores(paddle.nn.Layer):
    """A stand-in verbalizer returning fixed log-probabilities."""

    def __init__(self, scores):
        super().__init__()
        self.scores = paddle.to_tensor(np.asarray(scores, dtype="float32"))

    def forward(self, hidden):
        return self.scores


def test_manual_scores_become_log_odds_plus_bias():
    log_p = np.log(np.array([[0.9, 0.5, 0.01]], dtype="float32"))
    head = MultiLabelHead(_FixedScores(log_p), 3, log_odds=True)
    logits = head(paddle.zeros([1, 2, 4])).numpy()
    np.testing.assert_allclose(logits, [[np.log(9.0), 0.0, np.log(0.01 / 0.99)]], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(1 / (1 + np.exp(-logits)), np.exp(log_p), rtol=1e-4)  # sigmoid(logit) == p
    head.bias.set_value(paddle.to_tensor([1.0, 2.0, 3.0]))
    soft = MultiLabelHead(_FixedScores(log_p), 3, log_odds=False)
    soft.bias.set_value(paddle.to_tensor([1.0, 2.0, 3.0]))
    np.testing.assert_allclose(soft(None).numpy(), log_p + [1.0, 2.0, 3.0], rtol=1e-6)
    np.testing.assert_allclose(head(None).numpy() - logits, [[1.0, 2.0, 3.0]], rtol=1e-5)


def test_per_label_threshold_tuning_improves_dev_f1():
    # Label 0 is well calibrated; label 1's positives sit at 0.30-0.40 and negatives below 0.2;
    # label 2's negatives reach 0.7 while its positives are above 0.8.
    probs = np.array(
        [[0.9, 0.35, 0.9], [0.8, 0.10, 0.70], [0.1, 0.40, 0.85], [0.2, 0.15, 0.60], [0.7, 0.30, 0.95], [0.3, 0.05, 0.1]]
    )
    gold = np.array([[1, 1, 1], [1, 0, 0], [0, 1, 1], [0, 0, 0], [1, 1, 1], [0, 0, 0]])
    default = multilabel_metrics(probs >= 0.5, gold)
    thresholds = tune_thresholds(probs, gold)
    tuned = multilabel_metrics(probs >= thresholds, gold)
    assert thresholds[0] == pytest.approx(0.5)  # 0.5 already separates label 0: ties go to the default
    assert 0.15 < thresholds[1] < 0.30 and 0.70 < thresholds[2] < 0.85
    assert default["macro_f1"] < 0.8 and tuned["macro_f1"] == 1.0
    assert tuned["micro_f1"] > default["micro_f1"] and tuned["exact_match"] == 1.0


def test_label_without_dev_positives_keeps_the_default_threshold():
    probs = np.array([[0.9, 0.6], [0.2, 0.7]])
    assert tune_thresholds(probs, np.array([[1, 0], [0, 0]]))[1] == pytest.approx(0.5)


def test_metrics_on_a_fixed_prediction_set():
    gold = to_multi_hot([["a"], ["a", "b"], ["c"], ["b", "c"]], ["a", "b", "c"])
    pred = to_multi_hot([["a"], ["a"], ["c", "b"], ["b", "c"]], ["a", "b", "c"])
    metrics = multilabel_metrics(pred, gold)
    # tp=5 fp=1 (row 2: b) fn=1 (row 1: b) → micro-F1 10/12; per label F1: a 1, b 0.5 (tp1 fp1 fn1), c 1.
    assert metrics["micro_f1"] == pytest.approx(10 / 12)
    assert metrics["macro_f1"] == pytest.approx((1 + 0.5 + 1) / 3)
    assert metrics["exact_match"] == pytest.approx(2 / 4)


def test_collator_and_trainer_use_bce_for_multi_hot_targets(tiny_model_dir, separable_task):
    _, _, words = separable_task
    clf = PromptClassifier(tiny_model_dir, labels=words, template=TEMPLATE, max_seq_length=32, seed=0, multi_label=True)
    rows = clf.encode(clf._examples(make_multilabel_rows(4, 0), labeled=True), with_labels=True)
    batch = make_collator(0)(rows)
    assert batch["labels"].dtype == np.float32 and batch["labels"].shape == (4, 3)
    tensors = {k: paddle.to_tensor(v) for k, v in batch.items()}
    trainer = PromptTrainer(model=clf.model, args=PromptTrainingArguments(output_dir="/tmp/unused"), task=clf.task)
    clf.model.eval()
    loss = float(trainer.compute_loss(clf.model, dict(tensors)))
    logits = clf.model(**{k: v for k, v in tensors.items() if k != "labels"})
    assert loss == pytest.approx(float(bce_loss(logits, tensors["labels"])), rel=1e-5)
    clf.model.train()
    with pytest.raises(ValueError, match="use_rgl does not apply to multi-label classifiers"):
        PromptTrainer(model=clf.model, args=PromptTrainingArguments(output_dir="/tmp/unused", use_rgl=True), task=clf.task)


def test_bad_multilabel_rows_are_reported_by_line(tiny_model_dir, separable_task, tmp_path):
    _, _, words = separable_task
    clf = PromptClassifier(tiny_model_dir, labels=words, template=TEMPLATE, max_seq_length=32, multi_label=True)
    cases = {
        "球赛\tsports,\n": "line 1: empty label in 'sports,'",
        "球赛\tsports\n股价\t  \n": "line 2: empty label",
        "球赛\tsports\n\n股价\tsports,stocks\n": "line 3: unknown label 'stocks'",
        "球赛\tsports;finance\n": "line 1: unknown label 'sports;finance'; it looks like ';' was used",
    }
    for i, (content, message) in enumerate(cases.items()):
        path = tmp_path / f"train{i}.txt"
        path.write_text(content, encoding="utf-8")
        with pytest.raises(DataError, match=f"train{i}.txt {message}"):
            clf.fit(str(path), max_steps=1, **FAST)


def test_label_names_must_not_contain_the_delimiter(tiny_model_dir):
    with pytest.raises(LabelFileError, match="label 'a,b' contains the label delimiter ','"):
        PromptClassifier(tiny_model_dir, labels={"a,b": "体育", "c": "财经"}, template=TEMPLATE, multi_label=True)


@pytest.mark.parametrize("verbalizer, floor", [("soft", 0.9), ("manual", 0.75)])
def test_learns_multilabel_task_tunes_thresholds_and_round_trips(tiny_model_dir, separable_task, tmp_path, verbalizer, floor):
    _, _, words = separable_task
    train, dev, test = make_multilabel_rows(64, 1), make_multilabel_rows(24, 2), make_multilabel_rows(24, 3)
    clf = PromptClassifier(
        tiny_model_dir, labels=words, template=TEMPLATE, max_seq_length=32, seed=0, multi_label=True, verbalizer=verbalizer
    )
    before = clf.evaluate(test)["micro_f1"]
    clf.fit(train, eval_data=dev, tune_thresholds=True, max_steps=100, learning_rate=5e-3, seed=0, **FAST)
    metrics = clf.evaluate(test, report=True)
    assert metrics["micro_f1"] >= floor and metrics["micro_f1"] > before + 0.2, (before, metrics)
    assert set(metrics["per_class"]) >= set(words)
    predictions = clf.predict([text for text, _ in test])
    assert all(isinstance(p, list) and set(p) <= set(words) for p in predictions)
    assert sum(len(p) == 2 for p in predictions) >= 3  # rows do get several labels

    clf.save(tmp_path / "ml")
    again = PromptClassifier.load(tmp_path / "ml")
    np.testing.assert_array_equal(again.task.thresholds, clf.task.thresholds)
    texts = [text for text, _ in test]
    np.testing.assert_array_equal(again.predict_proba(texts), clf.predict_proba(texts))
    assert again.predict(texts) == predictions


def test_in_memory_rows_may_give_label_lists(tiny_model_dir, separable_task):
    _, _, words = separable_task
    clf = PromptClassifier(tiny_model_dir, labels=words, template=TEMPLATE, max_seq_length=32, multi_label=True)
    rows = clf.encode(clf._examples([("球赛股价", ["finance", "sports"])], labeled=True), with_labels=True)
    assert rows[0]["labels"] == [1.0, 1.0, 0.0]
