"""Learning from unlabelled text: soft labels, distillation, iPET, self-training, resume, student PLM, CLI."""

import json
import os

import numpy as np
import pytest

from fewshot.classifier import PromptClassifier
from fewshot.cli.train import main as train_main
from fewshot.errors import FewshotError
from fewshot.runtime import OnnxPredictor
from fewshot.tasks import build_task
from fewshot.testing import build_tiny_model
from fewshot.unlabeled import DistillationConfig, class_counts, confident_rows, distill, ensemble_soft_labels
from fewshot.unlabeled.distill import MODEL_DIR, REPORT_NAME, SOFT_LABELS_DIR

from conftest import VOCAB_TEXTS

T1 = "{'text': 'text_a'}这句话的类别是{'mask'}{'mask'}"
T2 = "这条新闻的主题是{'mask'}{'mask'}{'text': 'text_a'}"
ARGS = dict(max_steps=100, learning_rate=5e-3, per_device_train_batch_size=8, seed=0, logging_steps=1000, report_to=[])
OPTIONS = {"max_seq_length": 32}


def _kl(p, q):
    p, q = np.clip(p, 1e-9, 1), np.clip(q, 1e-9, 1)
    return float((p * np.log(p / q)).sum(axis=1).mean())


def _run(model, task_data, output, config=None, **kwargs):
    train, test, words = task_data
    label_words, task = build_task(words)
    config = config or DistillationConfig(patterns=[T1, T2], student_steps=100)
    return distill(model, task, label_words, train, [e.text_a for e in test], output, config, template=T1,
                   eval_data=kwargs.pop("eval_data", test), classifier_options=OPTIONS,
                   training_args={**ARGS, **kwargs.pop("training_args", {})}, progress=False, **kwargs)


def test_soft_labels_are_the_mean_of_the_members_tempered_distributions():
    a = np.array([[0.9, 0.1], [0.2, 0.8]], dtype="float32")
    b = np.array([[0.6, 0.4], [0.5, 0.5]], dtype="float32")
    soft = ensemble_soft_labels("softmax", [a, b], temperature=2.0)

    def tempered(p):
        s = np.sqrt(p)
        return s / s.sum(axis=1, keepdims=True)

    np.testing.assert_allclose(soft, (tempered(a) + tempered(b)) / 2, atol=1e-6)
    np.testing.assert_allclose(ensemble_soft_labels("softmax", [a, b], 1.0), (a + b) / 2, atol=1e-6)
    with pytest.raises(FewshotError, match="different shapes"):
        ensemble_soft_labels("softmax", [a, b[:1]], 2.0)


def test_confident_rows_take_the_surest_rows_of_each_class():
    probs = np.array([[0.9, 0.1], [0.6, 0.4], [0.2, 0.8], [0.7, 0.3], [0.45, 0.55]])
    rows, labels = confident_rows(probs, [2, 1])
    assert rows.tolist() == [0, 2, 3] and labels.tolist() == [0, 1, 0]
    assert class_counts(7, [0.5, 0.25, 0.25]) == [3, 2, 2] and class_counts(4, [1, 1, 2]) == [1, 1, 2]


def test_distillation_trains_the_student_toward_the_ensemble(tiny_model_dir, separable_task, tmp_path):
    train, test, words = separable_task
    config = DistillationConfig(patterns=[T1, T2], temperature=1.0, student_steps=100)
    result = _run(tiny_model_dir, separable_task, tmp_path / "run", config)
    texts = [e.text_a for e in test]
    soft = np.load(tmp_path / "run" / SOFT_LABELS_DIR / "g0.npz")["soft_labels"]
    label_words, task = build_task(words)
    untrained = PromptClassifier.from_task(tiny_model_dir, task, label_words, template=T1, seed=0, **OPTIONS)
    before = _kl(soft, untrained.predict_proba(texts))
    after = _kl(soft, result.classifier.predict_proba(texts))
    assert after < 0.5 * before, (before, after)
    report = json.loads((tmp_path / "run" / REPORT_NAME).read_text(encoding="utf-8"))
    assert set(report["member_metrics"]) == {"g0-0", "g0-1"}
    assert report["ensemble"]["accuracy"] >= 0.9 and report["student"]["accuracy"] >= 0.9
    again = PromptClassifier.load(tmp_path / "run" / MODEL_DIR)
    np.testing.assert_array_equal(again.predict_proba(texts), result.classifier.predict_proba(texts))


