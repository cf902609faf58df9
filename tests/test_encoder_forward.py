"""The partial last layer gives the full encoder's hidden states at the gathered positions."""

import numpy as np
import paddle
import pytest
from paddlenlp.transformers import AutoModelForMaskedLM

from fewshot.prompt.partial_encoder import (
    _padded_positions,
    encode_at_positions,
    gather_positions,
    last_layer_only_at,
    supports_partial_last_layer,
)


@pytest.fixture(scope="module")
def ernie(tiny_model_dir):
    model = AutoModelForMaskedLM.from_pretrained(tiny_model_dir).base_model
    model.eval()
    return model


def _batch(seed: int = 0):
    rng = np.random.default_rng(seed)
    ids = rng.integers(5, 40, size=(3, 9)).astype("int64")
    mask = np.ones_like(ids)
    mask[1, 6:] = 0
    mask[2, 4:] = 0
    ids[mask == 0] = 0
    positions = np.array([[0, 3], [5, 2], [1, 3]], dtype="int64")
    types = np.zeros_like(ids)
    types[:, 5:] = 1
    return {k: paddle.to_tensor(v) for k, v in dict(ids=ids, mask=mask, positions=positions, types=types).items()}


def _full(ernie, batch, **inputs):
    sequence = ernie(token_type_ids=batch["types"], attention_mask=batch["mask"], **inputs)[0]
    return gather_positions(sequence, batch["positions"]).numpy()


def test_tiny_ernie_is_split_at_its_last_layer(ernie):
    assert supports_partial_last_layer(ernie)


def test_partial_last_layer_matches_the_full_forward_with_padding(ernie):
    batch = _batch()
    got = encode_at_positions(ernie, batch["positions"], batch["mask"], input_ids=batch["ids"],
                              token_type_ids=batch["types"]).numpy()
    assert got.shape == (3, 2, ernie.config.hidden_size)
    np.testing.assert_allclose(got, _full(ernie, batch, input_ids=batch["ids"]), atol=1e-5, rtol=0)


def test_partial_last_layer_matches_with_input_embeddings(ernie):
    batch = _batch(seed=1)
    embeds = ernie.embeddings.word_embeddings(batch["ids"]) * 1.5
    got = encode_at_positions(ernie, batch["positions"], batch["mask"], inputs_embeds=embeds,
                              token_type_ids=batch["types"]).numpy()
    np.testing.assert_allclose(got, _full(ernie, batch, inputs_embeds=embeds), atol=1e-5, rtol=0)


def test_unsupported_encoder_falls_back_to_the_full_forward(ernie, monkeypatch):
    batch = _batch(seed=2)
    monkeypatch.setattr(ernie.encoder.layers[0], "normalize_before", True)
    assert not supports_partial_last_layer(ernie)
    got = encode_at_positions(ernie, batch["positions"], batch["mask"], input_ids=batch["ids"],
                              token_type_ids=batch["types"]).numpy()
    np.testing.assert_allclose(got, _full(ernie, batch, input_ids=batch["ids"]), atol=1e-6, rtol=0)


def test_gradients_reach_every_layer(ernie):
    batch = _batch(seed=3)
    ernie.train()
    try:
        hidden = encode_at_positions(ernie, batch["positions"], batch["mask"], input_ids=batch["ids"],
                                     token_type_ids=batch["types"])
        hidden.sum().backward()
        last = ernie.encoder.layers[-1]
        for param in (ernie.embeddings.word_embeddings.weight, last.self_attn.k_proj.weight, last.linear2.weight):
            assert param.grad is not None and float(paddle.abs(param.grad).sum()) > 0
    finally:
        ernie.clear_gradients()
        ernie.eval()


def test_masked_lm_with_the_last_layer_at_masked_rows_matches_the_full_model(tiny_model_dir):
    mlm = AutoModelForMaskedLM.from_pretrained(tiny_model_dir)
    mlm.eval()
    batch = _batch(seed=4)
    ids = batch["ids"]
    flat = paddle.to_tensor(np.array([1, 3, 4, 9 + 2, 18 + 0, 18 + 3], dtype="int64"))
    expected = mlm(input_ids=ids, masked_positions=flat).numpy()
    with last_layer_only_at(mlm.base_model, flat):
        got = mlm(input_ids=ids, masked_positions=flat)
    assert got.shape == [6, mlm.config.vocab_size]
    np.testing.assert_allclose(got.numpy(), expected, atol=1e-4, rtol=0)
    assert "forward" not in vars(mlm.base_model.encoder.layers[-1])


def test_padded_positions_put_each_flat_index_in_its_row():
    positions, slots = _padded_positions(np.array([11, 1, 3, 18, 4], dtype="int64"), batch=3, length=9)
    np.testing.assert_array_equal(positions, [[1, 3, 4], [2, 0, 0], [0, 0, 0]])
    np.testing.assert_array_equal(slots, [3, 0, 1, 6, 2])
