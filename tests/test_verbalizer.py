"""Verbalizers and soft prompt: label words across mask slots, soft heads, encoders."""

import numpy as np
import paddle
import pytest

from fewshot.errors import LabelFileError
from fewshot.prompt.model import PromptModel
from fewshot.template import Template, pad_batch
from fewshot.prompt.verbalizers import ManualVerbalizer, SoftVerbalizer, tokenize_label_words

TEMPLATE = "{'text': 'text_a'}这句话的类别是{'mask'}{'mask'}"
TEXTS = ["球赛跑的", "股价钱", "雨雪风天"]


def _plm(tiny_model_dir):
    from paddlenlp.transformers import ErnieForMaskedLM

    plm = ErnieForMaskedLM.from_pretrained(tiny_model_dir)
    plm.eval()
    return plm


def _batch(template, texts):
    return {k: paddle.to_tensor(v) for k, v in pad_batch([template.encode(t) for t in texts]).items()}


def _mask_logprobs(plm, batch):
    """Full-vocabulary log-probabilities at the mask slots, straight from the PLM."""
    logits = plm(
        input_ids=batch["input_ids"],
        token_type_ids=batch["token_type_ids"],
        position_ids=batch["position_ids"],
        attention_mask=batch["attention_mask"],
    )
    logp = paddle.nn.functional.log_softmax(logits, axis=-1).numpy()
    pos = batch["masked_positions"].numpy()
    return np.stack([logp[i, pos[i]] for i in range(len(pos))])


def test_multi_char_label_words_share_mask_slots(tiny_model_dir, tiny_tokenizer):
    """A label's logit is log(mean over its words of exp(mean char log-prob at consecutive slots))."""
    plm = _plm(tiny_model_dir)
    template = Template(TEMPLATE, tiny_tokenizer, 32)
    words = {"sports": ["体育", "球"], "finance": ["财经"], "weather": ["天气"]}
    model = PromptModel(plm, template, ManualVerbalizer(words, tiny_tokenizer, 2, plm.cls.predictions))
    batch = _batch(template, TEXTS)
    with paddle.no_grad():
        logits = model(**batch).numpy()
        logp = _mask_logprobs(plm, batch)
    ids = lambda w: tiny_tokenizer.convert_tokens_to_ids(list(w))  # noqa: E731

    def word_score(row, word):
        return np.mean([logp[row, slot, t] for slot, t in enumerate(ids(word))])

    for row in range(len(TEXTS)):
        sports = np.log(np.mean([np.exp(word_score(row, "体育")), np.exp(word_score(row, "球"))]))
        expected = [sports, word_score(row, "财经"), word_score(row, "天气")]
        np.testing.assert_allclose(logits[row], expected, rtol=1e-5, atol=1e-5)


def _decoder_calls(plm):
    calls = []
    plm.cls.predictions.decoder.register_forward_post_hook(lambda *_: calls.append(1))
    return calls


