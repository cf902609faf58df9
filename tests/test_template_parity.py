"""Parity with ``paddlenlp.prompt``: with the PADDLENLP style our encoder gives, for the same template and
texts, exactly the ids, token types, positions, soft ids, masked positions and attention mask that
PaddleNLP's ``AutoTemplate`` + ``MLMPromptTokenizer`` give (PaddleNLP writes the soft token numbers into
``input_ids`` at soft positions, where the model never reads them; we keep the initialising ids there)."""

import numpy as np
import pytest

from fewshot.template import FEWSHOT, PADDLENLP, EncodingStyle, Template, TemplateEncoder

pytest.importorskip("paddlenlp.prompt")

TEXT_A = "这条新闻的主题是体育财经天气"
TEXT_B = "球赛跑股价钱"

TEMPLATES = [
    "这条新闻的主题是",
    "{'text': 'text_a'}这条新闻的主题是{'mask'}{'mask'}",
    "{'text': 'text_a'}{'sep'}{'text': 'text_b'}{'mask'}",
    "{'text': 'text_a'}{'sep': None, 'token_type': 1}{'text': 'text_b'}主题是{'mask'}",
    "{'text': 'text_a', 'position': 0}{'sep'}{'text': 'text_b', 'token_type': 1, 'position': 3}{'mask'}",
    "{'hard': '主题是', 'token_type': 1, 'truncate': True}{'text': 'text_a'}{'mask': None, 'length': 2}",
    "{'soft'}{'text': 'text_a'}{'mask'}",
    "{'soft': '主题', 'length': 4}{'text': 'text_a'}{'mask'}",
    "{'soft': None, 'length': 2, 'soft_id': 7}{'text': 'text_a'}{'soft_id': 7}{'mask'}",
    "{'soft': '初始', 'soft_id': 1}{'text': 'text_a'}{'sep'}{'text': 'text_b'}{'soft': None, 'soft_id': 1}{'mask'}",
    "{'text': 'text_a', 'add_space': True}{'hard': '主题', 'add_space': True}{'mask'}",
    "{'text': 'text_a'}{'sep'}{'text': 'text_b', 'truncate': False}{'mask'}",
]


def paddlenlp_encoding(template, tokenizer, max_length, example):
    import paddle
    from paddlenlp.prompt import AutoTemplate

    class Model:  # what AutoTemplate asks a model for: its input embeddings
        embeddings = paddle.nn.Embedding(tokenizer.vocab_size, 8)

        def get_input_embeddings(self):
            return self.embeddings

    return AutoTemplate.create_from(template, tokenizer, max_length, model=Model())(example)


def assert_same_encoding(ours, theirs):
    soft = np.array(ours["soft_token_ids"]) > 0
    assert ours["soft_token_ids"] == theirs["soft_token_ids"]
    assert np.array(ours["input_ids"])[~soft].tolist() == np.array(theirs["input_ids"])[~soft].tolist()
    assert ours["token_type_ids"] == theirs["token_type_ids"]
    assert ours["position_ids"] == theirs["position_ids"]
    assert ours["masked_positions"] == theirs["masked_positions"]
    assert ours["attention_mask"] == [1] * len(ours["input_ids"]) and "attention_mask" not in theirs


@pytest.mark.parametrize("template", TEMPLATES)
@pytest.mark.parametrize("max_length", [64, 17, 13])
def test_paddlenlp_style_encodes_as_paddlenlp_prompt(tiny_tokenizer, template, max_length):
    example = {"text_a": TEXT_A, "text_b": TEXT_B}
    ours = Template(template, tiny_tokenizer, max_length, style=PADDLENLP)
    text_b = TEXT_B if ours.needs_text_b else None
    assert_same_encoding(ours.encode(TEXT_A, text_b), paddlenlp_encoding(template, tiny_tokenizer, max_length, example))


def test_two_text_slots_truncate_as_paddlenlp_one_token_short(tiny_tokenizer):
    template = "{'text': 'text_a'}{'text': 'text_b'}{'mask'}"
    paddlenlp = Template(template, tiny_tokenizer, 14, style=PADDLENLP).encode("球" * 20, "雨" * 20)
    fewshot = Template(template, tiny_tokenizer, 14, style=FEWSHOT).encode("球" * 20, "雨" * 20)
    words = tiny_tokenizer.convert_ids_to_tokens
    assert (words(paddlenlp["input_ids"]).count("球"), words(paddlenlp["input_ids"]).count("雨")) == (5, 5)
    assert (words(fewshot["input_ids"]).count("球"), words(fewshot["input_ids"]).count("雨")) == (5, 6)


def test_fewshot_and_paddlenlp_styles_differ_only_where_documented(tiny_tokenizer):
    template = "{'text': 'text_a'}{'sep'}{'text': 'text_b'}{'mask'}"
    fewshot = Template(template, tiny_tokenizer, 32).encode("球", "雨")
    paddlenlp = Template(template, tiny_tokenizer, 32, style=PADDLENLP).encode("球", "雨")
    assert fewshot["input_ids"] == paddlenlp["input_ids"]
    assert fewshot["token_type_ids"] == [0, 0, 0, 1, 1, 1] and paddlenlp["token_type_ids"] == [0] * 6
    assert fewshot["position_ids"] == [0, 1, 2, 3, 4, 5] and paddlenlp["position_ids"] == [0, 1, 2, 3, 4, 0]


def test_style_travels_in_the_encoder_spec(tiny_tokenizer):
    template = Template("{'text': 'text_a'}{'sep'}{'text': 'text_b'}{'mask'}", tiny_tokenizer, 32, style=PADDLENLP)
    spec = template.describe()
    assert spec["style"] == "paddlenlp"
    rebuilt = TemplateEncoder.from_spec(spec, template.encoder.tokenize)
    assert rebuilt.style is PADDLENLP
    assert rebuilt.encode("球", "雨") == template.encode("球", "雨")
    del spec["style"]  # a bundle written before styles existed encodes as fewshot always did
    assert TemplateEncoder.from_spec(spec, template.encoder.tokenize).style is FEWSHOT


def test_unknown_style_is_a_located_error():
    from fewshot.errors import BundleError

    with pytest.raises(BundleError, match="manifest.json: encoding style must be one of fewshot, paddlenlp, got 'hf'"):
        EncodingStyle.named("hf", where="manifest.json", error=BundleError)
