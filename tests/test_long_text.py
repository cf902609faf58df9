"""Long texts: windows cover every character, pooling, a tail keyword reaches the prediction, bundle = Paddle."""

import json

import numpy as np
import pytest

from fewshot.classifier import PromptClassifier
from fewshot.cli.predict import main as predict_main
from fewshot.data import Example
from fewshot.errors import BundleError, FewshotError, TemplateError
from fewshot.runtime import OnnxPredictor
from fewshot.runtime.manifest import MANIFEST_NAME, read_manifest
from fewshot.tasks.pooling import logits_of, pool_windows, temper
from fewshot.tasks.base import softmax
from fewshot.template import LongText, TemplateEncoder, window_starts

TEMPLATE = "{'text': 'text_a'}这句话的类别是{'mask'}{'mask'}"
FAST = dict(disable_tqdm=True, logging_steps=1000, evaluation_strategy="no", report_to=[])
CUES = {"sports": "球赛跑", "finance": "股价钱", "weather": "雨雪风"}


def _char_encoder(max_seq_length=12, parts=None):
    """A Paddle-free encoder whose tokens are the characters' code points (one token per character)."""
    parts = parts or [{"kind": "text", "slot": "text_a"}, {"kind": "hard", "ids": [7, 8]}, {"kind": "mask", "ids": [3, 3]}]
    return TemplateEncoder(parts, 1, 2, 0, max_seq_length, lambda texts: [[ord(c) for c in t] for t in texts])


@pytest.mark.parametrize("length,size,overlap", [(1, 4, 1), (4, 4, 1), (5, 4, 1), (10, 4, 1), (11, 4, 0), (97, 9, 8)])
def test_window_starts_cover_every_token_and_end_at_the_last(length, size, overlap):
    starts = window_starts(length, size, overlap)
    covered = set()
    for start in starts:
        covered.update(range(start, min(start + size, length)))
    assert covered == set(range(length))
    assert starts[0] == 0 and min(starts[-1] + size, length) == length
    assert all(b - a <= size - overlap for a, b in zip(starts, starts[1:]))


def test_windows_hold_every_character_of_a_long_text_in_order():
    encoder = _char_encoder()
    text = "".join(chr(0x4E00 + i) for i in range(40))
    (windows,) = encoder.encode_texts([(text, None)], LongText(overlap=2))
    budget = encoder.text_budget
    pieces = ["".join(chr(i) for i in row["input_ids"][1 : 1 + budget]) for row in windows]
    assert all(len(piece) == budget for piece in pieces)
    assert set("".join(pieces)) == set(text)
    position = 0
    for piece in pieces:
        start = text.index(piece)
        assert start <= position
        position = start + len(piece)
    assert position == len(text)
    for row in windows:
        assert row["masked_positions"] == [1 + budget + 2, 1 + budget + 3]


def test_a_text_that_fits_is_one_window_exactly_as_without_long_text():
    encoder = _char_encoder()
    (windows,) = encoder.encode_texts([("短文", None)], LongText())
    assert windows == encoder.encode_batch([("短文", None)])


def test_pair_windows_keep_text_b_in_every_window():
    parts = [{"kind": "text", "slot": "text_a"}, {"kind": "sep", "ids": [2]}, {"kind": "text", "slot": "text_b"},
             {"kind": "mask", "ids": [3]}]
    encoder = _char_encoder(16, parts)
    (windows,) = encoder.encode_texts([("甲" * 30, "乙乙乙")], LongText())
    assert len(windows) > 1
    for row in windows:
        assert len(row["input_ids"]) <= 16
        assert row["input_ids"].count(ord("乙")) == 3


def test_long_text_refuses_a_template_whose_text_a_is_not_truncatable():
    parts = [{"kind": "text", "slot": "text_a", "truncate": False}, {"kind": "mask", "ids": [3]}]
    with pytest.raises(TemplateError, match="exactly one"):
        _char_encoder(parts=parts).encode_texts([("a", None)], LongText())


