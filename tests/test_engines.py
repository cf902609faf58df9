"""Inference engines: one bundle read identically by onnxruntime and OpenVINO, explicit precisions, auto, pipelining."""

import json

import numpy as np
import pytest

from fewshot.cli.predict import main as predict_main
from fewshot.errors import FewshotError
from fewshot.runtime import GRAPH_INPUTS, OnnxPredictor
from fewshot.runtime.engines import ENGINES, auto_allows, choose_engine
from fewshot.runtime.prefetch import prefetched

TEXTS = ["球赛跑", "股价钱", "雨雪风天气", "体育新闻" * 30, "xyz 球 ¿?", "财经", "汽车国际娱乐", "主题"]


@pytest.fixture
def openvino():
    return pytest.importorskip("openvino")


@pytest.fixture
def without_openvino(monkeypatch):
    monkeypatch.setattr(type(ENGINES["openvino"]), "available", lambda self: False)


def _feeds(predictor, texts, size):
    rows = predictor.encode(texts)
    return [{k: v for k, v in predictor.encoder.pad(rows[i : i + size]).items() if k in GRAPH_INPUTS}
            for i in range(0, len(rows), size)]


def test_bundle_gives_the_same_probabilities_on_onnxruntime_and_openvino(openvino, tiny_bundle):
    reference = OnnxPredictor(tiny_bundle, batch_size=3).predict_proba(TEXTS)
    predictor = OnnxPredictor(tiny_bundle, batch_size=3, engine="openvino", precision="fp32")
    got = predictor.predict_proba(TEXTS)
    assert got.shape == reference.shape == (len(TEXTS), 3)  # below opset 18 OpenVINO returned shape (3,)
    assert reference.std() > 1e-3  # the random model's probabilities differ between texts and labels
    np.testing.assert_allclose(got, reference, atol=1e-5, rtol=0)
    assert json.loads((tiny_bundle / "fewshot.json").read_text(encoding="utf-8"))["export_check"]["onnx_opset"] == 18


def test_openvino_precision_is_set_explicitly(openvino, tiny_bundle):
    fp32 = OnnxPredictor(tiny_bundle, engine="openvino", precision="fp32", throughput=False)
    # OpenVINO's own default is bf16 on CPUs with native bf16; fp32 must never be computed in bf16.
    assert str(fp32.session.compiled.get_property("INFERENCE_PRECISION_HINT")) in ("<Type: 'float32'>", "f32")
    reference = fp32.predict_proba(TEXTS)
    if "bf16" in ENGINES["openvino"].precisions("cpu"):
        bf16 = OnnxPredictor(tiny_bundle, engine="openvino", precision="bf16")
        assert "bfloat16" in str(bf16.session.compiled.get_property("INFERENCE_PRECISION_HINT"))
        np.testing.assert_allclose(bf16.predict_proba(TEXTS), reference, atol=2e-2, rtol=0)
    int8 = OnnxPredictor(tiny_bundle, engine="openvino", precision="int8")
    np.testing.assert_allclose(int8.predict_proba(TEXTS), reference, atol=5e-2, rtol=0)


def test_openvino_does_not_run_on_gpu(openvino, tiny_bundle):
    with pytest.raises(FewshotError, match="--engine openvino does not run on gpu"):
        OnnxPredictor(tiny_bundle, engine="openvino", device="gpu")


def test_requests_in_flight_come_back_in_order(openvino, tiny_bundle):
    predictor = OnnxPredictor(tiny_bundle, engine="openvino", throughput=True)
    feeds = _feeds(predictor, TEXTS, 2)  # batches of different lengths
    assert predictor.session.in_flight >= 2
    one_by_one = [predictor.session.run(feed) for feed in feeds]
    got = list(predictor.session.run_many(iter(feeds)))
    assert [g.shape for g in got] == [e.shape for e in one_by_one]
    for batch, expected in zip(got, one_by_one):
        np.testing.assert_allclose(batch, expected, atol=1e-6, rtol=0)


def test_onnxruntime_refuses_bf16_and_a_missing_engine_says_how_to_install(tiny_bundle, without_openvino):
    with pytest.raises(FewshotError, match="--engine onnxruntime on cpu runs precision int8, fp32, fp16, not bf16"):
        OnnxPredictor(tiny_bundle, precision="bf16")
    with pytest.raises(FewshotError, match=r"--engine openvino needs openvino, which is not installed: "
                                           r"pip install \"fewshot\[openvino\]\""):
        OnnxPredictor(tiny_bundle, engine="openvino")
    with pytest.raises(FewshotError, match="engine must be one of onnxruntime, openvino, auto, got 'tensorrt'"):
        OnnxPredictor(tiny_bundle, engine="tensorrt")


