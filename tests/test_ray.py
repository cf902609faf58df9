"""Ray Data batch inference: BundleClassifier on pandas/pyarrow batches, fewshot-predict --engine ray = fewshot-predict.

Each Ray run starts and stops its own local Ray; skipped when ray is not installed.
"""

import json
import sys
import threading
import time

import numpy as np
import pytest

from fewshot.cli.predict import main as predict_main
from fewshot.errors import DataError, FewshotError
from fewshot.integrations.ray import BundleClassifier, predict_file_ray
from fewshot.runtime import OnnxPredictor, prediction_records

pd = pytest.importorskip("pandas")
pa = pytest.importorskip("pyarrow")


@pytest.fixture(scope="module")
def ray():
    """Each call below starts its own local Ray and shuts it down on return, so none inherits another's workers."""
    ray = pytest.importorskip("ray")
    pytest.importorskip("ray.data")
    return ray


@pytest.fixture(scope="module")
def texts(separable_task):
    train, test, _ = separable_task
    return [e.text_a for e in train + test]


def test_bundle_classifier_adds_fewshot_predict_records_to_pandas_and_arrow_batches(tiny_bundle, texts):
    classify = BundleClassifier(tiny_bundle, fields={"text_a": "sentence"}, top_k=2, on_error="skip")
    frame = pd.DataFrame({"id": range(5), "sentence": texts[:4] + ["  "]})
    predictor = OnnxPredictor(tiny_bundle)
    expected = prediction_records(predictor, predictor.predict_proba(texts[:4]), 2)

    out = classify(frame)
    assert list(out.columns) == ["id", "sentence", "label", "score", "top_k", "error"]
    assert out["label"].tolist()[:4] == [r["label"] for r in expected]
    np.testing.assert_allclose(out["score"].tolist()[:4], [r["score"] for r in expected], atol=1e-6)
    assert out["error"].tolist() == [None] * 4 + ["key 'sentence': empty text"]
    assert out["label"].tolist()[4] is None

    table = classify(pa.Table.from_pandas(frame))
    assert table.column("label").to_pylist() == out["label"].tolist()
    assert table.column("top_k").to_pylist()[:4] == [r["top_k"] for r in expected]
    numpy_batch = classify({"sentence": np.array(texts[:4], dtype=object)})
    assert numpy_batch["label"].tolist() == [r["label"] for r in expected]

    with pytest.raises(DataError, match="row 4 of the batch: key 'sentence': empty text"):
        BundleClassifier(tiny_bundle, fields={"text_a": "sentence"})(frame)
    with pytest.raises(FewshotError, match="on_error must be 'fail' or 'skip'"):
        BundleClassifier(tiny_bundle, on_error="ignore")


def test_a_ray_the_call_started_is_shut_down_when_it_returns(ray, tiny_bundle, texts, tmp_path):
    assert not ray.is_initialized()
    data = tmp_path / "data.txt"
    data.write_text("\n".join(texts[:10]) + "\n", encoding="utf-8")
    summary = predict_file_ray(tiny_bundle, data, tmp_path / "out.jsonl", chunk_size=4, workers=1)
    assert summary.lines == 10 and not ray.is_initialized()  # no workers or CPUs left held in this process
    records = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [r["line"] for r in records] == list(range(1, 11))


def test_a_ray_the_call_started_outlives_every_dataset_thread(ray, tiny_bundle, texts, tmp_path, monkeypatch):
    from ray.data._internal.execution.streaming_executor import StreamingExecutor

    run = StreamingExecutor.run

    def slow_to_end(self):  # as on a busy machine: the thread outlives Ray Data's own 2 s join
        run(self)
        time.sleep(3)

    alive_at_shutdown, shutdown = [], ray.shutdown

    def recording_shutdown(*args, **kwargs):
        alive_at_shutdown.extend(t.name for t in threading.enumerate()
                                 if isinstance(t, StreamingExecutor) or t.name in ("Prefetcher", "iter_threaded"))
        return shutdown(*args, **kwargs)

    monkeypatch.setattr(StreamingExecutor, "run", slow_to_end)
    monkeypatch.setattr(ray, "shutdown", recording_shutdown)
    (tmp_path / "data.txt").write_text("\n".join(texts[:6]) + "\n", encoding="utf-8")
    predict_file_ray(tiny_bundle, tmp_path / "data.txt", tmp_path / "out.jsonl", chunk_size=3, workers=1)
    assert alive_at_shutdown == [] and not ray.is_initialized()