def test_fit_trains_on_soft_targets_that_contradict_nothing_it_was_told(tiny_model_dir, separable_task):
    """Soft targets alone (labelled rows repeated once) move the model toward them: texts whose cues say one
    class, softly labelled as another, end up predicted as that other class."""
    train, test, words = separable_task
    label_words, task = build_task(words)
    clf = PromptClassifier.from_task(tiny_model_dir, task, label_words, template=T1, seed=0, **OPTIONS)
    texts = [e.text_a for e in test]
    shifted = np.roll(np.eye(3, dtype="float32")[[task.target(e.label) for e in test]], 1, axis=1) * 0.8 + 0.2 / 3
    clf.fit(train[:3], soft_targets=(texts, shifted), max_steps=60, learning_rate=5e-3, seed=0,
            logging_steps=1000, report_to=[], disable_tqdm=True)
    agree = (clf.predict_proba(texts).argmax(axis=1) == shifted.argmax(axis=1)).mean()
    assert agree >= 0.8
    with pytest.raises(FewshotError, match="soft targets have shape"):
        clf.fit(train, soft_targets=(texts, shifted[:, :2]), max_steps=1)


def test_resume_after_an_interruption_does_not_retrain_finished_members(tiny_model_dir, separable_task, tmp_path,
                                                                          monkeypatch):
    calls = []
    original = PromptClassifier.fit

    def interrupted(self, *args, **kwargs):
        calls.append(self.template.text)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return original(self, *args, **kwargs)

    monkeypatch.setattr(PromptClassifier, "fit", interrupted)
    with pytest.raises(KeyboardInterrupt):
        _run(tiny_model_dir, separable_task, tmp_path / "run")
    first = tmp_path / "run" / "members" / "g0-0"
    assert (first / "fewshot_config.json").is_file()
    assert not (tmp_path / "run" / "members" / "g0-1").exists()
    stamp = os.stat(first / "fewshot_config.json").st_mtime_ns
    predictions = (tmp_path / "run" / SOFT_LABELS_DIR / "g0-0.npz").read_bytes()

    calls.clear()
    monkeypatch.setattr(PromptClassifier, "fit", lambda self, *a, **k: (calls.append(self.template.text),
                                                                       original(self, *a, **k))[1])
    result = _run(tiny_model_dir, separable_task, tmp_path / "run")
    assert calls == [T2, T1]  # member g0-1 and the student; g0-0 was not retrained
    assert os.stat(first / "fewshot_config.json").st_mtime_ns == stamp
    assert (tmp_path / "run" / SOFT_LABELS_DIR / "g0-0.npz").read_bytes() == predictions

    calls.clear()
    again = _run(tiny_model_dir, separable_task, tmp_path / "run")
    assert calls == []
    assert again.report["student"] == result.report["student"]


