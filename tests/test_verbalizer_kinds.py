"""Verbalizer kinds end to end: each builds through PromptClassifier, saves, loads and exports a bundle
whose onnxruntime probabilities match the dynamic model's."""

import numpy as np
import pytest

from fewshot.classifier import PromptClassifier
from fewshot.inference import OnnxPredictor

ONE_MASK = "{'text': 'text_a'}这句话的类别是{'mask'}"
TEXTS = ["球赛跑的", "股价钱", "雨雪风天", "xyz 球 ¿?"]
WORDS = {"sports": ["体育", "球赛"], "finance": ["财经"], "weather": ["天气"]}


def _round_trip(clf, tmp_path):
    expected = clf.predict_proba(TEXTS)
    loaded = PromptClassifier.load(clf.save(tmp_path / "saved"))
    np.testing.assert_allclose(loaded.predict_proba(TEXTS), expected, atol=1e-6, rtol=0)
    got = OnnxPredictor(loaded.export(tmp_path / "bundle")).predict_proba(TEXTS)
    np.testing.assert_allclose(got, expected, atol=1e-4, rtol=0)
    return expected


@pytest.mark.parametrize("verbalizer, template", [
    ("manual", ONE_MASK),
    ({"kind": "paddlenlp", "token_aggregate_type": "max", "word_aggregate_type": "max",
      "mask_aggregate_type": "mean"}, ONE_MASK + "{'mask'}"),
    ("paddlenlp:post_log_softmax=false,word_aggregate_type=first", ONE_MASK),
    ("maskedlm:mask_aggregate_type=mean", ONE_MASK + "{'mask'}"),
    ("soft", ONE_MASK),
    ("efl", ONE_MASK),
])
def test_each_kind_trains_saves_loads_and_exports(tiny_model_dir, separable_task, tmp_path, verbalizer, template):
    train, _, _ = separable_task
    clf = PromptClassifier(tiny_model_dir, labels=WORDS, template=template, verbalizer=verbalizer,
                           max_seq_length=32, seed=0)
    rows = [type(e)(e.text_a, label=label) for e, label in zip(train[:6], ["sports", "finance", "weather"] * 2)]
    clf.fit(rows, max_steps=2, learning_rate=1e-3, seed=0, disable_tqdm=True, report_to=[],
            evaluation_strategy="no", logging_steps=1000)
    probs = _round_trip(clf, tmp_path)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    saved = PromptClassifier.load(tmp_path / "saved")
    assert saved.config()["verbalizer"] == clf.config()["verbalizer"]


def test_multi_label_with_paddlenlp_verbalizer_exports(tiny_model_dir, tmp_path):
    clf = PromptClassifier(tiny_model_dir, labels=WORDS, template=ONE_MASK, verbalizer="paddlenlp",
                           multi_label=True, max_seq_length=32, seed=0)
    probs = _round_trip(clf, tmp_path)
    assert probs.shape == (len(TEXTS), 3) and not np.allclose(probs.sum(axis=1), 1.0)


def test_zeroshot_refuses_a_kind_that_needs_training(tiny_model_dir):
    message = "needs verbalizer='manual' or another kind that predicts untrained \\(manual, paddlenlp, maskedlm\\); a soft"
    with pytest.raises(ValueError, match=message):
        PromptClassifier(tiny_model_dir, labels=WORDS, template=ONE_MASK, verbalizer="soft", method="zeroshot")


def test_train_cli_takes_verbalizer_options(tiny_model_dir, tmp_path, capsys):
    from fewshot.cli.train import build_parser

    args = build_parser().parse_args(["--train", "t.txt", "--labels", "l.txt", "--model", "m", "--output", "o",
                                      "--verbalizer", "paddlenlp:mask_aggregate_type=mean"])
    assert args.verbalizer == {"kind": "paddlenlp", "mask_aggregate_type": "mean"}
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--train", "t.txt", "--labels", "l.txt", "--model", "m", "--output", "o",
                                   "--verbalizer", "paddlenlp:token_aggregate_type=median"])
    assert "option 'token_aggregate_type' must be one of mean, max, first, got 'median'" in capsys.readouterr().err


def test_efl_head_reads_cls_and_ignores_label_words(tiny_model_dir):
    """EFL: the [CLS] state through a linear head; the mask's state and the label words play no part."""
    import paddle

    clf = PromptClassifier(tiny_model_dir, labels=WORDS, template=ONE_MASK, verbalizer="efl", max_seq_length=32,
                           seed=0)
    other = PromptClassifier(tiny_model_dir, labels={label: ["球"] for label in WORDS}, template=ONE_MASK,
                             verbalizer="efl", max_seq_length=32, seed=0)
    head = clf.model.verbalizer
    encoder = clf.model.encoder
    rows = [clf.template.encode(text) for text in TEXTS[:2]]
    with paddle.no_grad():
        for text, row in zip(TEXTS, rows):
            ids = paddle.to_tensor([row["input_ids"]])
            cls = encoder(ids, token_type_ids=paddle.to_tensor([row["token_type_ids"]]),
                          position_ids=paddle.to_tensor([row["position_ids"]]))[0][:, 0]
            expected = paddle.nn.functional.softmax(head.classifier(cls), axis=-1).numpy()
            np.testing.assert_allclose(clf.predict_proba([text]), expected, atol=1e-5)
    np.testing.assert_allclose(other.predict_proba(TEXTS), clf.predict_proba(TEXTS), atol=1e-6)
    assert [list(p.shape) for p in clf.model.prompt_parameters()] == [[32, 3], [3]]
