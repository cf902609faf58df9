"""PaddleNLP's template keywords end to end: encoded, trained, saved, exported and predicted alike."""

import json

import numpy as np
import pytest

from fewshot.classifier import PromptClassifier
from fewshot.cli.export import main as export_main
from fewshot.cli.predict import main as predict_main
from fewshot.cli.train import main as train_main
from fewshot.inference import OnnxPredictor
from fewshot.tasks import task_from_config
from fewshot.template import PADDLENLP, Template

KEYWORDS = ("{'soft': '主题', 'length': 3, 'soft_id': 1}{'text': 'text_a', 'position': 0}"
            "{'hard': '这句话的类别是', 'token_type': 1}{'soft_id': 1}{'mask'}{'mask'}")


def test_keywords_encode_as_documented(tiny_tokenizer):
    template = Template(KEYWORDS, tiny_tokenizer, 32)
    row = template.encode("球赛")
    assert template.num_soft_tokens == 3
    assert row["soft_token_ids"] == [0, 1, 2, 3, 0, 0] + [0] * 7 + [1, 2, 3, 0, 0, 0]
    assert row["position_ids"] == [0, 1, 2, 3, 0, 1] + list(range(2, 14)) + [14]
    assert row["token_type_ids"] == [0] * 6 + [1] * 13
    ids = tiny_tokenizer.convert_tokens_to_ids(["主", "题", "[UNK]"])
    assert row["input_ids"][1:4] == ids and row["input_ids"][13:16] == ids
    assert row["masked_positions"] == [16, 17]


def test_shared_soft_tokens_are_one_set_of_bundle_rows(tiny_tokenizer):
    parts = Template(KEYWORDS, tiny_tokenizer, 32).describe(soft_token_start=100)["parts"]
    soft = [part["ids"] for part in parts if part["kind"] == "soft"]
    assert soft == [[100, 101, 102], [100, 101, 102]]