def test_long_text_options_are_checked():
    assert LongText.from_config("max") == LongText(pooling="max")
    assert LongText.from_config(True) == LongText() and LongText.from_config(None) is None
    with pytest.raises(FewshotError, match="pooling must be one of"):
        LongText.from_config("median")
    with pytest.raises(BundleError, match="here: .*unknown key"):
        LongText.from_config({"stride": 3}, "here", BundleError)
    with pytest.raises(FewshotError, match="overlap"):
        LongText(overlap=-1)


def test_pooling_of_softmax_windows():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(5, 3))
    probs = softmax(logits)
    pooled = pool_windows("softmax", probs, [3, 1, 1], "logprob_mean")
    np.testing.assert_allclose(pooled[0], softmax(logits[:3].mean(axis=0, keepdims=True))[0], atol=1e-6)
    np.testing.assert_array_equal(pooled[1:], probs[3:])
    top = pool_windows("softmax", probs, [3, 2], "max")
    np.testing.assert_allclose(top[0], probs[:3].max(axis=0) / probs[:3].max(axis=0).sum(), atol=1e-6)
    mean = pool_windows("softmax", probs, [5], "prob_mean")
    np.testing.assert_allclose(mean[0], probs.mean(axis=0), atol=1e-6)
    with pytest.raises(FewshotError, match="sum to 4 for 5 rows"):
        pool_windows("softmax", probs, [3, 1], "max")


def test_pooling_of_sigmoid_windows_and_temperature():
    probs = np.array([[0.9, 0.2], [0.5, 0.6]], dtype="float32")
    pooled = pool_windows("sigmoid", probs, [2], "logprob_mean")[0]
    expected = 1 / (1 + np.exp(-logits_of("sigmoid", probs).mean(axis=0)))
    np.testing.assert_allclose(pooled, expected, atol=1e-6)
    np.testing.assert_allclose(pool_windows("sigmoid", probs, [2], "max")[0], [0.9, 0.6], atol=1e-6)
    np.testing.assert_allclose(temper("softmax", np.array([[0.9, 0.1]]), 2.0), [[0.75, 0.25]], atol=1e-6)


@pytest.fixture(scope="module")
def cue_classifiers(tiny_model_dir, separable_task):
    """A classifier trained on the synthetic task with long_text, and the same weights without it."""
    train, _, words = separable_task
    on = PromptClassifier(tiny_model_dir, labels=words, template=TEMPLATE, max_seq_length=32, seed=0, long_text=True)
    on.fit(train, max_steps=100, learning_rate=5e-3, per_device_train_batch_size=8, seed=0, **FAST)
    off = PromptClassifier.from_task(tiny_model_dir, on.task, on.label_words, template=TEMPLATE, max_seq_length=32,
                                     plm=on.model.plm, tokenizer=on.tokenizer)
    off.model = on.model
    return on, off


def _neutral(separable_task, count):
    train, test, _ = separable_task
    cues = set("".join(CUES.values()))
    chars = sorted({c for e in train + test for c in e.text_a} - cues)
    return "".join(chars[i % len(chars)] for i in range(count))


def test_a_keyword_only_in_the_tail_changes_the_prediction_with_long_text_only(cue_classifiers, separable_task):
    on, off = cue_classifiers
    head = _neutral(separable_task, on.template.encoder.text_budget)  # exactly what truncation keeps
    truncated = off.predict(head)[0]
    others = [label for label in CUES if label != truncated]
    texts = [head + CUES[label] * 7 for label in others]
    assert off.predict(texts) == [truncated] * len(others)
    assert on.predict(texts) == others
    short = "球赛"
    np.testing.assert_array_equal(on.predict_proba(short), off.predict_proba(short))


def test_training_rows_keep_the_tail_of_a_long_text(cue_classifiers, separable_task):
    on, _ = cue_classifiers
    text = _neutral(separable_task, 50) + "雨雪风"
    rows = on.encode([Example(text, label="weather")], with_labels=True)
    assert len(rows) > 1 and all(row["labels"] == on.task.target("weather") for row in rows)
    tail = on.tokenizer.convert_tokens_to_ids(list("雨雪风"))
    last = rows[-1]["input_ids"]
    end = len(last) - len("这句话的类别是") - 2 - 1  # the text ends before the prompt, the masks and [SEP]
    assert last[end - 3 : end] == tail