@pytest.mark.parametrize("masks, words", [
    (2, {"sports": ["体育", "球赛"], "finance": ["财经"], "weather": ["天气"]}),
    (3, {"sports": ["体育"], "finance": ["财经"], "weather": ["天气"]}),
    (1, {"sports": ["体"], "finance": ["财", "股"]}),
    (1, {"sports": ["体育", "球"], "finance": ["财经"]}),
])
def test_equal_length_words_score_only_their_own_decoder_rows(tiny_model_dir, tiny_tokenizer, masks, words):
    """Without log_probs the logits differ from the log-probabilities by a per-row constant only,
    so the label softmax and its gradients are the same, and the full-vocabulary decoder never runs."""
    plm = _plm(tiny_model_dir)
    template = Template("{'text': 'text_a'}这句话的类别是" + "{'mask'}" * masks, tiny_tokenizer, 32)
    exact = PromptModel(plm, template, ManualVerbalizer(words, tiny_tokenizer, masks, plm.cls.predictions))
    fast = PromptModel(plm, template, ManualVerbalizer(words, tiny_tokenizer, masks, plm.cls.predictions,
                                                       log_probs=False))
    assert fast.verbalizer.label_words_only and not exact.verbalizer.label_words_only
    batch = _batch(template, TEXTS)
    labels = paddle.to_tensor([0, 1, 0])
    results = []
    for model in (exact, fast):
        calls = _decoder_calls(plm)
        logits = model(**batch)
        loss = paddle.nn.functional.cross_entropy(logits, labels)
        loss.backward()
        results.append((logits.numpy(), float(loss), plm.ernie.embeddings.word_embeddings.weight.grad.numpy().copy(),
                        len(calls)))
        plm.clear_gradients()
    (exact_logits, exact_loss, exact_grad, exact_calls), (fast_logits, fast_loss, fast_grad, fast_calls) = results
    shift = exact_logits - fast_logits
    np.testing.assert_allclose(shift, shift[:, :1].repeat(shift.shape[1], axis=1), rtol=1e-5, atol=1e-4)
    assert fast_loss == pytest.approx(exact_loss, rel=1e-5)
    np.testing.assert_allclose(fast_grad, exact_grad, rtol=1e-4, atol=1e-6)
    assert (exact_calls, fast_calls) == (1, 0)


def test_mixed_word_lengths_keep_the_full_vocabulary_log_probs(tiny_model_dir, tiny_tokenizer):
    plm = _plm(tiny_model_dir)
    template = Template(TEMPLATE, tiny_tokenizer, 32)
    words = {"sports": ["体育", "球"], "finance": ["财经"]}
    exact = ManualVerbalizer(words, tiny_tokenizer, 2, plm.cls.predictions)
    mixed = ManualVerbalizer(words, tiny_tokenizer, 2, plm.cls.predictions, log_probs=False)
    assert not mixed.label_words_only
    batch = _batch(template, TEXTS)
    with paddle.no_grad():
        np.testing.assert_array_equal(PromptModel(plm, template, mixed)(**batch).numpy(),
                                      PromptModel(plm, template, exact)(**batch).numpy())


def test_word_longer_than_mask_slots_is_an_error(tiny_tokenizer):
    with pytest.raises(LabelFileError, match="label 'sports' word '体育赛' has 3 tokens but the template has only 2"):
        tokenize_label_words({"sports": ["体育赛"]}, tiny_tokenizer, 2)


def test_one_mask_reads_a_whole_multi_token_word(tiny_tokenizer):
    ids = tokenize_label_words({"news_car": ["汽车"], "sports": ["体育赛"]}, tiny_tokenizer, 1)
    assert ids == {"news_car": [tiny_tokenizer.convert_tokens_to_ids(["汽", "车"])],
                   "sports": [tiny_tokenizer.convert_tokens_to_ids(["体", "育", "赛"])]}


@pytest.mark.parametrize("log_probs", [True, False])
def test_one_mask_multi_token_words_match_paddlenlp_manual_verbalizer(tiny_model_dir, tiny_tokenizer, log_probs):
    """PaddleNLP scores a word at one mask by the mean of its tokens' logits, then softmaxes over the
    label words: the same label probabilities as ours for one word per label."""
    from paddlenlp.prompt import ManualVerbalizer as PaddleNLPManual

    plm = _plm(tiny_model_dir)
    template = Template("{'text': 'text_a'}这句话的类别是{'mask'}", tiny_tokenizer, 32)
    words = {"finance": ["财经"], "sports": ["体育赛"], "weather": ["天"]}
    model = PromptModel(plm, template, ManualVerbalizer(words, tiny_tokenizer, 1, plm.cls.predictions,
                                                        log_probs=log_probs))
    batch = _batch(template, TEXTS)
    reference = PaddleNLPManual(words, tiny_tokenizer)
    with paddle.no_grad():
        ours = paddle.nn.functional.softmax(model(**batch), axis=-1).numpy()
        vocab_logits = plm(input_ids=batch["input_ids"], token_type_ids=batch["token_type_ids"],
                           position_ids=batch["position_ids"], attention_mask=batch["attention_mask"])
        at_mask = paddle.to_tensor(np.stack([vocab_logits.numpy()[i, p] for i, p in
                                             enumerate(batch["masked_positions"].numpy())]))
        theirs = paddle.nn.functional.softmax(reference.process_outputs(at_mask), axis=-1).numpy()
    assert reference.labels == sorted(words) == list(words)
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6)


