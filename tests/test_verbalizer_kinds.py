"""Verbalizer kinds end to end: each builds through PromptClassifier, saves, loads and exports a bundle
whose onnxruntime probabilities match the dynamic model's."""

import numpy as np
import pytest

from fewshot.classifier import PromptClassifier
from fewshot.inference import OnnxPredictor

ONE_MASK = "{'text': 'text_a'}这句话的类别是{'mask'}"
TEXTS = ["球赛跑的", "股价钱", "雨雪风天", "xyz 球 ¿?"]
WORDS = {"sports": ["体育", "球赛"], "finance": ["财经"], "weather": ["天气"]}


def _round_trip(clf, tmp_path):
    expected = clf.predict_proba(TEXTS)
    loaded = PromptClassifier.load(clf.save(tmp_path / "saved"))
    np.testing.assert_allclose(loaded.predict_proba(TEXTS), expected, atol=1e-6, rtol=0)
    got = OnnxPredictor(loaded.export(tmp_path / "bundle")).predict_proba(TEXTS)
    np.testing.assert_allclose(got, expected, atol=1e-4, rtol=0)
    return expected


def test_one_mask_with_two_character_label_words_trains_saves_and_exports(tiny_model_dir, tmp_path):
    clf = PromptClassifier(tiny_model_dir, labels=WORDS, template=ONE_MASK, max_seq_length=32, seed=0)
    probs = _round_trip(clf, tmp_path)
    assert probs.shape == (len(TEXTS), 3)
