"""Bundle export: ONNX and the Paddle static graph reproduce the dynamic model; atomic, checked writes."""

import json
import subprocess
import sys

import numpy as np
import paddle
import pytest

import fewshot.export.bundle as export_module
import fewshot.export.convert as convert_module
from fewshot.classifier import PromptClassifier
from fewshot.cli.export import main as export_main
from fewshot.data import Example
from fewshot.errors import BundleError
from fewshot.inference import OnnxPredictor
from fewshot.runtime.manifest import GRAPH_INPUTS as INPUT_NAMES, MANIFEST_NAME

TWO_MASKS = "{'text': 'text_a'}这句话的类别是{'mask'}{'mask'}"
LSTM_SOFT = "{'soft': None, 'length': 3, 'encoder': 'lstm', 'hidden_size': 16}{'text': 'text_a'}{'mask'}{'mask'}"
PAIR_WITH_SEP = "{'soft': '主题'}{'text': 'text_a'}{'sep'}{'text': 'text_b'}{'soft': None, 'length': 2, 'encoder': 'mlp'}{'mask'}{'mask'}"
FAST = dict(disable_tqdm=True, logging_steps=1000, evaluation_strategy="no", report_to=[])


def _texts(test):
    # A long text (truncated to max_seq_length) and characters outside the vocabulary too.
    return [e.text_a for e in test] + ["球赛" * 40, "xyz 球 ¿?"]


@pytest.fixture(scope="module")
def trained(tiny_model_dir, separable_task):
    """A tiny classifier trained for a few steps, so its weights are no longer the random ones."""
    train, _, words = separable_task
    clf = PromptClassifier(tiny_model_dir, labels=words, template=TWO_MASKS, max_seq_length=32, seed=0)
    clf.fit(train, max_steps=15, learning_rate=5e-3, seed=0, **FAST)
    return clf


@pytest.fixture(scope="module")
def bundle(trained, tmp_path_factory):
    return trained.export(tmp_path_factory.mktemp("export") / "bundle", int8=True, fp16=True)


def test_onnx_matches_paddle_probabilities_and_labels(trained, bundle, separable_task):
    texts = _texts(separable_task[1])
    predictor = OnnxPredictor(bundle, batch_size=4)
    expected = trained.predict_proba(texts)
    got = predictor.predict_proba(texts)
    assert got.shape == (len(texts), 3)
    np.testing.assert_allclose(got, expected, atol=1e-4, rtol=0)
    assert predictor.predict(texts) == trained.predict(texts)
    assert predictor.labels == trained.labels


def test_static_graph_runs_without_the_pretrained_model(trained, bundle, separable_task):
    texts = _texts(separable_task[1])
    predictor = OnnxPredictor(bundle)
    feed = predictor.encoder.pad(predictor.encode(texts))
    loaded = paddle.jit.load(str(bundle / "model"))
    probs = loaded(*[paddle.to_tensor(feed[name]) for name in INPUT_NAMES]).numpy()
    np.testing.assert_allclose(probs, trained.predict_proba(texts), atol=1e-5, rtol=0)


def test_int8_and_fp16_bundles_load_and_predict(trained, bundle, separable_task):
    texts = _texts(separable_task[1])
    fp32 = OnnxPredictor(bundle).predict_proba(texts)
    for precision, tolerance in (("int8", 0.05), ("fp16", 0.01)):
        probs = OnnxPredictor(bundle, precision=precision).predict_proba(texts)
        np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-3)
        np.testing.assert_allclose(probs, fp32, atol=tolerance, rtol=0, err_msg=precision)
    manifest = json.loads((bundle / MANIFEST_NAME).read_text(encoding="utf-8"))
    assert manifest["files"]["onnx_int8"] == "model.int8.onnx"
    assert 0 < manifest["export_check"]["onnx_int8_max_abs_diff"] < 0.05


