"""The embedding baselines (embed-lr, SetFit-style) on the tiny model: fit, predict, evaluate, save, load."""

import numpy as np
import pytest

from fewshot.baselines import BASELINE_METHODS, EmbeddingClassifier
from fewshot.errors import FewshotError


@pytest.fixture(scope="module")
def fitted(tiny_model_dir, separable_task):
    train, _, words = separable_task
    clf = EmbeddingClassifier(tiny_model_dir, labels=words, max_seq_length=32, contrastive_steps=0, seed=0)
    metrics = clf.fit(train)
    return clf, metrics


def test_embed_lr_learns_the_separable_task(fitted, separable_task):
    clf, metrics = fitted
    _, test, words = separable_task
    assert metrics["method"] == "embed-lr" and metrics["train_rows"] == len(separable_task[0])
    probs = clf.predict_proba(test)
    assert probs.shape == (len(test), len(words)) and np.allclose(probs.sum(axis=1), 1, atol=1e-6)
    metrics = clf.evaluate(test)
    assert set(metrics) >= {"accuracy", "macro_f1"} and metrics["accuracy"] > 1 / len(words) + 0.2
    assert clf.predict(test[0].text_a)[0] in words


def test_save_and_load_give_the_same_probabilities(fitted, separable_task, tmp_path):
    clf, _ = fitted
    _, test, _ = separable_task
    clf.save(tmp_path / "baseline")
    again = EmbeddingClassifier.load(tmp_path / "baseline")
    assert again.method == "embed-lr" and list(again.classes_) == list(clf.classes_)
    np.testing.assert_allclose(again.predict_proba(test), clf.predict_proba(test), atol=1e-5)


def test_setfit_contrastive_steps_change_the_encoder_and_reduce_the_loss(tiny_model_dir, separable_task):
    train, test, words = separable_task
    before = EmbeddingClassifier(tiny_model_dir, labels=words, max_seq_length=32, seed=0)
    clf = EmbeddingClassifier(tiny_model_dir, labels=words, max_seq_length=32, seed=0, learning_rate=1e-3,
                              **{**BASELINE_METHODS["setfit"], "contrastive_steps": 12})
    first = clf._contrastive(train)
    assert clf.method == "setfit" and len(first) == 12 and np.mean(first[-4:]) < np.mean(first[:4])
    assert not np.allclose(clf.embed(test[:4]), before.embed(test[:4]))


@pytest.mark.parametrize("option, value", [("max_seq_length", 0), ("learning_rate", float("nan")),
                                           ("contrastive_steps", -1), ("batch_size", 0)])
def test_bad_settings_are_refused_before_the_model_loads(option, value):
    with pytest.raises(FewshotError, match=option):
        EmbeddingClassifier("no-such-model", labels=["a", "b"], **{option: value})


def test_predicting_before_fit_is_a_clear_error(tiny_model_dir):
    clf = EmbeddingClassifier(tiny_model_dir, labels=["体育", "财经"], max_seq_length=32)
    with pytest.raises(FewshotError, match="fit or load"):
        clf.predict(["球赛"])


@pytest.mark.parametrize("method, steps", [("embed-lr", None), ("setfit", 3)])
def test_fewshot_train_method_baseline_saves_a_loadable_classifier(method, steps, tiny_model_dir, separable_task,
                                                                  tmp_path, capsys):
    from fewshot.cli.train import main as train_main

    train, test, words = separable_task
    data = tmp_path / "train.txt"
    data.write_text("".join(f"{e.text_a}\t{e.label}\n" for e in train), encoding="utf-8")
    labels = tmp_path / "label.txt"
    labels.write_text("".join(f"{label}\n" for label in words), encoding="utf-8")
    out = tmp_path / "out"
    argv = ["--train", str(data), "--dev", str(data), "--labels", str(labels), "--model", tiny_model_dir,
            "--output", str(out), "--max-seq-length", "32", "--method", method]
    assert train_main(argv + (["--max-steps", str(steps)] if steps else [])) == 0
    loaded = EmbeddingClassifier.load(out)
    assert loaded.method == method and loaded.contrastive_steps == (steps or 0)
    assert loaded.train_metrics["eval_accuracy"] == pytest.approx(loaded.score(train))
    assert f"saved the {method} baseline" in capsys.readouterr().err


def test_a_saved_baseline_never_runs_a_pickled_shard_index_dropped_into_it(fitted, separable_task, tmp_path):
    import json
    import pickle

    from fewshot.errors import BundleError

    clf, _ = fitted
    clf.save(tmp_path / "baseline")
    plm = tmp_path / "baseline" / "plm"
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    (plm / "shard.pdparams").write_bytes(pickle.dumps(Evil()))
    (plm / "model_state.pdparams.index.json").write_text(json.dumps({"weight_map": {"w": "shard.pdparams"}}),
                                                          encoding="utf-8")
    again = EmbeddingClassifier.load(tmp_path / "baseline")
    assert not marker.exists()
    np.testing.assert_allclose(again.predict_proba(separable_task[1][:4]), clf.predict_proba(separable_task[1][:4]),
                               atol=1e-5)
    (plm / "model.safetensors").unlink()
    with pytest.raises(BundleError, match="pickled weights can run code"):
        EmbeddingClassifier.load(tmp_path / "baseline")
    assert not marker.exists()
