"""PromptClassifier end to end on a tiny model: zero-shot, training, losses, save/load, CLI."""

import json
import shutil

import numpy as np
import paddle
import pytest

from fewshot.classifier import PromptClassifier
from fewshot.cli.train import main as train_main
from fewshot.errors import BundleError, DataError
from fewshot.training.arguments import PromptTrainingArguments
from fewshot.training.datasets import ListDataset as EncodedDataset
from fewshot.training.trainer import PromptTrainer, make_collator

TEMPLATE = "{'text': 'text_a'}这句话的类别是{'mask'}{'mask'}"
FAST = dict(disable_tqdm=True, logging_steps=1000, evaluation_strategy="no", report_to=[])


def _clf(model_dir, label_words, **kwargs):
    kwargs.setdefault("template", TEMPLATE)
    return PromptClassifier(model_dir, labels=label_words, max_seq_length=32, seed=0, **kwargs)


def test_zero_shot_predict_before_fit(tiny_model_dir, separable_task):
    train, test, words = separable_task
    clf = _clf(tiny_model_dir, words)
    proba = clf.predict_proba([e.text_a for e in test])
    assert proba.shape == (len(test), 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)
    assert set(clf.predict([e.text_a for e in test])) <= set(words)


def test_learns_separable_task_and_reloads_identically(tiny_model_dir, separable_task, tmp_path):
    train, test, words = separable_task
    clf = _clf(tiny_model_dir, words)
    before = clf.evaluate(test)["accuracy"]
    clf.fit(train, max_steps=100, learning_rate=5e-3, per_device_train_batch_size=8, seed=0, **FAST)
    metrics = clf.evaluate(test, report=True)
    assert metrics["accuracy"] >= 0.9, (before, metrics)
    assert set(metrics["per_class"]) >= set(words)

    clf.save(tmp_path / "clf")
    again = PromptClassifier.load(tmp_path / "clf")
    texts = [e.text_a for e in test]
    np.testing.assert_array_equal(again.predict_proba(texts), clf.predict_proba(texts))
    assert again.predict(texts) == clf.predict(texts)


def test_soft_verbalizer_and_lstm_soft_prompt_train_and_round_trip(tiny_model_dir, separable_task, tmp_path):
    train, test, words = separable_task
    template = "{'soft': None, 'length': 2, 'encoder': 'lstm', 'hidden_size': 16}{'text': 'text_a'}{'mask'}{'mask'}"
    clf = _clf(tiny_model_dir, words, template=template, verbalizer="soft")
    clf.fit(train, max_steps=100, learning_rate=5e-3, ppt_learning_rate=3e-3, seed=0, **FAST)
    assert clf.evaluate(test)["accuracy"] >= 0.9
    clf.save(tmp_path / "soft")
    again = PromptClassifier.load(tmp_path / "soft")
    texts = [e.text_a for e in test]
    np.testing.assert_array_equal(again.predict_proba(texts), clf.predict_proba(texts))


def _loss(clf, rows, **flags):
    args = PromptTrainingArguments(output_dir="/tmp/unused", **flags)
    trainer = PromptTrainer(model=clf.model, args=args, task=clf.task)
    batch = {k: paddle.to_tensor(v) for k, v in make_collator(0)(rows).items()}
    clf.model.train()
    paddle.seed(1)
    return float(trainer.compute_loss(clf.model, batch))


def test_rdrop_and_rgl_change_the_loss(tiny_model_dir, separable_task):
    train, _, words = separable_task
    clf = _clf(tiny_model_dir, words)
    rows = clf.encode(train[:8], with_labels=True)
    plain = _loss(clf, rows)
    rdrop = _loss(clf, rows, use_rdrop=True, alpha_rdrop=5.0)
    rgl = _loss(clf, rows, use_rgl=True, alpha_rgl=0.5)
    assert rdrop != pytest.approx(plain, abs=1e-4)
    assert rgl > plain


@pytest.mark.parametrize(
    "flags", [{"use_rdrop": True, "alpha_rdrop": 1.0, "max_steps": 60}, {"use_rgl": True, "max_steps": 100}]
)
def test_rdrop_and_rgl_train(tiny_model_dir, separable_task, flags):
    train, test, words = separable_task
    clf = _clf(tiny_model_dir, words)
    clf.fit(train, learning_rate=5e-3, seed=0, **flags, **FAST)
    assert clf.evaluate(test)["accuracy"] >= 0.9


def test_freeze_plm_trains_only_prompt_parameters(tiny_model_dir, separable_task):
    train, _, words = separable_task
    clf = _clf(tiny_model_dir, words, template="{'soft'}{'text': 'text_a'}{'mask'}{'mask'}", verbalizer="soft")
    plm_before = {k: v.numpy().copy() for k, v in clf.model.plm.state_dict().items()}
    head_before = clf.model.verbalizer.weight.numpy().copy()
    clf.fit(train, max_steps=5, learning_rate=1e-2, freeze_plm=True, **FAST)
    for key, value in clf.model.plm.state_dict().items():
        np.testing.assert_array_equal(value.numpy(), plm_before[key], err_msg=key)
    assert not np.allclose(clf.model.verbalizer.weight.numpy(), head_before)


def test_prompt_parameters_get_their_own_learning_rate(tiny_model_dir, separable_task):
    train, _, words = separable_task
    clf = _clf(tiny_model_dir, words, template="{'soft'}{'text': 'text_a'}{'mask'}{'mask'}")
    args = PromptTrainingArguments(output_dir="/tmp/unused", learning_rate=1e-4, ppt_learning_rate=1e-2)
    trainer = PromptTrainer(model=clf.model, args=args, task=clf.task, train_dataset=EncodedDataset(clf.encode(train, True)))
    trainer.create_optimizer_and_scheduler(num_training_steps=10)
    soft = clf.model.soft_prompt.embedding
    assert soft.optimize_attr["learning_rate"] == pytest.approx(100.0)
    assert clf.model.plm.get_input_embeddings().weight.optimize_attr["learning_rate"] == 1.0


