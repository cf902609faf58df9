"""Parity with paddlenlp.prompt's verbalizers: the same label-word ids and the same scores for the
same hidden states, for every aggregation option."""

import itertools

import numpy as np
import paddle
import pytest

from fewshot.errors import FewshotError, LabelFileError
from fewshot.prompt.model import PromptModel
from fewshot.prompt.verbalizers import MaskedLMVerbalizer, PaddleNLPManualVerbalizer, VerbalizerSpec
from fewshot.template import Template, pad_batch

TEXTS = ["球赛跑的", "股价钱", "雨雪风天"]
# Sorted labels (PaddleNLP sorts them), words of 1-3 tokens, two words for one label.
WORDS = {"finance": ["财经", "股"], "sports": ["体育赛"], "weather": ["天气"]}


@pytest.fixture(scope="module")
def plm(tiny_model_dir):
    from paddlenlp.transformers import ErnieForMaskedLM

    model = ErnieForMaskedLM.from_pretrained(tiny_model_dir)
    model.eval()
    return model


def _scores(plm, tokenizer, verbalizer, masks):
    """(our verbalizer's output, the PLM's vocabulary logits at the masks) for TEXTS."""
    template = Template("{'text': 'text_a'}这句话的类别是" + "{'mask'}" * masks, tokenizer, 32)
    batch = {k: paddle.to_tensor(v) for k, v in pad_batch([template.encode(t) for t in TEXTS]).items()}
    with paddle.no_grad():
        ours = PromptModel(plm, template, verbalizer)(**batch).numpy()
        logits = plm(input_ids=batch["input_ids"], token_type_ids=batch["token_type_ids"],
                     position_ids=batch["position_ids"], attention_mask=batch["attention_mask"]).numpy()
    positions = batch["masked_positions"].numpy()
    return ours, paddle.to_tensor(np.stack([logits[i, p] for i, p in enumerate(positions)]))


OPTIONS = list(itertools.product(["mean", "max", "first"], ["mean", "max", "first"], [True, False]))


@pytest.mark.parametrize("masks", [1, 2])
@pytest.mark.parametrize("token, word, log_softmax", OPTIONS)
def test_manual_verbalizer_options_match_paddlenlp(plm, tiny_tokenizer, masks, token, word, log_softmax):
    from paddlenlp.prompt import ManualVerbalizer

    options = dict(token_aggregate_type=token, word_aggregate_type=word, post_log_softmax=log_softmax)
    mask_types = ["product", "mean", "max", "first"] if masks > 1 else ["product"]
    for mask in mask_types:
        ours_layer = PaddleNLPManualVerbalizer(WORDS, tiny_tokenizer, masks, plm.cls.predictions,
                                               mask_aggregate_type=mask, **options)
        reference = ManualVerbalizer(WORDS, tiny_tokenizer, mask_aggregate_type=mask, **options)
        ours, at_masks = _scores(plm, tiny_tokenizer, ours_layer, masks)
        with paddle.no_grad():
            theirs = reference.process_outputs(at_masks).numpy()
        assert reference.labels == ours_layer.labels
        np.testing.assert_array_equal(ours_layer.token_ids.numpy(), reference.token_ids.numpy().reshape(-1))
        np.testing.assert_allclose(ours, theirs.reshape(ours.shape), rtol=1e-4, atol=2e-4, err_msg=mask)


@pytest.mark.parametrize("mask", ["product", "mean", "sum", "max", "first"])
def test_masked_lm_verbalizer_matches_paddlenlp(plm, tiny_tokenizer, mask):
    from paddlenlp.prompt import MaskedLMVerbalizer as Reference

    words = {"finance": ["财经", "股价"], "sports": ["体育"], "weather": ["天气"]}
    layer = MaskedLMVerbalizer(words, tiny_tokenizer, 2, plm.cls.predictions, mask_aggregate_type=mask)
    ours, at_masks = _scores(plm, tiny_tokenizer, layer, 2)
    reference = Reference(words, tiny_tokenizer)
    with paddle.no_grad():
        theirs = reference.aggregate_multiple_mask(at_masks, mask).numpy()
    np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-4)


def test_masked_lm_verbalizer_needs_one_token_per_mask(plm, tiny_tokenizer):
    with pytest.raises(LabelFileError, match="label 'sports' word has 3 tokens but the template has 2"):
        MaskedLMVerbalizer({"finance": ["财经"], "sports": ["体育赛"]}, tiny_tokenizer, 2, plm.cls.predictions)


@pytest.mark.parametrize("value, message", [
    ("fancy", "verbalizer must be one of manual, soft, paddlenlp, maskedlm, efl, got 'fancy'"),
    ("paddlenlp:token_aggregate_type=median", "option 'token_aggregate_type' must be one of mean, max, first"),
    ("paddlenlp:post_log_softmax=maybe", "option 'post_log_softmax' must be one of true, false"),
    ("manual:token_aggregate_type=max", "verbalizer 'manual': unknown option 'token_aggregate_type' (options: none)"),
    ("paddlenlp:max", "option 'max' is not NAME=VALUE"),
    ({"token_aggregate_type": "max"}, "needs a 'kind'"),
])
def test_bad_verbalizer_specs_are_one_line_errors(value, message):
    with pytest.raises(FewshotError, match=message.replace("(", r"\(").replace(")", r"\)")):
        VerbalizerSpec.parse(value)


def test_spec_forms_agree_and_keep_old_configs():
    text = VerbalizerSpec.parse("paddlenlp: token_aggregate_type=max, post_log_softmax=false, word_aggregate_type=mean")
    mapping = VerbalizerSpec.parse({"kind": "paddlenlp", "token_aggregate_type": "max", "post_log_softmax": False})
    assert text == mapping
    assert text.config() == {"kind": "paddlenlp", "token_aggregate_type": "max", "post_log_softmax": False}
    assert VerbalizerSpec.parse("soft").config() == "soft"
    assert VerbalizerSpec.parse(text.config()) == text
