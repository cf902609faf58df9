"""The runtime installs and runs without Paddle: a virtual environment with only ``pip install fewshot``
(no extras) predicts with a bundle exported here, as the classifier does.

``.ci/run`` creates that environment (``.venv-runtime``) and sets ``FEWSHOT_RUNTIME_VENV``; without
the variable (a developer's quick run) the test is skipped, with it a missing environment fails.
"""

import json
import os
import subprocess
from pathlib import Path

import pytest

from fewshot.classifier import PromptClassifier

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = "{'text': 'text_a'}这句话的类别是{'mask'}{'mask'}"


@pytest.fixture(scope="module")
def runtime_venv():
    name = os.environ.get("FEWSHOT_RUNTIME_VENV")
    if not name:
        pytest.skip("FEWSHOT_RUNTIME_VENV is not set (bash .ci/run creates the runtime-only environment)")
    venv = (ROOT / name).resolve()
    assert (venv / "bin" / "fewshot-predict").is_file(), f"{venv}: no runtime-only environment with fewshot-predict"
    return venv


def test_runtime_only_environment_has_no_paddle(runtime_venv):
    result = subprocess.run([str(runtime_venv / "bin" / "python"), "-c", "import paddle"], capture_output=True, text=True)
    assert result.returncode != 0 and "No module named 'paddle'" in result.stderr


def test_runtime_only_fewshot_predict_matches_the_classifier(runtime_venv, tiny_model_dir, separable_task, tmp_path):
    train, test, words = separable_task
    clf = PromptClassifier(tiny_model_dir, labels=words, template=TEMPLATE, max_seq_length=32, seed=0)
    clf.fit(train, max_steps=10, learning_rate=5e-3, disable_tqdm=True, logging_steps=1000)
    bundle = clf.export(tmp_path / "bundle", int8=True)
    texts = [e.text_a for e in test]
    (tmp_path / "data.txt").write_text("\n".join(texts) + "\n", encoding="utf-8")
    for precision in ("fp32", "int8"):
        out = tmp_path / f"predictions.{precision}.jsonl"
        result = subprocess.run(
            [str(runtime_venv / "bin" / "fewshot-predict"), "--bundle", str(bundle), "--input", str(tmp_path / "data.txt"),
             "--output", str(out), "--precision", precision, "--no-progress"],
            capture_output=True, text=True,
        )
        assert result.returncode == 0, result.stderr
        records = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
        assert [r["line"] for r in records] == list(range(1, len(texts) + 1))
        if precision == "fp32":
            assert [r["label"] for r in records] == clf.predict(texts)
            best = clf.predict_proba(texts).max(axis=1)
            assert [r["score"] for r in records] == pytest.approx(best.tolist(), abs=1e-4)
