"""``method="prompt"|"finetune"|"zeroshot"`` and zero-shot calibration, on a tiny model."""

import numpy as np
import paddle
import pytest

from fewshot.classifier import PromptClassifier, text_only_template
from fewshot.cli.train import main as train_main
from fewshot.prompt.model import ClsHeadModel, PromptModel
from fewshot.template import Template, pad_batch

TEMPLATE = "{'text': 'text_a'}这句话的类别是{'mask'}{'mask'}"
FAST = dict(disable_tqdm=True, logging_steps=1000, evaluation_strategy="no", report_to=[])


def _clf(model_dir, words, **kwargs):
    kwargs.setdefault("template", TEMPLATE)
    return PromptClassifier(model_dir, labels=words, max_seq_length=32, seed=0, **kwargs)


def _texts(examples):
    return [e.text_a for e in examples]


@pytest.mark.parametrize(
    "template, expected",
    [
        (TEMPLATE, "{'text': 'text_a'}"),
        ("{'soft'}{'text': 'text_a'}问{'sep'}{'text': 'text_b', 'truncate': False}{'mask'}",
         "{'text': 'text_a'}{'sep'}{'text': 'text_b', 'truncate': False}"),
    ],
)
def test_text_only_template_keeps_text_slots_joined_by_sep(template, expected):
    assert text_only_template(template) == expected


def test_zero_mask_template_encodes_and_pads_without_masked_positions(tiny_tokenizer):
    template = Template("{'text': 'text_a'}", tiny_tokenizer, 16)
    rows = [template.encode("球赛"), template.encode("天气雨")]
    assert template.num_masks == 0 and rows[0]["masked_positions"] == []
    batch = pad_batch(rows, tiny_tokenizer.pad_token_id)
    assert "masked_positions" not in batch
    assert batch["input_ids"].shape == (2, 5)


def test_finetune_learns_and_round_trips(tiny_model_dir, separable_task, tmp_path):
    train, test, words = separable_task
    clf = _clf(tiny_model_dir, words, method="finetune")
    assert isinstance(clf.model, ClsHeadModel)
    assert clf.template.text == "{'text': 'text_a'}" and clf.template.num_masks == 0
    head_ids = {id(p) for p in clf.model.prompt_parameters()}
    assert head_ids == {id(p) for p in clf.model.classifier.parameters()}
    clf.fit(train, max_steps=60, learning_rate=5e-3, ppt_learning_rate=1e-2, seed=0, **FAST)
    assert clf.evaluate(test)["accuracy"] >= 0.9

    clf.save(tmp_path / "ft")
    again = PromptClassifier.load(tmp_path / "ft")
    assert again.method == "finetune" and isinstance(again.model, ClsHeadModel)
    np.testing.assert_array_equal(again.predict_proba(_texts(test)), clf.predict_proba(_texts(test)))


def test_finetune_returns_cls_hidden_for_rgl(tiny_model_dir, separable_task):
    train, _, words = separable_task
    clf = _clf(tiny_model_dir, words, method="finetune")
    batch = {k: paddle.to_tensor(v) for k, v in pad_batch(clf.encode(train[:4]), 0).items()}
    logits, hidden = clf.model(**batch, return_hidden=True)
    assert logits.shape == [4, 3] and hidden.shape == [4, 32]


def test_zeroshot_fit_trains_nothing_and_reports_eval(tiny_model_dir, separable_task):
    train, test, words = separable_task
    clf = _clf(tiny_model_dir, words, method="zeroshot")
    before = {k: v.numpy().copy() for k, v in clf.model.state_dict().items()}
    metrics = clf.fit(train, eval_data=test)
    assert metrics["train_steps"] == 0
    assert metrics["eval_accuracy"] == clf.evaluate(test)["accuracy"]
    for name, value in clf.model.state_dict().items():
        np.testing.assert_array_equal(value.numpy(), before[name], err_msg=name)


