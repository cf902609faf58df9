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
    assert ours["masked_positions"] == theirs.get("masked_positions", [])
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


OPTION_TEMPLATES = [  # OPTIONS: a list here; PaddleNLP's template strings can only name a field ('choices')
    ("{'text': 'text_a'}{'sep'}{'options': OPTIONS, 'add_omask': True}{'mask'}", ["体育", "财经", "天气"]),
    ("{'options': OPTIONS, 'add_omask': True, 'position': 0, 'token_type': 1}{'sep': None, 'token_type': 0, 'position': 0}"
     "{'text': 'text_a'}{'sep': None, 'token_type': 1}{'text': 'text_b'}", ["体育", "财经"]),
    ("{'text': 'text_a'}{'options': OPTIONS, 'add_prompt': '是[OPT]吗'}{'mask'}", ["体育", "财经"]),
    ("{'text': 'text_a'}{'options': OPTIONS, 'add_omask': True, 'add_prompt': '[OPT]新闻'}主题{'mask'}", ["球", "雨雪"]),
]


@pytest.fixture(scope="module")
def omask_tokenizer(tmp_path_factory):
    from paddlenlp.transformers import AutoTokenizer

    from fewshot.testing import build_tiny_model

    texts = ["这条新闻的主题是体育财经天气球赛跑股价钱雨雪风吗"]
    return AutoTokenizer.from_pretrained(build_tiny_model(tmp_path_factory.mktemp("omask"), texts, extra_tokens=["[O-MASK]"]))


@pytest.mark.parametrize("template, choices", OPTION_TEMPLATES)
@pytest.mark.parametrize("max_length", [64, 20])
def test_options_encode_as_paddlenlp_prompt(omask_tokenizer, template, choices, max_length):
    ours = Template(template.replace("OPTIONS", repr(choices)), omask_tokenizer, max_length, style=PADDLENLP)
    text_b = TEXT_B if ours.needs_text_b else None
    example = {"text_a": TEXT_A, "text_b": TEXT_B, "choices": choices}
    theirs = paddlenlp_encoding(template.replace("OPTIONS", "'choices'"), omask_tokenizer, max_length, example)
    row = ours.encode(TEXT_A, text_b)
    mask = theirs.pop("attention_mask", None)
    if mask is None:
        assert_same_encoding(row, theirs)
        return
    assert (np.array(row["attention_mask"]) - 1) * 1e4 == pytest.approx(np.array(mask))
    row["attention_mask"] = [1] * len(row["input_ids"])
    assert_same_encoding(row, theirs)


def test_option_mask_hides_options_from_each_other(omask_tokenizer):
    template = Template("{'text': 'text_a'}{'options': ['体育', '财经'], 'add_omask': True}{'mask'}", omask_tokenizer, 32)
    row = template.encode("球")
    omask = omask_tokenizer.convert_tokens_to_ids("[O-MASK]")
    assert row["input_ids"][2:8] == [omask, *omask_tokenizer.convert_tokens_to_ids(["体", "育"]), omask,
                                     *omask_tokenizer.convert_tokens_to_ids(["财", "经"])]
    assert row["position_ids"] == [0, 1, 2, 3, 4, 2, 3, 4, 5, 6]
    mask = np.array(row["attention_mask"])
    # the options region runs to the next [CLS]/[SEP]: the [MASK] after the last option is in its block
    assert mask[2:5, 5:9].sum() == 0 and mask[5:9, 2:5].sum() == 0
    assert mask[2:5, 2:5].all() and mask[5:9, 5:9].all() and mask[:, [0, 1, 9]].all() and mask[[0, 1, 9]].all()
    batch = template.encoder.pad([row, template.encode("球赛跑")])
    assert batch["attention_mask"].shape == (2, 12, 12) and batch["attention_mask"][0, :, 10:].sum() == 0


def test_omask_needs_the_token_in_the_vocabulary(tiny_tokenizer):
    from fewshot.errors import TemplateError

    with pytest.raises(TemplateError, match=r"needs the token \[O-MASK\] in the tokenizer's vocabulary"):
        Template("{'text': 'text_a'}{'options': ['体育'], 'add_omask': True}{'mask'}", tiny_tokenizer, 32)


@pytest.mark.parametrize("template", [
    "{'prefix': None, 'length': 3}{'text': 'text_a'}这条新闻的主题是{'mask'}{'mask'}",
    "{'prefix': '主题', 'length': 4, 'hidden_size': 16}{'text': 'text_a'}{'sep': None, 'token_type': 1}{'text': 'text_b'}{'mask'}",
])
@pytest.mark.parametrize("max_length", [64, 19])
def test_prefix_encodes_as_paddlenlp_prompt_without_its_prefix_tokens(tiny_model_dir, tiny_tokenizer, template, max_length):
    """PaddleNLP puts the prefix tokens in the row and drops them in ``process_batch`` (keeping their
    positions); it leaves ``masked_positions`` pointing into the row with them (it tests the key
    ``masked_position``), where they are ``prefix`` too far right: we give the true positions."""
    from paddlenlp.prompt import AutoTemplate
    from paddlenlp.transformers import AutoModelForMaskedLM

    model = AutoModelForMaskedLM.from_pretrained(tiny_model_dir)
    theirs = AutoTemplate.create_from(template, tiny_tokenizer, max_length, model=model)({"text_a": TEXT_A, "text_b": TEXT_B})
    ours = Template(template, tiny_tokenizer, max_length, style=PADDLENLP)
    row = ours.encode(TEXT_A, TEXT_B if ours.needs_text_b else None)
    kept = np.array(theirs["soft_token_ids"]) == 0
    prefix = int((~kept).sum())
    assert prefix == ours.encoder.prefix_length and row["soft_token_ids"] == [0] * len(row["input_ids"])
    for key in ("input_ids", "token_type_ids", "position_ids"):
        assert row[key] == np.array(theirs[key])[kept].tolist(), key
    assert row["masked_positions"] == [p - prefix for p in theirs["masked_positions"]]


def test_soft_encoders_are_shared_by_name_in_the_paddlenlp_style(tiny_tokenizer):
    template = "{'soft': None, 'length': 2, 'encoder': 'mlp', 'hidden_size': 8}{'text': 'text_a'}" \
               "{'soft': '主题', 'encoder': 'mlp', 'hidden_size': 16}{'mask'}"
    fewshot = {t.group for t in Template(template, tiny_tokenizer, 32).soft_tokens}
    paddlenlp = {t.group for t in Template(template, tiny_tokenizer, 32, style=PADDLENLP).soft_tokens}
    assert fewshot == {("mlp", 8), ("mlp", 16)} and paddlenlp == {("mlp", 8)}