def _write_input(path, texts):
    lines = [json.dumps({"sentence": t}, ensure_ascii=False) for t in texts]
    lines[3] = '{"sentence": ""}'
    lines[10] = "{not json"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def test_ray_engine_output_is_identical_to_fewshot_predict(ray, tiny_bundle, texts, tmp_path, capsys):
    data = tmp_path / "data.jsonl"
    _write_input(data, texts * 2)
    common = ["--bundle", str(tiny_bundle), "--input", str(data), "--top-k", "2", "--chunk-size", "16",
              "--on-error", "skip", "--no-progress"]
    assert predict_main(common + ["--output", str(tmp_path / "onnx.jsonl")]) == 0
    onnx_err = capsys.readouterr().err
    assert predict_main(common + ["--output", str(tmp_path / "ray.jsonl"), "--engine", "ray", "--workers", "2",
                                  "--threads", "1"]) == 0
    ray_err = capsys.readouterr().err
    assert (tmp_path / "ray.jsonl").read_bytes() == (tmp_path / "onnx.jsonl").read_bytes()
    assert ray_err.splitlines()[-3:] == onnx_err.replace("onnx.jsonl", "ray.jsonl").splitlines()[-3:]
    assert "line 4: key 'sentence': empty text (skipped)" in ray_err and "line 11: invalid JSON" in ray_err
    records = [json.loads(line) for line in (tmp_path / "ray.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [r["line"] for r in records] == list(range(1, 2 * len(texts) + 1))

    assert predict_main(common[:-3] + ["--no-progress", "--output", str(tmp_path / "fail.jsonl"), "--engine", "ray"]) == 2
    assert "data.jsonl line 4: key 'sentence': empty text" in capsys.readouterr().err
    assert not (tmp_path / "fail.jsonl").exists()
    # stopped early: Ray Data leaves the prefetcher's thread running; the call stopped it before ray.shutdown
    assert [t.name for t in threading.enumerate() if t.name in ("Prefetcher", "iter_threaded")] == []


def test_ray_engine_reads_and_writes_parquet(ray, tiny_bundle, texts, tmp_path):
    import pyarrow.parquet as pq

    data = tmp_path / "data.jsonl"
    _write_input(data, texts)
    rows = [json.loads(line) if line.startswith('{"') else {"sentence": None} for line in data.read_text(encoding="utf-8").splitlines()]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "data.parquet", row_group_size=7)
    common = ["--bundle", str(tiny_bundle), "--top-k", "2", "--chunk-size", "8", "--on-error", "skip", "--no-progress"]
    assert predict_main(common + ["--input", str(data), "--output", str(tmp_path / "onnx.jsonl")]) == 0
    assert predict_main(common + ["--input", str(tmp_path / "data.parquet"), "--output", str(tmp_path / "ray.parquet"),
                                  "--engine", "ray"]) == 0
    got = pq.read_table(tmp_path / "ray.parquet").to_pylist()
    expected = [json.loads(line) for line in (tmp_path / "onnx.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [r["line"] for r in got] == [r["line"] for r in expected]
    for row, record in zip(got, expected):
        if "error" in record:
            assert row["label"] is None and row["error"]
        else:
            assert (row["label"], row["score"], row["top_k"], row["error"]) == \
                (record["label"], record["score"], record["top_k"], None)
    assert got[10]["error"].endswith("line 11: key 'sentence': text must be a string or number, found null")


def test_ray_engine_without_ray_says_how_to_install_it(tiny_bundle, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray now raises ImportError
    (tmp_path / "data.txt").write_text("球赛\n", encoding="utf-8")
    argv = ["--bundle", str(tiny_bundle), "--input", str(tmp_path / "data.txt"), "--output", str(tmp_path / "p.jsonl"),
            "--engine", "ray"]
    assert predict_main(argv) == 2
    assert "the Ray engine needs ray[data] (ray is not installed): pip install 'fewshot[ray]'" in capsys.readouterr().err
