"""Run the PLM's encoder for a head that reads only a few positions (the masks, or ``[CLS]``).

A classifier needs the last layer's hidden states at a handful of positions, but a plain forward
computes that layer — query/output projections, feed-forward, layer norms — for every token. Here
every layer but the last runs as usual, and the last computes its keys and values from all tokens
and everything else at the gathered positions only: the same numbers (see the tests), about a
fifth less encoder work on a four-layer model. Encoders of another structure (pre-norm, a final
norm, recompute) fall back to the full forward followed by a gather.

``last_layer_only_at`` does the same inside a PLM's own forward, for masked-LM pretraining, whose
head reads the ~15 % masked positions of a batch (a different number in each row).
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator, List, Optional, Sequence, Tuple

import numpy as np
import paddle
import paddle.nn as nn

from ..errors import FewshotError


def gather_positions(sequence: paddle.Tensor, positions: paddle.Tensor) -> paddle.Tensor:
    """``[batch, seq, hidden]`` at ``[batch, k]`` positions → ``[batch, k, hidden]``."""
    index = positions.unsqueeze(-1).expand([positions.shape[0], positions.shape[1], sequence.shape[-1]])
    return paddle.take_along_axis(sequence, index, axis=1)


def supports_partial_last_layer(base_model: nn.Layer) -> bool:
    """True for an ERNIE/BERT-style post-norm ``nn.TransformerEncoder`` this module can split."""
    encoder = getattr(base_model, "encoder", None)
    if not isinstance(encoder, nn.TransformerEncoder) or encoder.norm is not None:
        return False
    if getattr(encoder, "enable_recompute", False) or not hasattr(base_model, "embeddings"):
        return False
    return all(isinstance(layer, nn.TransformerEncoderLayer) and not layer.normalize_before for layer in encoder.layers)


def additive_attention_mask(attention_mask: paddle.Tensor) -> paddle.Tensor:
    """A ``[batch, seq]`` 1/0 mask → ``[batch, 1, 1, seq]`` additive mask, as ERNIE builds it; a
    ``[batch, seq, seq]`` one (a template with answer options) → ``[batch, 1, seq, seq]``."""
    axes = [1, 2] if len(attention_mask.shape) == 2 else [1]
    mask = paddle.unsqueeze(attention_mask, axis=axes).astype(paddle.get_default_dtype())
    mask = (1.0 - mask) * -1e4
    mask.stop_gradient = True
    return mask


def _last_layer_at(layer: nn.TransformerEncoderLayer, hidden: paddle.Tensor, positions: paddle.Tensor,
                   mask: paddle.Tensor, cache: Optional[nn.MultiHeadAttention.Cache] = None) -> paddle.Tensor:
    """A post-norm encoder layer's output at ``positions`` only; keys and values from all of ``hidden``.

    ``mask`` is ``[batch, 1, 1, seq]``, or ``[batch, 1, seq, seq]`` of which the rows at ``positions`` apply.
    """
    if mask is not None and len(mask.shape) == 4 and mask.shape[2] != 1:
        mask = paddle.take_along_axis(mask, positions.unsqueeze(1).unsqueeze(-1), axis=2)
    residual = gather_positions(hidden, positions)
    attended = layer.self_attn(residual, hidden, hidden, mask, cache)
    if cache is not None:
        attended = attended[0]
    out = layer.norm1(residual + layer.dropout1(attended))
    feed_forward = layer.linear2(layer.dropout(layer.activation(layer.linear1(out))))
    return layer.norm2(out + layer.dropout2(feed_forward))


def encode_at_positions(
    base_model: nn.Layer,
    positions: paddle.Tensor,
    attention_mask: paddle.Tensor,
    input_ids: Optional[paddle.Tensor] = None,
    inputs_embeds: Optional[paddle.Tensor] = None,
    token_type_ids: Optional[paddle.Tensor] = None,
    position_ids: Optional[paddle.Tensor] = None,
    prefix: Optional[Sequence[Tuple[paddle.Tensor, paddle.Tensor]]] = None,
) -> paddle.Tensor:
    """Last-layer hidden states at ``positions`` ``[batch, k]`` → ``[batch, k, hidden]``.

    ``attention_mask`` is the ``[batch, seq]`` 1/0 padding mask, or ``[batch, seq, seq]`` (which token
    sees which); give ``input_ids`` or ``inputs_embeds`` (soft prompts), as to the PLM's own forward.
    ``prefix``: per layer ``(keys, values)`` ``[1, heads, p, head_size]`` that every row attends to
    first (prefix tuning; ERNIE/BERT-style encoders only).
    """
    if prefix is not None and not supports_partial_last_layer(base_model):
        raise FewshotError("prefix tuning needs an ERNIE/BERT-style post-norm encoder")
    if not supports_partial_last_layer(base_model):
        if len(attention_mask.shape) == 3:
            attention_mask = additive_attention_mask(attention_mask)
        out = base_model(input_ids=input_ids, inputs_embeds=inputs_embeds, token_type_ids=token_type_ids,
                         position_ids=position_ids, attention_mask=attention_mask)
        sequence = out[0] if isinstance(out, (tuple, list)) else out.last_hidden_state
        return gather_positions(sequence, positions)
    mask = additive_attention_mask(attention_mask)
    hidden = base_model.embeddings(input_ids=input_ids, position_ids=position_ids, token_type_ids=token_type_ids,
                                   inputs_embeds=inputs_embeds)
    layers = base_model.encoder.layers
    caches: List[Optional[nn.MultiHeadAttention.Cache]] = [None] * len(layers)
    if prefix is not None:
        batch = paddle.shape(hidden)[0:1]
        repeat = paddle.concat([batch, paddle.ones([3], dtype=batch.dtype)])
        caches = [nn.MultiHeadAttention.Cache(paddle.tile(k, repeat), paddle.tile(v, repeat)) for k, v in prefix]
        seen = paddle.zeros_like(mask[:, :, :, :1]).tile([1, 1, 1, prefix[0][0].shape[2]])
        mask = paddle.concat([seen, mask], axis=-1)
    for layer, cache in zip(layers[:-1], caches[:-1]):
        hidden = layer(hidden, src_mask=mask) if cache is None else layer(hidden, src_mask=mask, cache=cache)[0]
    return _last_layer_at(layers[-1], hidden, positions, mask, caches[-1])


def _padded_positions(flat: np.ndarray, batch: int, length: int):
    """Flat ``batch*length`` indices → ``[batch, k]`` per-row positions (0-padded) and each index's slot."""
    rows, cols = np.divmod(flat, length)
    counts = np.bincount(rows, minlength=batch)
    order = np.argsort(flat, kind="stable")
    slot = np.empty_like(flat)
    slot[order] = np.arange(len(flat)) - (np.cumsum(counts) - counts)[rows[order]]
    positions = np.zeros((batch, max(int(counts.max(initial=0)), 1)), dtype="int64")
    positions[rows, slot] = cols
    return positions, rows * positions.shape[1] + slot


