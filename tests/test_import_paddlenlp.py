"""Importing a checkpoint of PaddleNLP's few-shot example: a tiny paddlenlp.prompt model trained and saved
in-process by PaddleNLP's own PromptTrainer, imported, predicts the probabilities paddlenlp.prompt
predicts (1e-5), through PromptClassifier, after save/load, and through the exported bundle."""

import numpy as np
import paddle
import pytest

from fewshot.classifier import PromptClassifier
from fewshot.cli.import_paddlenlp import main as import_main
from fewshot.errors import BundleError
from fewshot.inference import OnnxPredictor

pytest.importorskip("paddlenlp.prompt")

WORDS = {"weather": ["天气"], "finance": ["财经"], "sports": ["体育"]}
TRAIN = [("球赛跑的", "sports"), ("股价钱", "finance"), ("雨雪风天", "weather"), ("赛跑球", "sports")]
TEXTS = ["球赛跑的", "股价钱", "雨雪风天", "xyz 球 ¿?", "这条新闻的主题是" * 6]
MAX_LENGTH = 24


def _paddlenlp_checkpoint(model_dir, out, soft, prompt):
    """Train 3 steps with PaddleNLP's PromptTrainer and save as its few-shot example does; returns the
    model's probabilities on TEXTS."""
    from paddlenlp.datasets import MapDataset
    from paddlenlp.prompt import (AutoTemplate, ManualVerbalizer, PromptModelForSequenceClassification,
                                  PromptTrainer, PromptTuningArguments, SoftVerbalizer)
    from paddlenlp.transformers import AutoTokenizer, ErnieForMaskedLM

    paddle.seed(0)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    plm = ErnieForMaskedLM.from_pretrained(model_dir)
    template = AutoTemplate.create_from(prompt, tokenizer, MAX_LENGTH, model=plm)
    verbalizer = SoftVerbalizer(WORDS, tokenizer, plm) if soft else ManualVerbalizer(WORDS, tokenizer)
    model = PromptModelForSequenceClassification(plm, template, verbalizer)
    args = PromptTuningArguments(output_dir=str(out), max_steps=3, per_device_train_batch_size=2, learning_rate=1e-3,
                                 ppt_learning_rate=1e-2, max_seq_length=MAX_LENGTH, save_strategy="no",
                                 logging_steps=100, report_to=[], disable_tqdm=True, seed=0)
    labels = verbalizer.labels_to_ids
    train = MapDataset([{"text_a": text, "labels": labels[label]} for text, label in TRAIN])
    trainer = PromptTrainer(model=model, tokenizer=tokenizer, args=args, criterion=paddle.nn.CrossEntropyLoss(),
                            train_dataset=train)
    trainer.train()
    trainer.save_model(str(out))
    model.eval()
    probs = []
    with paddle.no_grad():
        for text in TEXTS:
            encoded = template({"text_a": text})
            names = ("input_ids", "token_type_ids", "position_ids", "soft_token_ids", "encoder_ids")
            inputs = {k: paddle.to_tensor([encoded[k]]) for k in names if k in encoded}
            logits = model(**inputs, masked_positions=paddle.to_tensor(encoded["masked_positions"]))
            probs.append(paddle.nn.functional.softmax(logits.reshape([1, -1]), axis=-1).numpy()[0])
    return verbalizer.labels, np.array(probs)


@pytest.fixture(scope="module", params=[
    (True, "这句话的类别是"),
    (False, "{'text': 'text_a'}{'hard': '这句话的类别是'}{'mask'}{'mask'}"),
    (False, "{'soft': '主题'}{'text': 'text_a'}{'soft': None, 'length': 2}{'mask'}"),
], ids=["soft-verbalizer-short-prompt", "manual-verbalizer-two-masks", "soft-template-manual-verbalizer"])
def checkpoint(request, tiny_model_dir, tmp_path_factory):
    soft, prompt = request.param
    out = tmp_path_factory.mktemp("paddlenlp-checkpoint")
    labels, probs = _paddlenlp_checkpoint(tiny_model_dir, out, soft, prompt)
    return out, labels, probs, soft