def test_long_text_round_trips_through_save_load(cue_classifiers, separable_task, tmp_path):
    on, _ = cue_classifiers
    on.save(tmp_path / "clf")
    again = PromptClassifier.load(tmp_path / "clf")
    assert again.long_text == on.long_text
    text = _neutral(separable_task, 45) + "股价钱"
    np.testing.assert_array_equal(again.predict_proba(text), on.predict_proba(text))


def test_bundle_runtime_gives_the_classifiers_long_text_probabilities(cue_classifiers, separable_task, tmp_path):
    on, _ = cue_classifiers
    bundle = on.export(tmp_path / "bundle")
    manifest = read_manifest(bundle)
    assert manifest["long_text"] == {"pooling": "logprob_mean", "overlap": None, "training": "pooled"}
    assert manifest["format_version"] == 2
    texts = [_neutral(separable_task, n) + CUES[label] for n in (10, 45, 90) for label in CUES]
    predictor = OnnxPredictor(bundle, batch_size=3)
    np.testing.assert_allclose(predictor.predict_proba(texts), on.predict_proba(texts), atol=1e-5, rtol=0)
    assert predictor.predict(texts) == on.predict(texts)

    data = tmp_path / "data.txt"
    data.write_text("\n".join(texts) + "\n", encoding="utf-8")
    assert predict_main(["--bundle", str(bundle), "--input", str(data), "--output", str(tmp_path / "p.jsonl"),
                         "--no-progress"]) == 0
    lines = [json.loads(line) for line in (tmp_path / "p.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [line["label"] for line in lines] == on.predict(texts)

    manifest["long_text"] = {"pooling": "median"}
    (bundle / MANIFEST_NAME).write_text(json.dumps(manifest), encoding="utf-8")
    with pytest.raises(BundleError, match="long_text.*pooling must be one of"):
        OnnxPredictor(bundle)


def test_fewshot_train_long_text_saves_the_strategy(tiny_model_dir, separable_task, tmp_path, capsys):
    from fewshot.cli.train import main as train_main

    train, _, words = separable_task
    (tmp_path / "label.txt").write_text("".join(f"{k}=={v[0]}\n" for k, v in words.items()), encoding="utf-8")
    (tmp_path / "train.txt").write_text("".join(f"{e.text_a * 6}\t{e.label}\n" for e in train), encoding="utf-8")
    common = ["--train", str(tmp_path / "train.txt"), "--labels", str(tmp_path / "label.txt"), "--model",
              tiny_model_dir, "--template", TEMPLATE, "--max-steps", "2", "--max-seq-length", "32"]
    assert train_main([*common, "--output", str(tmp_path / "out"), "--long-text", "max", "--window-overlap", "4"]) == 0
    assert PromptClassifier.load(tmp_path / "out").long_text == LongText(pooling="max", overlap=4)
    with pytest.raises(SystemExit):
        train_main([*common, "--output", str(tmp_path / "x"), "--window-overlap", "4"])
    assert "--window-overlap applies to --long-text only" in capsys.readouterr().err


def test_pooled_training_scores_a_text_by_its_windows_mean_log_probabilities(cue_classifiers, separable_task):
    import paddle

    from fewshot.training.arguments import PromptTrainingArguments
    from fewshot.training.trainer import PromptTrainer, make_collator

    on, _ = cue_classifiers
    examples = [Example(_neutral(separable_task, 45) + "雨雪风", label="weather"), Example("球赛", label="sports")]
    items = on._training_items(examples, [on.task.target(e.label) for e in examples])
    assert [len(item["windows"]) for item in items] == [3, 1]
    batch = make_collator(on.tokenizer.pad_token_id)(items)
    np.testing.assert_allclose(batch["window_weights"], [[1 / 3] * 3 + [0], [0, 0, 0, 1]], atol=1e-7)
    assert batch["labels"].tolist() == [2, 0]
    trainer = PromptTrainer(model=on.model, args=PromptTrainingArguments(output_dir="/tmp/unused"), task=on.task)
    on.model.eval()
    tensors = {k: paddle.to_tensor(v) for k, v in batch.items()}
    loss = float(trainer.compute_loss(on.model, tensors))
    logits = on._logits([w for item in items for w in item["windows"]], 8).astype("float64")
    logp = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    pooled = np.stack([logp[:3].mean(axis=0), logp[3]])
    pooled -= np.log(np.exp(pooled).sum(axis=1, keepdims=True))
    assert loss == pytest.approx(-(pooled[0, 2] + pooled[1, 0]) / 2, rel=1e-5)


def test_window_training_gives_every_window_the_label(tiny_model_dir, separable_task):
    train, _, words = separable_task
    clf = PromptClassifier(tiny_model_dir, labels=words, template=TEMPLATE, max_seq_length=32, seed=0,
                           long_text={"training": "windows"})
    text = _neutral(separable_task, 45) + "雨雪风"
    items = clf._training_items([Example(text, label="weather")], [2])
    assert len(items) == 3 and all(item["labels"] == 2 and "windows" not in item for item in items)
    clf.fit([(text, "weather"), *[(e.text_a, e.label) for e in train]], max_steps=2, seed=0, **FAST)


def test_pooled_training_runs_with_rdrop_and_rgl(tiny_model_dir, separable_task):
    train, _, words = separable_task
    clf = PromptClassifier(tiny_model_dir, labels=words, template=TEMPLATE, max_seq_length=32, seed=0, long_text=True)
    rows = [(_neutral(separable_task, 40) + e.text_a, e.label) for e in train[:8]]
    metrics = clf.fit(rows, eval_data=rows, max_steps=3, per_device_train_batch_size=4, use_rdrop=True, use_rgl=True,
                      seed=0, **FAST)
    assert np.isfinite(metrics["train_loss"]) and 0 <= metrics["eval_accuracy"] <= 1


@pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`")
def test_serve_and_ray_answer_long_texts_with_the_bundles_pooled_probabilities(cue_classifiers, separable_task, tmp_path):
    pytest.importorskip("starlette")
    from starlette.testclient import TestClient

    from fewshot.integrations.ray import BundleClassifier
    from fewshot.runtime.serve import ServeSettings, create_app

    on, _ = cue_classifiers
    predictor = OnnxPredictor(on.export(tmp_path / "bundle"), batch_size=4)
    texts = [_neutral(separable_task, n) + CUES[label] for n in (5, 60) for label in CUES]
    expected = predictor.predict_proba(texts)
    assert len(predictor.encode(texts)) > len(texts)  # the long ones are several windows
    with TestClient(create_app(predictor, ServeSettings(max_wait_ms=0))) as client:
        answer = client.post("/v1/predict", json={"texts": texts, "probabilities": True})
    assert answer.status_code == 200
    served = [[p["probabilities"][label] for label in predictor.labels] for p in answer.json()["predictions"]]
    np.testing.assert_allclose(served, expected, atol=1e-6, rtol=0)
    windows = len(predictor.encode(texts))
    with TestClient(create_app(predictor, ServeSettings(max_wait_ms=0, max_texts=len(texts), max_queue=windows - 1))) as client:
        refused = client.post("/v1/predict", json={"texts": texts})
    assert refused.status_code == 413 and refused.json()["limit"] == "max_queue"
    assert f"are {windows} windows, more than the queue holds ({windows - 1})" in refused.json()["error"]
    records = BundleClassifier(predictor.bundle_dir, fields={"text_a": "sentence"}).classify(
        [{"sentence": text} for text in texts])
    assert [r["label"] for r in records] == predictor.predict(texts)
    np.testing.assert_allclose([r["score"] for r in records], expected.max(axis=1), atol=1e-6, rtol=0)


def test_temperature_with_long_text_scales_the_pooled_logits(cue_classifiers, separable_task):
    on, _ = cue_classifiers
    texts = [_neutral(separable_task, n) + CUES[label] for n in (5, 60) for label in CUES]
    logits = on.logits(texts)
    np.testing.assert_allclose(on.predict_proba(texts), softmax(logits), atol=1e-5, rtol=0)
    dev = [Example(text, label=label) for text, label in zip(texts, list(CUES) * 2)]
    temperature = on.fit_temperature(dev)
    try:
        assert temperature != 1.0
        np.testing.assert_allclose(on.predict_proba(texts), softmax(logits / temperature), atol=1e-5, rtol=0)
        assert on.predict(texts) == [on.labels[i] for i in logits.argmax(axis=1)]
    finally:
        on.task.set_temperature(1.0)