def _last_layer_at_flat(layer: nn.TransformerEncoderLayer, hidden: paddle.Tensor, flat: paddle.Tensor,
                        mask: Optional[paddle.Tensor]) -> paddle.Tensor:
    """The last layer's output ``[batch, seq, hidden]``, computed only at the flat indices ``flat``.

    Other rows keep their input values: valid only for a head that reads just those indices.
    """
    batch, length, size = hidden.shape
    positions, slots = _padded_positions(flat.numpy().reshape(-1).astype("int64"), batch, length)
    out = _last_layer_at(layer, hidden, paddle.to_tensor(positions), mask)
    picked = paddle.gather(out.reshape([-1, size]), paddle.to_tensor(slots))
    flat_hidden = hidden.reshape([-1, size])
    return paddle.scatter(flat_hidden, flat.reshape([-1]), picked, overwrite=True).reshape([batch, length, size])


@contextmanager
def last_layer_only_at(base_model: nn.Layer, flat_positions: paddle.Tensor) -> Iterator[None]:
    """Within the block, the encoder's last layer computes only the rows at ``flat_positions``.

    ``flat_positions`` index the flattened ``batch*seq`` hidden states, as PaddleNLP's masked-LM
    heads take ``masked_positions``. The PLM is still called through its own ``forward`` (and any
    data-parallel wrapper), so this works wherever the plain call does; an unsupported encoder,
    or a call with a cache or attention outputs, runs the layer as usual.
    """
    if not supports_partial_last_layer(base_model):
        yield
        return
    layer = base_model.encoder.layers[-1]
    full_forward = layer.forward

    def forward(src, src_mask=None, cache=None, output_attentions=False):
        if cache is not None or output_attentions:
            return full_forward(src, src_mask=src_mask, cache=cache, output_attentions=output_attentions)
        return _last_layer_at_flat(layer, src, flat_positions, src_mask)

    layer.forward = forward
    try:
        yield
    finally:
        del layer.forward