def test_runs_share_members_and_refuse_members_made_otherwise(tiny_model_dir, separable_task, tmp_path, monkeypatch):
    calls = []
    original = PromptClassifier.fit
    monkeypatch.setattr(PromptClassifier, "fit", lambda self, *a, **k: (calls.append(self.template.text),
                                                                       original(self, *a, **k))[1])
    steps = {"max_steps": 5}
    _run(tiny_model_dir, separable_task, tmp_path / "run", DistillationConfig(patterns=[T1, T2], student_steps=5),
         training_args=steps)
    assert len(calls) == 3
    calls.clear()  # only the student's settings change: only the student is trained again
    _run(tiny_model_dir, separable_task, tmp_path / "run", DistillationConfig(patterns=[T1, T2], student_steps=6),
         training_args=steps)
    assert calls == [T1]
    calls.clear()  # a second generation reuses the first
    result = _run(tiny_model_dir, separable_task, tmp_path / "run",
                  DistillationConfig(patterns=[T1, T2], generations=2, student_steps=6), training_args=steps)
    assert calls == [T1, T2, T1] and sorted(result.report["member_metrics"]) == ["g1-0", "g1-1"]
    with pytest.raises(FewshotError, match="member\\(s\\) g0-0, g0-1 were trained with other settings"):
        _run(tiny_model_dir, separable_task, tmp_path / "run", DistillationConfig(patterns=[T2, T1], student_steps=5),
             training_args=steps)


def test_ipet_generations_and_self_training_train_on_confident_pseudo_labels(tiny_model_dir, separable_task, tmp_path,
                                                                               monkeypatch):
    seen = []
    original = PromptClassifier.fit

    def recording(self, train, *args, soft_targets=None, **kwargs):
        seen.append(None if soft_targets is None else (len(soft_targets[0]), np.asarray(soft_targets[1])))
        return original(self, train, *args, soft_targets=soft_targets, **kwargs)

    monkeypatch.setattr(PromptClassifier, "fit", recording)
    config = DistillationConfig(patterns=[T1, T2], generations=2, ipet_growth=0.25, pseudo_labels=9, student_steps=5)
    result = _run(tiny_model_dir, separable_task, tmp_path / "run", config)
    assert seen[:2] == [None, None]
    for count, targets in seen[2:4]:  # generation 2: 48 labelled rows x 0.25 pseudo-labelled texts, 4 per class
        assert count == 12 and (targets.sum(axis=0) == 4).all() and set(np.unique(targets)) <= {0.0, 1.0}
    count, targets = seen[4]  # the student: 9 confident texts, hard labels, 3 per class like the labelled rows
    assert count == 9 and (targets.sum(axis=0) == 3).all()
    assert sorted(result.report["member_metrics"]) == ["g1-0", "g1-1"]


def test_multi_label_distils_on_sigmoid_soft_labels_and_refuses_pseudo_labels(tiny_model_dir, tmp_path):
    rows = [("球赛跑", ["sports"]), ("股价钱", ["finance"]), ("球赛股价", ["sports", "finance"]), ("雨雪风", ["weather"])]
    label_words, task = build_task({"sports": "体育", "finance": "财经", "weather": "天气"}, multi_label=True)
    train = [(text, ",".join(labels)) for text, labels in rows * 3]
    texts = ["球赛", "股价", "雨雪", "球赛雨"]
    result = distill(tiny_model_dir, task, label_words, train, texts, tmp_path / "run",
                     DistillationConfig(patterns=[T1, T2], student_steps=10), template=T1, classifier_options=OPTIONS,
                     training_args={**ARGS, "max_steps": 10}, progress=False)
    soft = np.load(tmp_path / "run" / SOFT_LABELS_DIR / "g0.npz")["soft_labels"]
    assert soft.shape == (4, 3) and not np.allclose(soft.sum(axis=1), 1.0)
    assert all(isinstance(labels, list) for labels in result.classifier.predict(texts))
    with pytest.raises(FewshotError, match="self-training .* does not apply to multi-label"):
        distill(tiny_model_dir, task, label_words, train, texts, tmp_path / "other",
                DistillationConfig(pseudo_labels=2), template=T1, classifier_options=OPTIONS, progress=False)


