"""Early stopping on a dev metric in ``fit`` and ``fewshot-train`` (fewshot.training.early_stopping)."""

import hashlib
import json

import pytest
from paddlenlp.trainer import TrainerCallback

from fewshot.classifier import PromptClassifier
from fewshot.cli.train import main as train_main
from fewshot.errors import FewshotError
from fewshot.training.early_stopping import EarlyStopping

TEMPLATE = "{'text': 'text_a'}这句话的类别是{'mask'}{'mask'}"


def weights_digest(model):
    return hashlib.sha256(b"".join(v.numpy().tobytes() for v in model.state_dict().values())).hexdigest()


class WeightsAtEvaluation(TrainerCallback):
    """The digest of the model's weights at each evaluation, by step."""

    def __init__(self):
        self.digests = {}

    def on_evaluate(self, args, state, control, **kwargs):
        self.digests[state.global_step] = weights_digest(kwargs["model"])


def classifier(model_dir, words):
    return PromptClassifier(model_dir, labels=words, template=TEMPLATE, max_seq_length=32, seed=0)


def test_patience_counts_evaluations_without_improvement_beyond_the_threshold():
    stopper = EarlyStopping(patience=2, threshold=0.05)
    assert [stopper.record(v, greater_is_better=False) for v in (1.0, 0.9, 0.88, 0.7, 0.69)] == [
        True, True, False, True, False]
    assert not stopper.should_stop() and stopper.best_metric == 0.7
    assert stopper.record(0.71, greater_is_better=False) is False and stopper.should_stop()
    with pytest.raises(FewshotError, match="patience must be at least 1, got 0"):
        EarlyStopping(patience=0)


def test_fit_stops_after_patience_evaluations_and_keeps_the_best_weights(tiny_model_dir, separable_task):
    train, dev, words = separable_task
    clf = classifier(tiny_model_dir, words)
    seen = WeightsAtEvaluation()
    metrics = clf.fit(train, eval_data=dev, max_steps=300, eval_steps=4, learning_rate=5e-3, logging_steps=4,
                      per_device_train_batch_size=8, early_stopping_patience=2, metric_for_best_model="accuracy",
                      callbacks=[seen])
    summary = metrics["early_stopping"]
    # it stopped: two evaluations after the last improvement, long before max_steps
    assert metrics["train_steps"] == summary["best_step"] + 2 * 4 < 300
    assert summary["evaluations"] == len(seen.digests) == metrics["train_steps"] // 4
    # the model holds the weights of the best evaluation, not those of the last step
    assert weights_digest(clf.model) == seen.digests[summary["best_step"]] != seen.digests[metrics["train_steps"]]
    assert clf.evaluate(dev)["accuracy"] == pytest.approx(summary["best_metric"])
    assert metrics["eval_accuracy"] == pytest.approx(summary["best_metric"])


def test_early_stopping_needs_dev_data_and_a_known_metric(tiny_model_dir, separable_task):
    train, dev, words = separable_task
    clf = classifier(tiny_model_dir, words)
    with pytest.raises(FewshotError, match="early_stopping_patience needs eval_data"):
        clf.fit(train, max_steps=4, early_stopping_patience=1)
    with pytest.raises(FewshotError, match="early_stopping_patience must be ≥ 0, got -1"):
        clf.fit(train, eval_data=dev, max_steps=4, early_stopping_patience=-1)
    with pytest.raises(FewshotError, match="metric 'eval_f1' is not among the evaluation metrics .*eval_accuracy"):
        clf.fit(train, eval_data=dev, max_steps=4, eval_steps=2, early_stopping_patience=1, metric_for_best_model="f1")


def test_fewshot_train_early_stop_nums_stops_on_the_dev_loss(tiny_model_dir, separable_task, tmp_path):
    train, dev, words = separable_task
    for name, rows in (("train.txt", train), ("dev.txt", dev)):
        (tmp_path / name).write_text("".join(f"{e.text_a}\t{e.label}\n" for e in rows), encoding="utf-8")
    (tmp_path / "label.txt").write_text("".join(f"{k}=={w[0]}\n" for k, w in words.items()), encoding="utf-8")
    argv = ["--train", str(tmp_path / "train.txt"), "--dev", str(tmp_path / "dev.txt"), "--labels",
            str(tmp_path / "label.txt"), "--model", tiny_model_dir, "--template", TEMPLATE, "--max-seq-length", "32",
            "--output", str(tmp_path / "out"), "--max-steps", "400", "--eval-steps", "4", "--learning-rate", "5e-2",
            "--early_stop_nums", "1"]
    assert train_main(argv) == 0
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["train_steps"] == metrics["early_stopping"]["best_step"] + 4 < 400