def test_auto_takes_the_fastest_engine_and_precision_the_bundle_has(tiny_bundle, monkeypatch):
    every_model = lambda model: True  # noqa: E731
    fp32_only = lambda model: model == "fp32"  # noqa: E731
    monkeypatch.setattr(type(ENGINES["openvino"]), "available", lambda self: True)
    monkeypatch.setattr(type(ENGINES["openvino"]), "precisions", lambda self, device: ("int8", "bf16", "fp32") if device == "cpu" else ())
    assert _names(choose_engine("auto", "auto", "cpu", every_model)) == ("openvino", "bf16")
    assert _names(choose_engine("auto", "int8", "cpu", every_model)) == ("openvino", "int8")
    assert _names(choose_engine("onnxruntime", "auto", "cpu", every_model)) == ("onnxruntime", "int8")
    assert _names(choose_engine("auto", "fp32", "cpu", every_model)) == ("openvino", "fp32")
    assert _names(choose_engine("auto", "auto", "gpu", every_model)) == ("onnxruntime", "fp16")
    monkeypatch.setattr(type(ENGINES["openvino"]), "available", lambda self: False)
    assert _names(choose_engine("auto", "auto", "cpu", fp32_only)) == ("onnxruntime", "fp32")
    assert _names(choose_engine("auto", "auto", "cpu", every_model)) == ("onnxruntime", "int8")
    with pytest.raises(FewshotError, match="no installed engine runs this bundle on cpu with engine auto, precision bf16"):
        choose_engine("auto", "bf16", "cpu", every_model)
    poor_int8 = auto_allows({"int8_check": {"top1_agreement": 0.73}})  # as measured by the export's --check-data
    assert _names(choose_engine("auto", "auto", "cpu", every_model, poor_int8)) == ("onnxruntime", "fp32")
    assert _names(choose_engine("auto", "int8", "cpu", every_model, poor_int8)) == ("onnxruntime", "int8")  # asked for
    assert _names(choose_engine("auto", "auto", "cpu", every_model, auto_allows({}))) == ("onnxruntime", "int8")
    predictor = OnnxPredictor(tiny_bundle, engine="auto", precision="auto")  # tiny_bundle has fp32 and int8
    assert (predictor.engine.name, predictor.precision.name) == ("onnxruntime", "int8")
    assert predictor.describe()["precision"] == "int8"


def _names(choice):
    engine, precision = choice
    return engine.name, precision.name


def test_prefetched_keeps_order_raises_where_the_item_failed_and_stops_early():
    produced = []

    def items(fail_at=None):
        for i in range(6):
            if i == fail_at:
                raise ValueError(f"item {i}")
            produced.append(i)
            yield i * i

    assert list(prefetched(items())) == [0, 1, 4, 9, 16, 25]
    got = []
    with pytest.raises(ValueError, match="item 3"):
        for value in prefetched(items(fail_at=3)):
            got.append(value)
    assert got == [0, 1, 4]
    produced.clear()
    stream = prefetched(items())
    assert next(stream) == 0
    stream.close()
    assert produced == [0, 1]  # the item being made when the loop stopped, no more


