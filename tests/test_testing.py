import json
import os

import numpy as np
import paddle
import pytest
from paddlenlp import transformers

from fewshot.data import Example
from fewshot.testing import (
    SPECIAL_TOKENS,
    _NEUTRAL_CHARS,
    _TASK_CLASSES,
    build_char_vocab,
    build_shaped_model,
    build_tiny_model,
    make_separable_task,
)

TEXTS = ["文登区这些公路将封闭施工，请注意绕行！", "iPhone 15 发布, Café naïve", "这条新闻的主题是"]
CHECKPOINT_FILES = {"config.json", "model_state.pdparams", "vocab.txt", "tokenizer_config.json", "special_tokens_map.json"}


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "model", TEXTS, extra_tokens=["[unused0]"])


def test_vocab_starts_with_special_tokens_and_is_sorted_and_unique():
    vocab = build_char_vocab(TEXTS)
    assert vocab[:5] == list(SPECIAL_TOKENS)
    assert vocab[5:] == sorted(set(vocab[5:]))
    assert {"文", "，", "iphone", "cafe", "naive", "15", "##5", "z", "##z"} <= set(vocab)


def test_vocab_rejects_extra_token_with_whitespace():
    with pytest.raises(ValueError, match="whitespace"):
        build_char_vocab(["a"], extra_tokens=["a b"])


def test_tiny_model_directory_looks_like_a_real_checkpoint(tiny_dir):
    assert CHECKPOINT_FILES <= set(os.listdir(tiny_dir))
    with open(os.path.join(tiny_dir, "config.json"), encoding="utf-8") as handle:
        config = json.load(handle)
    assert config["architectures"] == ["ErnieForMaskedLM"]
    assert config["hidden_size"] == 32 and config["num_hidden_layers"] == 2
    assert config["type_vocab_size"] == 4 and config["use_task_id"] is False
    with open(os.path.join(tiny_dir, "vocab.txt"), encoding="utf-8") as handle:
        assert config["vocab_size"] == len(handle.read().splitlines())


def test_tiny_tokenizer_loads_with_auto_tokenizer_and_never_gives_unk(tiny_dir):
    tokenizer = transformers.AutoTokenizer.from_pretrained(tiny_dir)
    assert type(tokenizer).__name__ == "ErnieTokenizer"
    assert [tokenizer.convert_tokens_to_ids(token) for token in SPECIAL_TOKENS] == [0, 1, 2, 3, 4]
    assert tokenizer.pad_token_id == 0 and tokenizer.mask_token_id == 3
    for text in TEXTS + ["unseen words 42"]:
        assert tokenizer.unk_token_id not in tokenizer(text)["input_ids"]
    assert tokenizer.convert_tokens_to_ids("[unused0]") != tokenizer.unk_token_id


def test_tiny_model_loads_and_predicts_masked_tokens(tiny_dir):
    tokenizer = transformers.AutoTokenizer.from_pretrained(tiny_dir)
    model = transformers.ErnieForMaskedLM.from_pretrained(tiny_dir)
    model.eval()
    encoded = tokenizer(TEXTS[0], return_tensors="pd")
    logits = model(input_ids=encoded["input_ids"], token_type_ids=encoded["token_type_ids"])
    assert logits.shape == [1, encoded["input_ids"].shape[1], tokenizer.vocab_size]
    assert np.isfinite(logits.numpy()).all()


def test_same_seed_gives_same_weights_and_other_seed_differs(tmp_path):
    def weights(name, seed):
        directory = build_tiny_model(tmp_path / name, ["天气"], seed=seed)
        return paddle.load(f"{directory}/model_state.pdparams")

    first, again, other = weights("a", 0), weights("b", 0), weights("c", 1)
    assert first.keys() == again.keys()
    for key in first:
        np.testing.assert_array_equal(first[key].numpy(), again[key].numpy())
    key = "ernie.embeddings.word_embeddings.weight"
    assert not np.array_equal(first[key].numpy(), other[key].numpy())


def test_separable_task_is_deterministic_balanced_and_disjoint():
    train, test, label_words = make_separable_task(n_per_class=8, seed=3)
    again = make_separable_task(n_per_class=8, seed=3)
    assert (train, test, label_words) == again
    assert make_separable_task(n_per_class=8, seed=4)[0] != train
    assert label_words == {"sports": ["体育"], "finance": ["财经"], "weather": ["天气"]}
    for split in (train, test):
        assert len(split) == 24
        assert all(isinstance(example, Example) and example.text_b is None for example in split)
        assert sorted(example.label for example in split) == sorted(["sports", "finance", "weather"] * 8)
    assert not {example.text_a for example in train} & {example.text_a for example in test}


def test_separable_task_texts_carry_only_their_own_class_cues():
    train, test, _ = make_separable_task(n_per_class=16)
    cues = {label: set(chars) for label, _, chars in _TASK_CLASSES}
    for example in train + test:
        present = {label for label, chars in cues.items() if chars & set(example.text_a)}
        assert present == {example.label}
        assert len(cues[example.label] & set(example.text_a)) >= 2


def test_neutral_characters_share_nothing_with_cues_or_label_words():
    reserved = set("".join(word + chars for _, word, chars in _TASK_CLASSES))
    assert not reserved & set(_NEUTRAL_CHARS)


def test_separable_task_with_two_classes():
    train, test, label_words = make_separable_task(n_per_class=4, num_classes=2)
    assert list(label_words) == ["sports", "finance"]
    assert {example.label for example in train + test} == {"sports", "finance"}


def test_shaped_model_has_paddlenlps_configuration_and_a_padded_vocabulary(tmp_path):
    vocab = build_char_vocab(TEXTS)
    model_dir = build_shaped_model(tmp_path / "nano", vocab, "ernie-3.0-nano-zh")
    config = json.loads((tmp_path / "nano" / "config.json").read_text(encoding="utf-8"))
    assert (config["num_hidden_layers"], config["hidden_size"], config["vocab_size"]) == (4, 312, 40000)
    tokenizer = transformers.AutoTokenizer.from_pretrained(model_dir)
    assert len(tokenizer) == 40000
    assert tokenizer.convert_tokens_to_ids(list("这条新闻")) == [vocab.index(c) for c in "这条新闻"]


def test_shaped_model_rejects_an_unknown_shape_and_a_too_large_vocabulary(tmp_path):
    with pytest.raises(ValueError, match="unknown ERNIE shape 'ernie-9'"):
        build_shaped_model(tmp_path / "a", ["[PAD]"], "ernie-9")
    with pytest.raises(ValueError, match="larger than ernie-3.0-nano-zh's 40000"):
        build_shaped_model(tmp_path / "b", [f"t{i}" for i in range(40001)], "ernie-3.0-nano-zh")
