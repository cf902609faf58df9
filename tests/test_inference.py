"""OnnxPredictor and fewshot-predict: tokenisation and encoding equal to training, batching, files, errors."""

import json
import random
from pathlib import Path

import numpy as np
import pytest

from fewshot.classifier import PromptClassifier
from fewshot.cli.predict import main as predict_main
from fewshot.errors import BundleError, DataError
from fewshot.export.bundle import encoding_spec, tokenizer_spec
from fewshot.inference import OnnxPredictor, predict_file
from fewshot.runtime.tokenizer import batch_tokenize, load_wordpiece
from fewshot.template import TemplateEncoder

SHARED = Path(__file__).resolve().parents[2] / "shared"
TEMPLATE = "{'text': 'text_a'}这句话的类别是{'mask'}{'mask'}"
PAIR = "{'soft': '主题'}{'text': 'text_a'}{'sep'}{'text': 'text_b', 'truncate': False}{'soft'}{'mask'}{'mask'}"
PAIR_BOTH_TRUNCATED = "{'text': 'text_a'}{'sep'}{'text': 'text_b'}这是{'mask'}{'mask'}"
PIECES = [
    "球赛", "股价", "天气", "雨雪风", "這條新聞", "𠀀", "ｆｕｌｌwidth", "ＡＢＣ１２３", "Hello", "WORLD", "iPhone15",
    "café", "naïve", "Ñandú", "3.14", "1,000", "50%", "，", "。", "！", "？", "《", "》", "、", "...", "--", "(", ")",
    "[MASK]", "[UNK]", "[mask]", "[SEP]x", "a" * 120, " ", "\t", "\u3000", "\xa0", "\u200b", "\x00", "\ufffd", "😀", "\n",
    "℃", "+", "$", "^", "`", "|", "~", "²", "º", "µ", "Ø", "ŋ", "Ʊ", "〇", "\u00ad", "\x0b", "\x85", "\u2028", "İstanbul",
    "Straße", "Ⅻ", "①", "カタカナ", "한국어", "ᄀ",
]


def _mixed_texts(count, seed=0):
    rng = random.Random(seed)
    return ["".join(rng.choice(PIECES) + rng.choice(["", " "]) for _ in range(rng.randint(1, 12))) for _ in range(count)]


def _wordpiece(tokenizer, vocab_file):
    return load_wordpiece(Path(vocab_file), tokenizer_spec(tokenizer))


def _training_ids(tokenizer, text):
    return tokenizer.convert_tokens_to_ids(tokenizer.tokenize(text))


def test_tokenizer_matches_training_tokenizer_on_mixed_text(tiny_tokenizer, tiny_model_dir):
    texts = _mixed_texts(400)
    fast = _wordpiece(tiny_tokenizer, Path(tiny_model_dir) / "vocab.txt")
    got = [e.ids for e in fast.encode_batch(texts, add_special_tokens=False)]
    expected = [_training_ids(tiny_tokenizer, t) for t in texts]
    mismatches = [(t, g, e) for t, g, e in zip(texts, got, expected) if g != e]
    assert not mismatches, mismatches[:3]
    assert any(tiny_tokenizer.unk_token_id in ids for ids in expected)  # the mix really has unknown characters
    assert any(tiny_tokenizer.mask_token_id in ids for ids in expected)  # and a literal [MASK]


@pytest.mark.shared
def test_tokenizer_matches_training_tokenizer_on_tnews(tnews_dir):
    from paddlenlp.transformers import AutoTokenizer

    model_dir = SHARED / "models" / "zh-ernie-tiny"
    if not (model_dir / "vocab.txt").is_file():
        pytest.skip("../shared/models/zh-ernie-tiny is not present")
    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    texts = []
    for name in ("test.json", "dev_few_all.json"):
        with open(tnews_dir / name, encoding="utf-8") as handle:
            texts.extend(json.loads(line)["sentence"] for line in handle if line.strip())
    texts += _mixed_texts(200, seed=1)
    fast = _wordpiece(tokenizer, model_dir / "vocab.txt")
    got = [e.ids for e in fast.encode_batch(texts, add_special_tokens=False)]
    mismatches = [t for t, g in zip(texts, got) if g != _training_ids(tokenizer, t)]
    assert len(texts) > 2000 and not mismatches, mismatches[:3]