def test_label_without_words_stands_for_itself(tiny_tokenizer):
    ids = tokenize_label_words({"体育": []}, tiny_tokenizer, 2)
    assert ids == {"体育": [tiny_tokenizer.convert_tokens_to_ids(["体", "育"])]}


def test_soft_verbalizer_starts_where_the_lm_head_is(tiny_model_dir, tiny_tokenizer):
    """Initialised from the words' output embeddings, the soft head's logits are 2x the manual
    ones plus a per-row constant (the slots' log-partition functions) for two-character words."""
    plm = _plm(tiny_model_dir)
    template = Template(TEMPLATE, tiny_tokenizer, 32)
    words = {"sports": ["体育"], "finance": ["财经"], "weather": ["天气"]}
    manual = PromptModel(plm, template, ManualVerbalizer(words, tiny_tokenizer, 2, plm.cls.predictions))
    soft = PromptModel(plm, template, SoftVerbalizer(words, tiny_tokenizer, 2, plm.cls.predictions))
    batch = _batch(template, TEXTS)
    with paddle.no_grad():
        diff = soft(**batch).numpy() - 2 * manual(**batch).numpy()
    np.testing.assert_allclose(diff, diff[:, :1].repeat(3, axis=1), rtol=1e-4, atol=1e-3)
    assert [p.shape for p in soft.prompt_parameters()] == [[2, 3, 32], [2, 3]]


@pytest.mark.parametrize("masks", [1, 3])
def test_soft_verbalizer_with_one_or_several_masks(tiny_model_dir, tiny_tokenizer, masks):
    plm = _plm(tiny_model_dir)
    template = Template("{'text': 'text_a'}" + "{'mask'}" * masks, tiny_tokenizer, 32)
    words = {"sports": ["体"], "finance": ["财"]}
    model = PromptModel(plm, template, SoftVerbalizer(words, tiny_tokenizer, masks, plm.cls.predictions))
    logits = model(**_batch(template, TEXTS))
    assert logits.shape == [3, 2]
    logits.sum().backward()
    assert model.verbalizer.weight.grad is not None


@pytest.mark.parametrize("encoder", ["none", "lstm", "mlp"])
def test_soft_tokens_replace_embeddings_and_get_gradients(tiny_model_dir, tiny_tokenizer, encoder):
    plm = _plm(tiny_model_dir)
    template = Template(
        "{'soft': '主题'}{'text': 'text_a'}{'soft': None, 'length': 2, 'encoder': '%s', 'hidden_size': 8}{'mask'}{'mask'}"
        % encoder,
        tiny_tokenizer,
        32,
    )
    model = PromptModel(plm, template, ManualVerbalizer({"a": ["体育"], "b": ["财经"]}, tiny_tokenizer, 2, plm.cls.predictions))
    table = model.soft_prompt()
    assert table.shape == [5, 32]
    assert float(table[0].abs().sum()) == 0.0
    words = plm.get_input_embeddings().weight
    init = tiny_tokenizer.convert_tokens_to_ids(["主", "题"])
    np.testing.assert_allclose(table[1:3].numpy(), words.numpy()[init], atol=1e-6)
    model(**_batch(template, TEXTS)).sum().backward()
    grads = [p.grad for p in model.soft_prompt.parameters()]
    assert all(g is not None for g in grads)
    n_encoders = len(model.soft_prompt.encoders)
    assert n_encoders == (1 if encoder == "none" else 2)