def test_imported_checkpoint_predicts_what_paddlenlp_predicts(checkpoint, tiny_model_dir, tmp_path):
    out, labels, expected, soft = checkpoint
    clf = PromptClassifier.from_paddlenlp(out, base_model=tiny_model_dir, trust_pickle=True)
    assert clf.labels == labels == sorted(WORDS)
    assert clf.config()["verbalizer"] == ("soft" if soft else "paddlenlp")
    assert clf.max_seq_length == MAX_LENGTH and clf.template.style.name == "paddlenlp"
    np.testing.assert_allclose(clf.predict_proba(TEXTS), expected, rtol=0, atol=1e-5)
    # The trained weights matter: the base model with the same template and verbalizer predicts otherwise.
    assert np.abs(clf.untrained_copy().predict_proba(TEXTS) - expected).max() > 1e-3
    loaded = PromptClassifier.load(clf.save(tmp_path / "clf"))
    assert not list((tmp_path / "clf").rglob("*.pdparams"))
    np.testing.assert_allclose(loaded.predict_proba(TEXTS), expected, rtol=0, atol=1e-5)
    predictor = OnnxPredictor(loaded.export(tmp_path / "bundle"))
    np.testing.assert_allclose(predictor.predict_proba(TEXTS), expected, rtol=0, atol=1e-5)
    assert predictor.labels == labels


def test_pickle_is_refused_without_trust(checkpoint, tiny_model_dir):
    out = checkpoint[0]
    with pytest.raises(BundleError, match="PaddleNLP saves weights as a pickle, and loading a pickle can run code"):
        PromptClassifier.from_paddlenlp(out, base_model=tiny_model_dir)


def test_import_cli(checkpoint, tiny_model_dir, tmp_path, capsys):
    out, _, expected, _ = checkpoint
    assert import_main(["--paddlenlp", str(out), "--output", str(tmp_path / "clf"), "--model", tiny_model_dir]) == 2
    assert "--trust-pickle" in capsys.readouterr().err
    assert import_main(["--paddlenlp", str(out), "--output", str(tmp_path / "clf"),
                        "--model_name_or_path", tiny_model_dir, "--trust-pickle"]) == 0
    assert "fewshot-import: wrote" in capsys.readouterr().out
    np.testing.assert_allclose(PromptClassifier.load(tmp_path / "clf").predict_proba(TEXTS), expected, atol=1e-5)


def test_not_a_checkpoint_and_missing_base_model_are_one_line_errors(checkpoint, tmp_path, capsys):
    assert import_main(["--paddlenlp", str(tmp_path), "--output", str(tmp_path / "o"), "--trust-pickle"]) == 2
    assert "no model_state.pdparams; not a checkpoint written by PaddleNLP's PromptTrainer" in capsys.readouterr().err
    assert import_main(["--paddlenlp", str(checkpoint[0]), "--output", str(tmp_path / "o"), "--trust-pickle"]) == 2
    assert "give the base model it was trained from (--model" in capsys.readouterr().err


def test_template_config_given_as_the_template_is_read_as_one(tmp_path):
    from fewshot.cli.train import build_parser, template_from_args

    path = tmp_path / "template_config.json"
    path.write_text('[{"text": "text_a"}, {"hard": "主题是"}, {"soft": ["[UNK]", "[UNK]"]}, {"mask": null}]\n'
                    '{"class": "SoftTemplate"}\n', encoding="utf-8")
    args = build_parser().parse_args(["--train", "t", "--labels", "l", "--model", "m", "--output", "o",
                                      "--template", str(path)])
    assert template_from_args(args) == "{'text': 'text_a'}{'hard': '主题是'}{'soft': None, 'length': 2}{'mask': None}"
    args.template = "这条新闻的主题是"
    assert template_from_args(args) == "这条新闻的主题是"