def test_unknown_label_in_training_data_names_the_row(tiny_model_dir, separable_task):
    _, _, words = separable_task
    clf = _clf(tiny_model_dir, words)
    with pytest.raises(DataError, match="row 1: unknown label 'sport'"):
        clf.fit([("球赛", "sports"), ("球赛", "sport")], max_steps=1, **FAST)


def test_load_rejects_missing_or_corrupt_config(tiny_model_dir, separable_task, tmp_path):
    _, _, words = separable_task
    _clf(tiny_model_dir, words).save(tmp_path / "clf")
    (tmp_path / "clf" / "fewshot_config.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(BundleError, match="fewshot_config.json: not valid JSON"):
        PromptClassifier.load(tmp_path / "clf")
    with pytest.raises(BundleError, match="not a saved PromptClassifier"):
        PromptClassifier.load(tmp_path)


def test_failed_save_keeps_previous_directory(tiny_model_dir, separable_task, tmp_path, monkeypatch):
    _, _, words = separable_task
    clf = _clf(tiny_model_dir, words)
    clf.save(tmp_path / "clf")
    before = sorted(p.name for p in (tmp_path / "clf").iterdir())

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(clf.tokenizer, "save_pretrained", broken)  # after the PLM weights are written
    with pytest.raises(OSError, match="disk full"):
        clf.save(tmp_path / "clf")
    assert sorted(p.name for p in (tmp_path / "clf").iterdir()) == before
    assert [p.name for p in tmp_path.iterdir()] == ["clf"]
    PromptClassifier.load(tmp_path / "clf")


def _write_tsv(path, examples):
    path.write_text("".join(f"{e.text_a}\t{e.label}\n" for e in examples), encoding="utf-8")


def test_fewshot_train_cli_writes_loadable_model_and_metrics(tiny_model_dir, separable_task, tmp_path, capsys):
    train, test, words = separable_task
    _write_tsv(tmp_path / "train.txt", train)
    _write_tsv(tmp_path / "dev.txt", test)
    (tmp_path / "label.txt").write_text("".join(f"{k}=={v[0]}\n" for k, v in words.items()), encoding="utf-8")
    code = train_main([
        "--train", str(tmp_path / "train.txt"), "--dev", str(tmp_path / "dev.txt"),
        "--labels", str(tmp_path / "label.txt"), "--model", tiny_model_dir, "--template", TEMPLATE,
        "--output", str(tmp_path / "out"), "--max-steps", "100", "--seed", "0", "--learning-rate", "5e-3", "--max-seq-length", "32",
    ])
    assert code == 0
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["eval_accuracy"] >= 0.9
    clf = PromptClassifier.load(tmp_path / "out")
    assert clf.evaluate(str(tmp_path / "dev.txt"))["accuracy"] == metrics["eval_accuracy"]


def test_fewshot_train_cli_reports_bad_rows(tiny_model_dir, tmp_path, capsys):
    (tmp_path / "train.txt").write_text("球赛\tsports\n股价\tfinance\textra\n", encoding="utf-8")
    (tmp_path / "label.txt").write_text("sports==体育\nfinance==财经\n", encoding="utf-8")
    code = train_main([
        "--train", str(tmp_path / "train.txt"), "--labels", str(tmp_path / "label.txt"),
        "--model", tiny_model_dir, "--output", str(tmp_path / "out"), "--max-seq-length", "32",
    ])
    assert code == 2
    assert "train.txt line 2: expected 2 tab-separated columns" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_load_checks_the_prompt_state_names_and_stays_quiet(tiny_model_dir, separable_task, tmp_path, recwarn):
    _, test, words = separable_task
    clf = _clf(tiny_model_dir, words, template="{'soft'}{'text': 'text_a'}{'mask'}{'mask'}", verbalizer="soft")
    clf.save(tmp_path / "ok")
    again = PromptClassifier.load(tmp_path / "ok")
    assert not [w for w in recwarn if "Skip loading" in str(w.message)]
    texts = [e.text_a for e in test[:4]]
    np.testing.assert_array_equal(again.predict_proba(texts), clf.predict_proba(texts))

    from safetensors.numpy import load_file, save_file

    state_path = tmp_path / "ok" / "prompt_state.safetensors"
    state = load_file(str(state_path))
    name = sorted(state)[0]
    cases = {
        "missing": {k: v for k, v in state.items() if k != name},
        "unexpected": {**state, "extra.weight": np.zeros([2], dtype="float32")},
        "shape": {**state, name: np.zeros([1], dtype="float32")},
    }
    for problem, broken in cases.items():
        shutil.copytree(tmp_path / "ok", tmp_path / problem)
        save_file(broken, str(tmp_path / problem / "prompt_state.safetensors"))
        message = {"missing": f"missing parameters {name}", "unexpected": "unexpected parameters extra.weight",
                   "shape": f"{name} has shape \\[1\\], the model expects"}[problem]
        with pytest.raises(BundleError, match=message):
            PromptClassifier.load(tmp_path / problem)


def test_only_single_label_classifiers_drop_the_vocabulary_normalizer(tiny_model_dir, separable_task):
    _, _, words = separable_task
    assert _clf(tiny_model_dir, words).model.verbalizer.label_words_only
    multi = _clf(tiny_model_dir, words, multi_label=True).model.verbalizer
    assert not multi.inner.label_words_only