@pytest.mark.parametrize("template", [TEMPLATE, PAIR, PAIR_BOTH_TRUNCATED])
def test_bundle_encoder_reproduces_template_encode(tiny_model_dir, separable_task, template):
    _, _, words = separable_task
    clf = PromptClassifier(tiny_model_dir, labels=words, template=template, max_seq_length=20, seed=0)
    spec = encoding_spec(clf.template, clf.tokenizer, clf.model.plm.get_input_embeddings().weight.shape[0])
    tokenize = batch_tokenize(_wordpiece(clf.tokenizer, Path(tiny_model_dir) / "vocab.txt"))
    encoder = TemplateEncoder.from_spec(spec, tokenize)
    rng = random.Random(0)
    chars = "球赛跑股价钱雨雪风的一是在了有和人"
    pairs = [("".join(rng.choices(chars, k=rng.randint(1, 25))), "".join(rng.choices(chars, k=rng.randint(1, 6))))
             for _ in range(200)]
    needs_b = encoder.needs_text_b
    rows = encoder.encode_batch([(a, b if needs_b else None) for a, b in pairs])
    for (a, b), row in zip(pairs, rows):
        expected = clf.template.encode(a, b if needs_b else None)
        soft = np.array(expected["soft_token_ids"])
        ids = np.where(soft > 0, spec["vocab_rows"] + soft - 1, expected["input_ids"]).tolist()
        assert (row["input_ids"], row["token_type_ids"], row["masked_positions"]) == (
            ids, expected["token_type_ids"], expected["masked_positions"]
        ), (a, b)
    assert max(len(r["input_ids"]) for r in rows) == 20  # truncation happened


@pytest.fixture(scope="module")
def bundle(tiny_model_dir, separable_task, tmp_path_factory):
    _, _, words = separable_task
    clf = PromptClassifier(tiny_model_dir, labels=words, template=TEMPLATE, max_seq_length=32, seed=0)
    path = clf.export(tmp_path_factory.mktemp("inference") / "bundle", int8=True)
    return clf, path


def test_batches_sorted_by_length_come_back_in_input_order(bundle, separable_task):
    clf, path = bundle
    texts = [e.text_a for e in separable_task[1]] + ["球" * 30, "雨"]
    one_by_one = OnnxPredictor(path, batch_size=1, threads=1).predict_proba(texts)
    batched = OnnxPredictor(path, batch_size=5).predict_proba(texts)
    np.testing.assert_allclose(batched, one_by_one, atol=1e-5, rtol=0)
    np.testing.assert_allclose(batched, clf.predict_proba(texts), atol=1e-4, rtol=0)
    assert OnnxPredictor(path).predict_proba([]).shape == (0, 3)


def test_predictor_rejects_bad_arguments(bundle):
    _, path = bundle
    with pytest.raises(ValueError, match="device must be 'cpu' or 'gpu'"):
        OnnxPredictor(path, device="tpu")
    with pytest.raises(ValueError, match="precision must be one of fp32, bf16, int8, fp16, auto"):
        OnnxPredictor(path, precision="int4")
    with pytest.raises(BundleError, match=r"model.fp16.onnx: missing \(export with --fp16\)"):
        OnnxPredictor(path, precision="fp16")
    with pytest.raises(DataError, match="input 1: expected a text"):
        OnnxPredictor(path).predict(["球赛", 3])


def _copy_bundle(path, tmp_path):
    import shutil

    target = tmp_path / "copy"
    shutil.copytree(path, target)
    return target


@pytest.mark.parametrize(
    "damage,message",
    [
        (lambda b: (b / "fewshot.json").unlink(), r"not a fewshot bundle \(no fewshot.json\)"),
        (lambda b: (b / "fewshot.json").write_text("{broken", encoding="utf-8"), r"fewshot.json: not valid JSON"),
        (lambda b: (b / "fewshot.json").write_text('{"format_version": 1}', encoding="utf-8"), r"fewshot.json: missing key\(s\) task, labels"),
        (lambda b: (b / "model.onnx").unlink(), r"model.onnx: missing"),
        (lambda b: (b / "model.onnx").write_bytes(b"\x08\x07garbage" * 10), r"model.onnx: cannot load the ONNX model"),
        (lambda b: (b / "vocab.txt").unlink(), r"vocab.txt: missing"),
    ],
    ids=["no-manifest", "corrupt-manifest", "incomplete-manifest", "no-onnx", "corrupt-onnx", "no-vocab"],
)
def test_damaged_bundle_gives_clear_error(bundle, tmp_path, damage, message):
    target = _copy_bundle(bundle[1], tmp_path)
    damage(target)
    with pytest.raises(BundleError, match=message):
        OnnxPredictor(target)


def test_missing_bundle_directory(tmp_path):
    with pytest.raises(BundleError, match="bundle directory does not exist"):
        OnnxPredictor(tmp_path / "nope")