def test_a_smaller_student_plm_is_an_ordinary_classifier(tiny_model_dir, separable_task, tmp_path):
    train, test, _ = separable_task
    student_dir = build_tiny_model(tmp_path / "small", VOCAB_TEXTS + [e.text_a for e in train + test],
                                   hidden_size=16, num_layers=1, intermediate_size=32, seed=1)
    config = DistillationConfig(patterns=[T1, T2], student_model=student_dir, student_template=T2, student_steps=40)
    result = _run(tiny_model_dir, separable_task, tmp_path / "run", config)
    assert result.classifier.model.plm.base_model.config.hidden_size == 16
    assert result.classifier.template.text == T2
    assert result.report["student"]["accuracy"] > 0
    texts = [e.text_a for e in test]
    bundle = PromptClassifier.load(tmp_path / "run" / MODEL_DIR).export(tmp_path / "bundle", onnx=True)
    np.testing.assert_allclose(OnnxPredictor(bundle).predict_proba(texts), result.classifier.predict_proba(texts),
                               atol=1e-5)


def test_fewshot_train_unlabeled_writes_the_run_and_the_distilled_classifier(tiny_model_dir, separable_task, tmp_path,
                                                                              capsys):
    train, test, words = separable_task
    (tmp_path / "label.txt").write_text("".join(f"{k}=={v[0]}\n" for k, v in words.items()), encoding="utf-8")
    (tmp_path / "train.txt").write_text("".join(f"{e.text_a}\t{e.label}\n" for e in train), encoding="utf-8")
    (tmp_path / "texts.txt").write_text("".join(f"{e.text_a}\n" for e in test), encoding="utf-8")
    argv = ["--train", str(tmp_path / "train.txt"), "--dev", str(tmp_path / "train.txt"),
            "--labels", str(tmp_path / "label.txt"), "--model", tiny_model_dir, "--output", str(tmp_path / "out"),
            "--unlabeled", str(tmp_path / "texts.txt"), "--pattern", T1, "--pattern", T2, "--student-steps", "20",
            "--max-steps", "20", "--learning-rate", "5e-3", "--max-seq-length", "32"]
    code, err = train_main(argv), capsys.readouterr().err
    assert code == 0, err
    assert "distillation: training the student on 48 soft-labelled texts" in err
    report = json.loads((tmp_path / "out" / REPORT_NAME).read_text(encoding="utf-8"))
    assert set(report["member_metrics"]) == {"g0-0", "g0-1"} and "accuracy" in report["ensemble"]
    clf = PromptClassifier.load(tmp_path / "out" / MODEL_DIR)
    assert clf.template.text == T1
    assert train_main(argv) == 0  # resumes: everything is there
    assert "distillation: training" not in capsys.readouterr().err
    assert train_main([*argv[:-4], "--max-steps", "21", "--learning-rate", "5e-3", "--max-seq-length", "32"]) == 2
    assert "were trained with other settings" in capsys.readouterr().err


def test_distillation_options_need_unlabeled(capsys):
    with pytest.raises(SystemExit):
        train_main(["--train", "t", "--labels", "l", "--model", "m", "--output", "o", "--pattern", T1])
    assert "--pattern applies to --unlabeled only" in capsys.readouterr().err


def test_rdrop_loss_takes_soft_targets_like_class_ids(tiny_model_dir, separable_task):
    import paddle

    from fewshot.training.arguments import PromptTrainingArguments
    from fewshot.training.trainer import PromptTrainer, make_collator

    train, _, words = separable_task
    label_words, task = build_task(words)
    clf = PromptClassifier.from_task(tiny_model_dir, task, label_words, template=T1, seed=0, **OPTIONS)
    trainer = PromptTrainer(model=clf.model, args=PromptTrainingArguments(output_dir="/tmp/unused", use_rdrop=True),
                            task=task)
    losses = []
    for soft in (False, True):
        batch = make_collator(0)(clf.encode(train[:8], with_labels=True, soft=soft))
        assert batch["labels"].dtype == (np.float32 if soft else np.int64)
        clf.model.train()
        paddle.seed(3)
        losses.append(float(trainer.compute_loss(clf.model, {k: paddle.to_tensor(v) for k, v in batch.items()})))
    assert losses[1] == pytest.approx(losses[0], rel=1e-5)