def test_calibration_subtracts_the_estimated_log_prior(tiny_model_dir, separable_task, tmp_path):
    train, test, words = separable_task
    raw = _clf(tiny_model_dir, words, method="zeroshot")
    cal = _clf(tiny_model_dir, words, method="zeroshot", calibrate=True)
    assert isinstance(cal.model, PromptModel) and cal.model.calibrated
    cal.fit(train)
    prior = cal.estimate_prior(_texts(train))
    assert prior.shape == (3,) and prior.sum() == pytest.approx(1.0, abs=1e-5)
    rows = raw.encode(test)
    raw_logits, cal_logits = raw._logits(rows, 16), cal._logits(rows, 16)
    np.testing.assert_allclose(cal_logits, raw_logits - np.log(prior), rtol=1e-5, atol=1e-5)
    # Calibrated on the texts it is scored on, the mean prediction is far flatter than the raw one.
    raw_mean = raw.predict_proba(_texts(train)).mean(axis=0)
    cal_mean = cal.predict_proba(_texts(train)).mean(axis=0)
    assert np.abs(cal_mean - 1 / 3).max() < np.abs(raw_mean - 1 / 3).max()

    cal.save(tmp_path / "zs")
    again = PromptClassifier.load(tmp_path / "zs")
    assert again.calibrate and again.method == "zeroshot"
    np.testing.assert_allclose(again._logits(rows, 16), cal_logits, rtol=1e-6)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(method="distill"), "method must be one of prompt, finetune, zeroshot"),
        (dict(method="prompt", calibrate=True), "calibrate=True applies to method='zeroshot' only"),
        (dict(method="zeroshot", verbalizer="soft"), "needs verbalizer='manual'"),
    ],
)
def test_bad_method_options_are_rejected(tiny_model_dir, separable_task, kwargs, message):
    _, _, words = separable_task
    with pytest.raises(ValueError, match=message):
        _clf(tiny_model_dir, words, **kwargs)


def _write_task(tmp_path, train, words):
    data = tmp_path / "train.txt"
    data.write_text("".join(f"{e.text_a}\t{e.label}\n" for e in train), encoding="utf-8")
    labels = tmp_path / "label.txt"
    labels.write_text("".join(f"{label}=={ws[0]}\n" for label, ws in words.items()), encoding="utf-8")
    return data, labels


@pytest.mark.parametrize("method, model_type", [("finetune", ClsHeadModel), ("zeroshot", PromptModel)])
def test_cli_method_option(tiny_model_dir, separable_task, tmp_path, method, model_type):
    train, _, words = separable_task
    data, labels = _write_task(tmp_path, train, words)
    out = tmp_path / method
    argv = ["--train", str(data), "--dev", str(data), "--labels", str(labels), "--model", tiny_model_dir,
            "--template", TEMPLATE, "--output", str(out), "--max-steps", "2", "--max-seq-length", "32",
            "--method", method]
    assert train_main(argv + (["--calibrate"] if method == "zeroshot" else [])) == 0
    loaded = PromptClassifier.load(out)
    assert loaded.method == method and isinstance(loaded.model, model_type)


def test_cli_rejects_calibrate_without_zeroshot(tmp_path, capsys):
    argv = ["--train", "t.txt", "--labels", "l.txt", "--model", "m", "--output", str(tmp_path), "--calibrate"]
    with pytest.raises(SystemExit) as exc:
        train_main(argv)
    assert exc.value.code == 2
    assert "--calibrate applies to --method zeroshot only" in capsys.readouterr().err


def test_calibrated_zeroshot_with_a_pair_template_estimates_its_prior_from_pairs(tiny_model_dir, separable_task):
    train, _, words = separable_task
    pairs = [(e.text_a, e.text_a[::-1], e.label) for e in train]
    clf = _clf(tiny_model_dir, words, method="zeroshot", calibrate=True,
               template="{'text': 'text_a'}{'mask'}{'mask'}{'text': 'text_b'}")
    metrics = clf.fit(pairs)
    assert metrics["calibration_texts"] == len(pairs)
    prior = clf.estimate_prior([(a, b) for a, b, _ in pairs])
    assert prior.shape == (len(words),) and np.isclose(prior.sum(), 1, atol=1e-5)
    assert len(clf.predict([(pairs[0][0], pairs[0][1])])) == 1
