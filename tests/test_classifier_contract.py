"""What a user can rely on: one input contract for both predictors, options that last one call, no hidden
side effects, errors before the model loads, scikit-learn's names."""

import tempfile
from pathlib import Path

import numpy as np
import paddle
import pytest

import fewshot.classifier as classifier_module
from fewshot.classifier import PromptClassifier
from fewshot.data import Example
from fewshot.errors import DataError, FewshotError
from fewshot.runtime import OnnxPredictor
from fewshot.training.trainer import PromptTrainer

TEMPLATE = "{'text': 'text_a'}这句话的类别是{'mask'}{'mask'}"
FAST = dict(disable_tqdm=True, logging_steps=1000)


def _clf(model_dir, words, **kwargs):
    kwargs.setdefault("template", TEMPLATE)
    return PromptClassifier(model_dir, labels=words, max_seq_length=32, seed=0, **kwargs)


@pytest.fixture(scope="module")
def both(tiny_model_dir, separable_task, tmp_path_factory):
    """A trained classifier and an OnnxPredictor on its bundle."""
    train, _, words = separable_task
    clf = _clf(tiny_model_dir, words)
    clf.fit(train, max_steps=10, learning_rate=5e-3, **FAST)
    return clf, OnnxPredictor(clf.export(tmp_path_factory.mktemp("contract") / "bundle"))


def test_a_string_is_one_text_for_both_predictors(both, separable_task):
    clf, onnx = both
    text = separable_task[1][0].text_a
    assert clf.predict(text) == clf.predict([text]) == onnx.predict(text) == onnx.predict([text])
    assert len(clf.predict(text)) == 1
    np.testing.assert_allclose(clf.predict_proba(text), onnx.predict_proba(text), atol=1e-4)
    assert clf.predict_proba(text).shape == onnx.predict_proba(text).shape == (1, 3)


def test_generators_tuples_and_examples_work_for_both(both, separable_task):
    clf, onnx = both
    texts = [e.text_a for e in separable_task[1][:6]]
    expected = clf.predict(texts)
    for predictor in (clf, onnx):
        assert predictor.predict(t for t in texts) == expected
        assert predictor.predict(tuple(texts)) == expected
        assert predictor.predict([Example(t) for t in texts]) == expected
        assert predictor.predict([]) == []


@pytest.mark.parametrize(
    "inputs,message",
    [(["球赛", "  "], "input 1: empty text"), (["球赛", 3], "input 1: expected a text or a \\(text_a, text_b\\) pair"),
     (Path("data.txt"), "read files with fewshot.read_examples")],
)
def test_both_predictors_refuse_bad_inputs_with_the_same_words(both, inputs, message):
    clf, onnx = both
    for predictor in (clf, onnx):
        with pytest.raises(DataError, match=message):
            predictor.predict(inputs)


def test_freeze_plm_applies_to_that_fit_only(tiny_model_dir, separable_task):
    train, _, words = separable_task
    clf = _clf(tiny_model_dir, words, template="{'soft'}{'text': 'text_a'}{'mask'}{'mask'}")
    first = {k: v.numpy().copy() for k, v in clf.model.plm.state_dict().items()}
    clf.fit(train, max_steps=3, learning_rate=1e-2, freeze_plm=True, **FAST)
    frozen = {k: v.numpy().copy() for k, v in clf.model.plm.state_dict().items()}
    assert all(np.array_equal(first[k], frozen[k]) for k in first)
    assert not any(p.stop_gradient for p in clf.model.plm.parameters())
    clf.fit(train, max_steps=3, learning_rate=1e-2, **FAST)
    assert not all(np.array_equal(frozen[k], v.numpy()) for k, v in clf.model.plm.state_dict().items())


def test_fit_leaves_no_temporary_directory(tiny_model_dir, separable_task, tmp_path, monkeypatch):
    train, _, words = separable_task
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    clf = _clf(tiny_model_dir, words)
    clf.fit(train, max_steps=2, output_dir=None, **FAST)
    clf.fit(train, max_steps=2, **FAST)
    assert list(tmp_path.iterdir()) == []
    kept = tmp_path / "kept"
    clf.fit(train, max_steps=2, output_dir=str(kept), **FAST)
    assert kept.is_dir()


def test_seeding_leaves_the_global_generators_alone(tiny_model_dir, separable_task):
    train, _, words = separable_task
    paddle.seed(123)
    np.random.seed(7)
    expected = paddle.rand([3]).numpy(), np.random.rand(3)
    paddle.seed(123)
    np.random.seed(7)
    clf = _clf(tiny_model_dir, words, template="{'soft'}{'text': 'text_a'}{'mask'}{'mask'}")
    clf.fit(train, max_steps=2, seed=5, **FAST)
    np.testing.assert_array_equal(paddle.rand([3]).numpy(), expected[0])
    np.testing.assert_array_equal(np.random.rand(3), expected[1])
    again = _clf(tiny_model_dir, words, template="{'soft'}{'text': 'text_a'}{'mask'}{'mask'}")
    np.testing.assert_array_equal(again.model.soft_prompt.embedding.numpy(),
                                  _clf(tiny_model_dir, words, template="{'soft'}{'text': 'text_a'}{'mask'}{'mask'}")
                                  .model.soft_prompt.embedding.numpy())


@pytest.mark.parametrize(
    "options,message",
    [
        (dict(verbalizer="fancy"), "verbalizer must be one of manual, soft"),
        (dict(method="magic"), "method must be one of prompt, finetune, zeroshot"),
        (dict(method="zeroshot", calibrate=True, multi_label=True), "calibrate=True .* does not apply to multi-label"),
        (dict(thresholds=0.3), "thresholds does not apply to single-label classifiers"),
        (dict(multi_label=True, hierarchical=True), "choose multi_label=True or hierarchical=True, not both"),
        (dict(template="{'text': 'text_a'}{'mask': open('x')}"), "only literals"),
    ],
)
def test_bad_arguments_fail_before_the_model_loads(separable_task, monkeypatch, options, message):
    def must_not_load(name):
        raise AssertionError("the pretrained model was loaded before the arguments were checked")

    monkeypatch.setattr(classifier_module, "load_pretrained", must_not_load)
    with pytest.raises(FewshotError, match=message):
        PromptClassifier("any-model", labels=separable_task[2], **options)


def test_bad_training_options_fail_before_training_starts(tiny_model_dir, separable_task, monkeypatch):
    train, _, words = separable_task
    monkeypatch.setattr(PromptTrainer, "train", lambda self, *a, **k: pytest.fail("training started"))
    clf = _clf(tiny_model_dir, words, multi_label=True)
    with pytest.raises(FewshotError, match="use_rgl does not apply to multi-label classifiers"):
        clf.fit([("球赛", "sports")], use_rgl=True)
    with pytest.raises(FewshotError, match="unknown training argument\\(s\\) learnin_rate"):
        clf.fit([("球赛", "sports")], learnin_rate=1e-3)
    single = _clf(tiny_model_dir, words)
    with pytest.raises(FewshotError, match="tune_thresholds does not apply to single-label classifiers"):
        single.fit(train, eval_data=train, tune_thresholds=True)


def test_classes_and_score_follow_scikit_learn(both, separable_task):
    clf, onnx = both
    test = separable_task[1]
    assert list(clf.classes_) == list(onnx.classes_) == clf.labels
    assert clf.predict_proba([test[0].text_a]).shape[1] == len(clf.classes_)
    accuracy = np.mean([p == e.label for p, e in zip(clf.predict(test), test)])
    assert clf.score(test) == pytest.approx(accuracy) == pytest.approx(clf.evaluate(test)["accuracy"])