def test_train_export_predict_round_trip_with_keywords(tiny_model_dir, separable_task, tmp_path, capsys):
    train, test, words = separable_task
    (tmp_path / "label.txt").write_text("".join(f"{k}=={v[0]}\n" for k, v in words.items()), encoding="utf-8")
    (tmp_path / "train.txt").write_text("".join(f"{e.text_a}\t{e.label}\n" for e in train), encoding="utf-8")
    texts = [e.text_a for e in test[:6]] + ["球赛" * 30]
    (tmp_path / "data.txt").write_text("".join(t + "\n" for t in texts), encoding="utf-8")
    code = train_main(["--train", str(tmp_path / "train.txt"), "--labels", str(tmp_path / "label.txt"),
                       "--model", tiny_model_dir, "--output", str(tmp_path / "clf"), "--template", KEYWORDS,
                       "--max-steps", "3", "--batch-size", "8", "--max-seq-length", "32"])
    assert code == 0, capsys.readouterr().err
    assert export_main(["--checkpoint", str(tmp_path / "clf"), "--output", str(tmp_path / "bundle")]) == 0
    assert predict_main(["--bundle", str(tmp_path / "bundle"), "--input", str(tmp_path / "data.txt"),
                         "--output", str(tmp_path / "pred.jsonl"), "--no-progress"]) == 0
    clf = PromptClassifier.load(tmp_path / "clf")
    lines = [json.loads(line) for line in (tmp_path / "pred.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [line["label"] for line in lines] == clf.predict(texts)
    np.testing.assert_allclose(OnnxPredictor(tmp_path / "bundle").predict_proba(texts), clf.predict_proba(texts),
                               atol=1e-4, rtol=0)


def test_paddlenlp_style_is_saved_and_exported(tiny_model_dir, separable_task, tmp_path):
    _, test, words = separable_task
    template = "{'text': 'text_a'}{'sep'}这句话的类别是{'mask'}{'mask'}"
    task = task_from_config(list(words), {"task": "multi_class"})
    clf = PromptClassifier.from_task(tiny_model_dir, task, words, template=template, max_seq_length=32,
                                     template_style="paddlenlp")
    assert clf.template.style is PADDLENLP
    texts = [e.text_a for e in test[:4]]
    clf.save(tmp_path / "clf")
    loaded = PromptClassifier.load(tmp_path / "clf")
    assert loaded.template.style is PADDLENLP
    row = loaded.template.encode(texts[0])
    assert row["token_type_ids"][-1] == 0 and row["position_ids"][-1] == 0 and set(row["token_type_ids"]) == {0}
    predictor = OnnxPredictor(loaded.export(tmp_path / "bundle"))
    assert predictor.encoder.style is PADDLENLP
    np.testing.assert_allclose(predictor.predict_proba(texts), clf.predict_proba(texts), atol=1e-4, rtol=0)


def test_unknown_template_style_is_refused(tiny_model_dir, separable_task):
    from fewshot.errors import TemplateError

    words = separable_task[2]
    task = task_from_config(list(words), {"task": "multi_class"})
    with pytest.raises(TemplateError, match="encoding style must be one of fewshot, paddlenlp, got 'hf'"):
        PromptClassifier.from_task(tiny_model_dir, task, words, template_style="hf")


def test_json_keys_named_by_the_template_train_and_predict(tiny_model_dir, separable_task, tmp_path, capsys):
    train, test, words = separable_task
    template = "{'text': 'content'}这句话的类别是{'mask'}{'mask'}"
    (tmp_path / "label.txt").write_text("".join(f"{k}=={v[0]}\n" for k, v in words.items()), encoding="utf-8")
    rows = [json.dumps({"content": e.text_a, "label_desc": e.label}, ensure_ascii=False) for e in train]
    (tmp_path / "train.json").write_text("\n".join(rows) + "\n", encoding="utf-8")
    texts = [e.text_a for e in test[:4]]
    (tmp_path / "data.json").write_text("".join(json.dumps({"content": t}, ensure_ascii=False) + "\n" for t in texts),
                                        encoding="utf-8")
    assert train_main(["--train", str(tmp_path / "train.json"), "--labels", str(tmp_path / "label.txt"),
                       "--model", tiny_model_dir, "--output", str(tmp_path / "clf"), "--template", template,
                       "--max-steps", "1", "--max-seq-length", "32"]) == 0, capsys.readouterr().err
    clf = PromptClassifier.load(tmp_path / "clf")
    assert export_main(["--checkpoint", str(tmp_path / "clf"), "--output", str(tmp_path / "bundle")]) == 0
    assert predict_main(["--bundle", str(tmp_path / "bundle"), "--input", str(tmp_path / "data.json"),
                         "--output", str(tmp_path / "pred.jsonl"), "--no-progress"]) == 0
    lines = [json.loads(line) for line in (tmp_path / "pred.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [line["label"] for line in lines] == clf.predict(texts)


def test_square_attention_mask_in_the_partial_last_layer(tiny_model_dir):
    import paddle
    from paddlenlp.transformers import AutoModelForMaskedLM

    from fewshot.prompt.partial_encoder import additive_attention_mask, encode_at_positions, gather_positions

    ernie = AutoModelForMaskedLM.from_pretrained(tiny_model_dir).base_model
    ernie.eval()
    rng = np.random.default_rng(0)
    ids = paddle.to_tensor(rng.integers(5, 40, size=(2, 8)).astype("int64"))
    square = np.ones((2, 8, 8), dtype="int64")
    square[:, 2:4, 4:6] = square[:, 4:6, 2:4] = 0  # two options hidden from each other
    square[1, :, 7] = 0  # padding
    square = paddle.to_tensor(square)
    positions = paddle.to_tensor(np.array([[3, 5], [1, 4]], dtype="int64"))
    got = encode_at_positions(ernie, positions, square, input_ids=ids).numpy()
    full = gather_positions(ernie(ids, attention_mask=additive_attention_mask(square))[0], positions).numpy()
    np.testing.assert_allclose(got, full, atol=1e-5, rtol=0)
    plain = encode_at_positions(ernie, positions, paddle.ones([2, 8], dtype="int64"), input_ids=ids).numpy()
    assert np.abs(got - plain).max() > 1e-3  # the hidden options change what the masks read


def test_options_template_trains_and_exports(separable_task, tmp_path):
    from fewshot.testing import build_tiny_model

    train, test, words = separable_task
    texts = ["这句话的类别是体育财经天气"] + [e.text_a for e in train + test]
    model = build_tiny_model(tmp_path / "plm", texts, seed=0, extra_tokens=["[O-MASK]"])
    options = repr([v[0] for v in words.values()])
    template = f"{{'text': 'text_a'}}{{'options': {options}, 'add_omask': True}}这句话的类别是{{'mask'}}{{'mask'}}"
    clf = PromptClassifier(model, labels=words, template=template, max_seq_length=40, seed=0)
    assert clf.template.encoder.square_mask
    clf.fit(train[:16], max_steps=2, learning_rate=5e-3, seed=0, disable_tqdm=True, report_to=[], evaluation_strategy="no")
    batch = [e.text_a for e in test[:5]] + ["球赛" * 30]
    predictor = OnnxPredictor(clf.export(tmp_path / "bundle"))
    manifest = json.loads((tmp_path / "bundle" / "fewshot.json").read_text(encoding="utf-8"))
    assert manifest["inputs"][3]["shape"] == ["batch", "sequence", "sequence"]
    np.testing.assert_allclose(predictor.predict_proba(batch), clf.predict_proba(batch), atol=1e-4, rtol=0)


PADDLENLP_TEMPLATES = [  # written from paddlenlp.prompt's docs and tests; every one was refused before
    "这条新闻标题的主题是",
    "{'text': 'text_a'}{'hard': '这句话的情感是'}{'mask'}",
    "{'soft': '请判断这句话的主题', 'length': 10}{'text': 'text_a'}{'mask'}",
    "{'soft': None, 'length': 2, 'soft_id': 1}{'text': 'text_a'}{'soft_id': 1}{'mask'}",
    "{'text': 'text_a'}{'sep'}{'text': 'text_b', 'token_type': 1}{'mask'}",
    "{'text': 'sentence'}这句话的主题是{'mask'}",
    "{'text': 'text_a', 'position': 0}{'hard': '主题', 'position': 0}{'mask'}",
    "{'text': 'text_a', 'truncate': True}{'hard': '这条新闻的主题是', 'truncate': False}{'mask'}",
    "{'text': 'text_a'} {'hard': '主题', 'add_space': True}{'mask'}",
    "{'text': 'text_a'}{'sep': None, 'token_type': 1}{'text': 'text_b'}{'mask': None, 'length': 2}",
]


@pytest.mark.parametrize("template", PADDLENLP_TEMPLATES)
def test_paddlenlp_templates_are_accepted(tiny_tokenizer, template):
    row = Template(template, tiny_tokenizer, 32).encode("球赛", "雨")
    assert row["masked_positions"] and len(row["input_ids"]) == len(row["position_ids"]) <= 32


def test_prefix_tuning_trains_saves_and_exports(tiny_model_dir, separable_task, tmp_path):
    train, test, words = separable_task
    template = "{'prefix': '主题', 'length': 3, 'hidden_size': 16}{'text': 'text_a'}这句话的类别是{'mask'}{'mask'}"
    clf = PromptClassifier(tiny_model_dir, labels=words, template=template, max_seq_length=32, seed=0)
    before = clf.model.prefix.embedding.numpy().copy()
    texts = [e.text_a for e in test[:5]] + ["球赛" * 30]
    untrained = clf.predict_proba(texts)
    clf.fit(train[:16], max_steps=3, learning_rate=5e-3, seed=0, disable_tqdm=True, report_to=[], evaluation_strategy="no")
    assert np.abs(clf.model.prefix.embedding.numpy() - before).max() > 0
    probs = clf.predict_proba(texts)
    assert np.abs(probs - untrained).max() > 1e-4
    clf.save(tmp_path / "clf")
    np.testing.assert_allclose(PromptClassifier.load(tmp_path / "clf").predict_proba(texts), probs, atol=1e-6, rtol=0)
    predictor = OnnxPredictor(clf.export(tmp_path / "bundle"))
    np.testing.assert_allclose(predictor.predict_proba(texts), probs, atol=1e-4, rtol=0)


def test_prefix_changes_what_the_masks_read(tiny_model_dir, separable_task):
    words = separable_task[2]
    template = "{'prefix': None, 'length': 2}{'text': 'text_a'}这句话的类别是{'mask'}{'mask'}"
    clf = PromptClassifier(tiny_model_dir, labels=words, template=template, max_seq_length=32, seed=0)
    clf.model.eval()
    probs = clf.predict_proba(["球赛"])
    clf.model.prefix.mlp[2].bias.set_value(clf.model.prefix.mlp[2].bias + 1.0)
    assert np.abs(clf.predict_proba(["球赛"]) - probs).max() > 1e-4


def test_unknown_saved_template_style_names_the_config(tiny_model_dir, separable_task, tmp_path):
    from fewshot.errors import BundleError

    clf = PromptClassifier(tiny_model_dir, labels=separable_task[2], max_seq_length=32)
    clf.save(tmp_path / "clf")
    config = json.loads((tmp_path / "clf" / "fewshot_config.json").read_text(encoding="utf-8"))
    assert config["template_style"] == "fewshot"
    config["template_style"] = "hf"
    (tmp_path / "clf" / "fewshot_config.json").write_text(json.dumps(config), encoding="utf-8")
    with pytest.raises(BundleError, match=r"fewshot_config.json: encoding style must be one of fewshot, paddlenlp, got 'hf'"):
        PromptClassifier.load(tmp_path / "clf")