def test_manifest_describes_labels_template_and_inputs(trained, bundle):
    manifest = json.loads((bundle / MANIFEST_NAME).read_text(encoding="utf-8"))
    assert manifest["labels"] == trained.labels
    assert manifest["template"] == TWO_MASKS
    assert manifest["max_seq_length"] == 32
    assert manifest["task"] == "multi_class"
    assert [i["name"] for i in manifest["inputs"]] == list(INPUT_NAMES)
    assert manifest["inputs"][4]["shape"] == ["batch", 2]
    assert manifest["export_check"]["onnx_fp32_max_abs_diff"] < 1e-4
    kinds = [p["kind"] for p in manifest["encoding"]["parts"]]
    assert kinds == ["text", "hard", "mask", "mask"]
    mask_id = trained.tokenizer.mask_token_id
    assert manifest["encoding"]["parts"][2]["ids"] == [mask_id]
    for name in ("model.json", "model.pdiparams", "model.onnx", "vocab.txt", "tokenizer_config.json"):
        assert (bundle / name).is_file(), name


def test_onnx_graph_has_dynamic_batch_and_sequence(bundle):
    import onnx

    graph = onnx.load(str(bundle / "model.onnx")).graph
    dims = {i.name: [d.dim_param or d.dim_value for d in i.type.tensor_type.shape.dim] for i in graph.input}
    assert dims["input_ids"] == ["batch", "sequence"]
    assert dims["masked_positions"] == ["batch", 2]
    assert [o.name for o in graph.output] == ["probs"]
    assert not any(n.op_type in ("LSTM", "Identity") for n in graph.node)


@pytest.mark.parametrize(
    "template,verbalizer,pair",
    [(LSTM_SOFT, "soft", False), (PAIR_WITH_SEP, "manual", True)],
    ids=["lstm-soft-encoder", "pair-sep-soft-init-mlp"],
)
def test_soft_prompt_bundles_export_and_match(tiny_model_dir, separable_task, tmp_path, template, verbalizer, pair):
    train, test, words = separable_task
    clf = PromptClassifier(tiny_model_dir, labels=words, template=template, verbalizer=verbalizer, max_seq_length=24, seed=0)
    rows = [Example(e.text_a, e.text_a[::-1] if pair else None, e.label) for e in train[:16]]
    clf.fit(rows, max_steps=4, learning_rate=1e-2, ppt_learning_rate=1e-2, seed=0, **FAST)
    texts = _texts(test)
    inputs = [(t, texts[-1 - i]) for i, t in enumerate(texts)] if pair else texts
    bundle = clf.export(tmp_path / "bundle")
    got = OnnxPredictor(bundle, batch_size=3).predict_proba(inputs)
    np.testing.assert_allclose(got, clf.predict_proba(inputs), atol=1e-4, rtol=0)
    import onnx

    ops = {n.op_type for n in onnx.load(str(bundle / "model.onnx")).graph.node}
    assert "LSTM" not in ops  # the soft prompt is a constant table, not a network, in the bundle
    manifest = json.loads((bundle / MANIFEST_NAME).read_text(encoding="utf-8"))
    vocab_rows = manifest["encoding"]["vocab_rows"]
    soft_ids = [i for p in manifest["encoding"]["parts"] if p["kind"] == "soft" for i in p["ids"]]
    assert soft_ids == list(range(vocab_rows, vocab_rows + clf.template.num_soft_tokens))


def test_export_cli_from_checkpoint_and_without_onnx(trained, tmp_path, capsys):
    trained.save(tmp_path / "ckpt")
    assert export_main(["--checkpoint", str(tmp_path / "ckpt"), "--output", str(tmp_path / "b"), "--no-onnx"]) == 0
    names = {p.name for p in (tmp_path / "b").iterdir()}
    assert {"model.json", "model.pdiparams", MANIFEST_NAME, "vocab.txt"} <= names
    assert not any(name.endswith(".onnx") for name in names)
    manifest = json.loads((tmp_path / "b" / MANIFEST_NAME).read_text(encoding="utf-8"))
    assert manifest["export_check"]["paddle_static_max_abs_diff"] < 1e-4
    assert "wrote" in capsys.readouterr().out

    assert export_main(["--checkpoint", str(tmp_path / "ckpt"), "--output", str(tmp_path / "b2"), "--no-onnx", "--int8"]) == 2
    assert "--int8 derive from the ONNX model" in capsys.readouterr().err
    assert export_main(["--checkpoint", str(tmp_path / "nothing"), "--output", str(tmp_path / "b3")]) == 2
    assert "not a saved PromptClassifier" in capsys.readouterr().err
    assert not (tmp_path / "b2").exists() and not (tmp_path / "b3").exists()