def _read_jsonl(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_predict_file_writes_one_line_per_input_in_order(bundle, separable_task, tmp_path):
    clf, path = bundle
    texts = [e.text_a for e in separable_task[1]] * 3
    (tmp_path / "data.txt").write_text("\ufeff" + "\r\n".join(texts) + "\n", encoding="utf-8")
    predictor = OnnxPredictor(path, batch_size=4)
    summary = predict_file(predictor, tmp_path / "data.txt", tmp_path / "small.jsonl", k=2, chunk_size=7, progress=False)
    predict_file(predictor, tmp_path / "data.txt", tmp_path / "big.jsonl", k=2, chunk_size=10_000, progress=False)
    records = _read_jsonl(tmp_path / "small.jsonl")
    assert (summary.lines, summary.predicted, summary.skipped) == (len(texts), len(texts), 0)
    assert records == _read_jsonl(tmp_path / "big.jsonl")
    assert [r["line"] for r in records] == list(range(1, len(texts) + 1))
    proba = clf.predict_proba(texts)
    assert [r["label"] for r in records] == [clf.labels[i] for i in proba.argmax(axis=1)]
    np.testing.assert_allclose([r["score"] for r in records], proba.max(axis=1), atol=1e-4)
    assert all(len(r["top_k"]) == 2 and r["top_k"][0]["score"] >= r["top_k"][1]["score"] for r in records)


def test_malformed_lines_are_reported_and_skipped_or_fail(bundle, tmp_path, capsys):
    _, path = bundle
    data = tmp_path / "data.jsonl"
    lines = [b'{"sentence": "\xe7\x90\x83\xe8\xb5\x9b"}', b"{not json", b"", b'{"text": "x"}', b'{"sentence": "\xff"}',
             b'{"sentence": 42}', b'["a"]', b'{"sentence": "\xe9\x9b\xa8"}']
    data.write_bytes(b"\n".join(lines) + b"\n")
    predictor = OnnxPredictor(path)
    summary = predict_file(predictor, data, tmp_path / "out.jsonl", on_error="skip", progress=False)
    records = _read_jsonl(tmp_path / "out.jsonl")
    assert [r["line"] for r in records] == list(range(1, 9))
    assert [("error" in r) for r in records] == [False, True, True, True, True, False, True, False]
    assert (summary.predicted, summary.skipped) == (3, 5)
    err = capsys.readouterr().err
    for expected in ("data.jsonl line 2: invalid JSON", "line 3: empty line", "line 4: missing key 'sentence'",
                     "line 5: not valid UTF-8 (byte 0xff)", "line 7: expected a JSON object"):
        assert expected in err

    with pytest.raises(DataError, match=r"data.jsonl line 2: invalid JSON"):
        predict_file(predictor, data, tmp_path / "fail.jsonl", on_error="fail", progress=False)
    assert not (tmp_path / "fail.jsonl").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_text_that_cannot_be_truncated_is_a_line_error(bundle, tmp_path, capsys):
    predictor = OnnxPredictor(bundle[1])
    predictor.encoder.parts[0]["truncate"] = False  # as a template with {'text': 'text_a', 'truncate': False}
    (tmp_path / "data.txt").write_text("球赛\n" + "球" * 40 + "\n雨\n", encoding="utf-8")
    with pytest.raises(DataError, match="input 1: text does not fit max_seq_length=32"):
        predictor.predict(["球赛", "球" * 40])
    summary = predict_file(predictor, tmp_path / "data.txt", tmp_path / "out.jsonl", on_error="skip", progress=False)
    records = _read_jsonl(tmp_path / "out.jsonl")
    assert (summary.lines, summary.skipped) == (3, 1) and "error" in records[1] and "label" in records[2]
    assert "data.txt line 2: text does not fit max_seq_length=32" in capsys.readouterr().err
    with pytest.raises(DataError, match="data.txt line 2: text does not fit"):
        predict_file(predictor, tmp_path / "data.txt", tmp_path / "out2.jsonl", progress=False)


def test_fewshot_predict_cli(bundle, separable_task, tmp_path, capsys):
    clf, path = bundle
    texts = [e.text_a for e in separable_task[1]][:10]
    (tmp_path / "data.txt").write_text("\n".join(texts) + "\n", encoding="utf-8")
    args = ["--bundle", str(path), "--input", str(tmp_path / "data.txt"), "--output", str(tmp_path / "p.jsonl"),
            "--batch-size", "3", "--top-k", "3", "--threads", "1", "--no-progress"]
    assert predict_main(args) == 0
    records = _read_jsonl(tmp_path / "p.jsonl")
    assert [r["label"] for r in records] == clf.predict(texts)
    assert all(sorted(t["label"] for t in r["top_k"]) == sorted(clf.labels) for r in records)
    assert "10 lines, 10 predicted, 0 skipped" in capsys.readouterr().err

    assert predict_main(args[:-1] + ["--precision", "int8", "--no-progress"]) == 0
    assert len(_read_jsonl(tmp_path / "p.jsonl")) == 10

    (tmp_path / "bad.txt").write_text("球赛\n球\t赛\n", encoding="utf-8")
    bad = ["--bundle", str(path), "--input", str(tmp_path / "bad.txt"), "--output", str(tmp_path / "q.jsonl"), "--no-progress"]
    assert predict_main(bad) == 2
    assert "bad.txt line 2: expected 1 tab-separated column(s) (text), found 2" in capsys.readouterr().err
    assert predict_main(["--bundle", str(tmp_path), "--input", str(tmp_path / "bad.txt"), "--output", str(tmp_path / "q")]) == 2
    assert "not a fewshot bundle" in capsys.readouterr().err