def test_fewshot_predict_engine_and_backend_options(openvino, tiny_bundle, tmp_path, capsys):
    (tmp_path / "data.txt").write_text("\n".join(TEXTS) + "\n", encoding="utf-8")
    common = ["--bundle", str(tiny_bundle), "--input", str(tmp_path / "data.txt"), "--no-progress", "--top-k", "2"]
    assert predict_main(common + ["--output", str(tmp_path / "ort.jsonl")]) == 0
    assert predict_main(common + ["--output", str(tmp_path / "ov.jsonl"), "--engine", "openvino"]) == 0
    ort, ov = (_records(tmp_path / name) for name in ("ort.jsonl", "ov.jsonl"))
    assert [r["label"] for r in ov] == [r["label"] for r in ort]
    np.testing.assert_allclose([r["score"] for r in ov], [r["score"] for r in ort], atol=1e-5)
    capsys.readouterr()

    assert predict_main(common + ["--output", str(tmp_path / "old.jsonl"), "--engine", "onnx"]) == 0
    err = capsys.readouterr().err
    assert err.count("--engine onnx is deprecated") == 1 and "use --backend local" in err
    assert _records(tmp_path / "old.jsonl") == ort

    assert predict_main(common + ["--output", str(tmp_path / "auto.jsonl"), "--engine", "auto", "--precision", "auto"]) == 0
    picked = OnnxPredictor(tiny_bundle, engine="auto", precision="auto")  # openvino bf16 where the CPU has bf16
    assert picked.engine.name == "openvino" and picked.precision.name in ("bf16", "int8")
    expected = f"--engine auto --precision auto: running {picked.engine.name} {picked.precision.name}"
    assert expected in capsys.readouterr().err
    assert predict_main(common + ["--output", str(tmp_path / "x.jsonl"), "--precision", "bf16"]) == 2
    assert "--engine onnxruntime on cpu runs precision int8, fp32, fp16, not bf16" in capsys.readouterr().err


def _records(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_a_bundle_below_opset_18_is_refused_by_openvino_not_misread(openvino, tiny_model_dir, separable_task,
                                                                   tmp_path, monkeypatch):
    import fewshot.export.convert as convert_module
    from fewshot.classifier import PromptClassifier
    from fewshot.errors import BundleError

    monkeypatch.setattr(convert_module, "MIN_OPSET", 14)  # an old bundle, as fewshot exported them before opset 18
    clf = PromptClassifier(tiny_model_dir, labels=separable_task[2], template="{'text': 'text_a'}{'mask'}{'mask'}",
                           max_seq_length=32, seed=0)
    bundle = clf.export(tmp_path / "old", opset=14)
    assert OnnxPredictor(bundle).predict_proba(TEXTS).shape == (len(TEXTS), 3)
    with pytest.raises(BundleError, match=r"model.onnx: the output probs has shape \[3\], not \[batch, 3\] in openvino "
                                          r"\(a model exported at ONNX opset 14, which OpenVINO misreads below 18: export the bundle again\)"):
        OnnxPredictor(bundle, engine="openvino")


def test_chunked_and_prefetched_prediction_equals_one_pass(tiny_bundle, monkeypatch):
    import fewshot.runtime.predictor as predictor_module

    predictor = OnnxPredictor(tiny_bundle, batch_size=2)
    whole = predictor.predict_proba(TEXTS)  # one chunk, one thread
    monkeypatch.setattr(predictor_module, "PREDICT_CHUNK", 3)  # three chunks, tokenised ahead on a helper thread
    np.testing.assert_allclose(predictor.predict_proba(TEXTS), whole, atol=1e-6, rtol=0)  # other batches, other padding
    assert predictor.predict(TEXTS) == predictor.decode(whole)


def test_static_int8_keeps_the_feed_forward_down_projections_in_float(tiny_bundle):
    import onnx

    from fewshot.export.calibration import calibrated_matmuls

    model = onnx.load(str(tiny_bundle / "model.onnx"))
    weights = {t.name for t in model.graph.initializer}
    with_weight = {n.name for n in model.graph.node if n.op_type == "MatMul" and any(i in weights for i in n.input)}
    gelus = sum(n.op_type == "Erf" for n in model.graph.node)
    chosen = calibrated_matmuls(model)
    assert set(chosen) < with_weight
    left_out = [n for n in model.graph.node if n.name in with_weight - set(chosen)]
    shapes = [onnx.numpy_helper.to_array(next(t for t in model.graph.initializer if t.name in n.input)).shape
              for n in left_out]
    assert gelus == 3 and shapes == [(64, 32), (64, 32)]  # the two layers' down-projections (intermediate 64 ->
    # hidden 32) read a GELU; the MLM head's GELU goes through a LayerNorm first and its MatMul is quantised


def test_serve_takes_the_same_engine_options():
    pytest.importorskip("starlette")
    from fewshot.cli.serve import build_parser

    args = build_parser().parse_args(["bundle", "--engine", "openvino", "--precision", "bf16"])
    assert (args.engine, args.precision) == ("openvino", "bf16")
    assert (build_parser().parse_args(["bundle"]).engine, build_parser().parse_args(["bundle"]).precision) == (
        "onnxruntime", "fp32")