def test_calibrated_int8_export_reports_the_accuracy_it_costs(trained, separable_task, tmp_path, capsys):
    import onnx

    train, test, _ = separable_task
    (tmp_path / "unlabeled.txt").write_text("\n".join(e.text_a for e in train) + "\n", encoding="utf-8")
    (tmp_path / "dev.txt").write_text("\n".join(f"{e.text_a}\t{e.label}" for e in test) + "\n", encoding="utf-8")
    trained.save(tmp_path / "ckpt")
    bundle = tmp_path / "bundle"
    assert export_main(["--checkpoint", str(tmp_path / "ckpt"), "--output", str(bundle), "--int8", "--calibration",
                        str(tmp_path / "unlabeled.txt"), "--check-data", str(tmp_path / "dev.txt")]) == 0
    check = json.loads((bundle / MANIFEST_NAME).read_text(encoding="utf-8"))["export_check"]
    assert check["int8_method"] == "static" and check["int8_calibration_texts"] == len(train)
    assert check["int8_calibration_file"] == "unlabeled.txt" and check["int8_check_file"] == "dev.txt"
    change = check["int8_check"]
    texts = [e.text_a for e in test]
    fp32_accuracy = float(np.mean(np.array(trained.predict(texts)) == np.array([e.label for e in test])))
    assert change["examples"] == len(test) and change["metric"] == "accuracy"
    assert change["fp32"] == pytest.approx(fp32_accuracy)
    assert change["delta"] == pytest.approx(change["int8"] - change["fp32"])
    assert 0.9 <= change["top1_agreement"] <= 1.0
    out = capsys.readouterr().out
    assert f"int8 on {tmp_path / 'dev.txt'} ({len(test)} examples): accuracy {change['fp32']:.4f} -> " in out
    ops = {n.op_type for n in onnx.load(str(bundle / "model.int8.onnx")).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops  # static QDQ: the format OpenVINO reads as int8 too
    fp32 = OnnxPredictor(bundle).predict_proba(texts)
    np.testing.assert_allclose(OnnxPredictor(bundle, precision="int8").predict_proba(texts), fp32, atol=0.05, rtol=0)

    assert export_main(["--checkpoint", str(tmp_path / "ckpt"), "--output", str(tmp_path / "dynamic"), "--int8",
                        "--check-data", str(tmp_path / "dev.txt")]) == 0
    dynamic = json.loads((tmp_path / "dynamic" / MANIFEST_NAME).read_text(encoding="utf-8"))["export_check"]
    assert dynamic["int8_method"] == "dynamic" and "int8_calibration_texts" not in dynamic
    assert dynamic["int8_check"]["fp32"] == pytest.approx(fp32_accuracy)
    assert 0.9 <= dynamic["int8_check"]["top1_agreement"] <= 1.0

    (tmp_path / "few.txt").write_text("球赛\n", encoding="utf-8")
    assert export_main(["--checkpoint", str(tmp_path / "ckpt"), "--output", str(tmp_path / "b2"), "--int8",
                        "--calibration", str(tmp_path / "few.txt")]) == 2
    assert "few.txt: 1 calibration texts; give at least 8" in capsys.readouterr().err
    assert export_main(["--checkpoint", str(tmp_path / "ckpt"), "--output", str(tmp_path / "b2"),
                        "--calibration", str(tmp_path / "unlabeled.txt")]) == 2
    assert "--calibration and --check-data are about the int8 model; add --int8" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        export_main(["--checkpoint", str(tmp_path / "ckpt"), "--output", str(tmp_path / "b2"), "--opset", "14"])
    assert "argument --opset: must be ≥ 18, got 14" in capsys.readouterr().err
    with pytest.raises(BundleError, match="opset 14 is below 18, the oldest that onnxruntime and OpenVINO read identically"):
        trained.export(tmp_path / "b2", opset=14)
    assert not (tmp_path / "b2").exists()


def test_interrupted_export_keeps_previous_bundle(trained, tmp_path, monkeypatch):
    target = tmp_path / "bundle"
    trained.export(target, onnx=False)
    before = {p.name: p.read_bytes() for p in target.iterdir()}

    def crash(directory, opset, num_labels):
        (directory / "model.onnx").write_bytes(b"half written")
        raise KeyboardInterrupt

    monkeypatch.setattr(convert_module, "convert_to_onnx", crash)
    with pytest.raises(KeyboardInterrupt):
        trained.export(target)
    assert {p.name: p.read_bytes() for p in target.iterdir()} == before
    assert [p.name for p in tmp_path.iterdir()] == ["bundle"]
    assert json.loads((target / MANIFEST_NAME).read_text(encoding="utf-8"))["labels"] == trained.labels


def test_export_refuses_a_graph_that_disagrees_with_paddle(trained, tmp_path, monkeypatch):
    real = export_module.run_static_graph
    monkeypatch.setattr(export_module, "run_static_graph", lambda path, feed: real(path, feed) + 1e-3)
    with pytest.raises(BundleError, match=r"the static graph differs from the Paddle model by 0.001"):
        trained.export(tmp_path / "bundle", onnx=False)
    assert not (tmp_path / "bundle").exists()


def test_paddle2onnx_crash_is_a_clear_error(trained, tmp_path, monkeypatch):
    crash = "import os; print('[ERROR][Paddle2ONNX] Due to the unsupported operators, the conversion is aborted.'); os.abort()"
    monkeypatch.setattr(convert_module, "_PADDLE2ONNX_SCRIPT", crash)
    with pytest.raises(BundleError, match=r"paddle2onnx could not convert model.json to ONNX opset 18 \(\[ERROR\]"
                                          r"\[Paddle2ONNX\] Due to the unsupported operators.*export with --no-onnx"):
        trained.export(tmp_path / "bundle")
    assert list(tmp_path.iterdir()) == []


def test_importing_inference_does_not_import_paddle():
    code = "import fewshot.inference, fewshot.cli, sys; assert 'paddle' not in sys.modules and 'paddlenlp' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize(
    "options,task",
    [
        (dict(method="zeroshot", calibrate=True), "multi_class"),
        (dict(multi_label=True, thresholds=[0.2, 0.5, 0.8], verbalizer="soft"), "multi_label"),
        (dict(multi_label=True, thresholds=[0.2, 0.5, 0.8]), "multi_label"),
        (dict(hierarchical=True, labels=["体育##跑", "体育##雨", "财经##钱"], verbalizer="soft"), "hierarchical"),
        (dict(hierarchical=True, labels=["体育##跑", "体育##雨", "财经##钱"]), "hierarchical"),
    ],
    ids=["calibrated-zeroshot", "multi-label-soft", "multi-label-manual", "hierarchical-soft", "hierarchical-manual"],
)
def test_other_tasks_predict_like_the_classifier(tiny_model_dir, separable_task, tmp_path, options, task):
    _, test, words = separable_task
    options = dict(options)
    clf = PromptClassifier(tiny_model_dir, labels=options.pop("labels", words), template=TWO_MASKS, max_seq_length=32,
                           seed=0, **options)
    texts = _texts(test)
    predictor = OnnxPredictor(clf.export(tmp_path / "bundle"))
    assert predictor.task.kind == task
    np.testing.assert_allclose(predictor.predict_proba(texts), clf.predict_proba(texts), atol=1e-4, rtol=0)
    assert predictor.predict(texts) == clf.predict(texts)


def test_finetune_baseline_is_not_exportable(tiny_model_dir, separable_task, tmp_path):
    clf = PromptClassifier(tiny_model_dir, labels=separable_task[2], template=TWO_MASKS, max_seq_length=32, method="finetune")
    with pytest.raises(BundleError, match="only prompt classifiers can be exported, not method 'finetune'"):
        clf.export(tmp_path / "bundle")
    assert not (tmp_path / "bundle").exists()
