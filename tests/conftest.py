"""Shared fixtures: a tiny random ERNIE masked LM built once per test session, and shared data paths."""

from pathlib import Path

import pytest

from fewshot.testing import build_tiny_model, make_separable_task

SHARED = Path(__file__).resolve().parents[2] / "shared"
TNEWS = SHARED / "fewclue" / "tnews"

# Every character the tests tokenize: templates, label words, synthetic task texts.
VOCAB_TEXTS = [
    "这条新闻的主题是这句话的类别是初始化文字主题",
    "体育财经天气汽车新闻国际娱乐",
    "球赛跑股价钱雨雪风",
]


def pytest_configure(config):
    config.addinivalue_line("markers", "shared: needs ../shared (FewCLUE data or real checkpoints)")


@pytest.fixture(scope="session")
def separable_task():
    """(train, test, label_words) of the synthetic 3-class task."""
    return make_separable_task(n_per_class=16, seed=0)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, separable_task):
    """Directory of a tiny random ERNIE MLM (hidden 32, 2 layers) whose vocabulary covers the tests' texts."""
    train, test, _ = separable_task
    texts = VOCAB_TEXTS + [e.text_a for e in train + test]
    return build_tiny_model(tmp_path_factory.mktemp("tiny-ernie"), texts, seed=0)


@pytest.fixture(scope="session")
def tiny_tokenizer(tiny_model_dir):
    from paddlenlp.transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model_dir)


@pytest.fixture(scope="session")
def tiny_bundle(tiny_model_dir, separable_task, tmp_path_factory):
    """An exported bundle (fp32 and int8) of an untrained single-label prompt classifier on the tiny model."""
    from fewshot.classifier import PromptClassifier

    _, _, words = separable_task
    clf = PromptClassifier(tiny_model_dir, labels=words, template="{'text': 'text_a'}这句话的类别是{'mask'}{'mask'}",
                           max_seq_length=32, seed=0)
    return clf.export(tmp_path_factory.mktemp("tiny-bundle") / "bundle", int8=True)


@pytest.fixture
def tnews_dir():
    """The FewCLUE TNEWS folder in ../shared, or skip."""
    if not (TNEWS / "train_0.json").is_file():
        pytest.skip("../shared/fewclue/tnews is not present")
    return TNEWS
