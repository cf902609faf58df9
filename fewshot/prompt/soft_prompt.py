"""Soft prompts: trainable token embeddings and their encoders (none / LSTM / MLP, as in P-tuning).

The soft prompt does not depend on the input text, so ``SoftPrompt()`` computes the whole table
of soft-token embeddings once per batch (and once per export, where it becomes a constant).
Soft tokens whose template parts name the same encoder kind and hidden size are encoded together,
as one sequence, by one shared encoder.
"""

from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple

import paddle
import paddle.nn as nn

from ..template import Prefix, SoftToken


class LSTMEncoder(nn.Layer):
    """Bi-directional 2-layer LSTM followed by a 2-layer MLP (P-tuning's prompt encoder)."""

    def __init__(self, embed_size: int, hidden_size: int):
        super().__init__()
        self.lstm = nn.LSTM(embed_size, hidden_size // 2 or 1, num_layers=2, direction="bidirect")
        lstm_out = 2 * (hidden_size // 2 or 1)
        self.mlp = nn.Sequential(nn.Linear(lstm_out, hidden_size), nn.ReLU(), nn.Linear(hidden_size, embed_size))

    def forward(self, embeds: paddle.Tensor) -> paddle.Tensor:
        out, _ = self.lstm(embeds.unsqueeze(0))
        return self.mlp(out).squeeze(0)


class MLPEncoder(nn.Layer):
    """Two linear layers with a ReLU between them."""

    def __init__(self, embed_size: int, hidden_size: int):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(embed_size, hidden_size), nn.ReLU(), nn.Linear(hidden_size, embed_size))

    def forward(self, embeds: paddle.Tensor) -> paddle.Tensor:
        return self.mlp(embeds)


def build_encoder(kind: str, embed_size: int, hidden_size: Optional[int]) -> Optional[nn.Layer]:
    """The encoder layer for ``kind`` ('none' gives None: embeddings are used as they are)."""
    hidden = hidden_size or embed_size
    if kind == "lstm":
        return LSTMEncoder(embed_size, hidden)
    if kind == "mlp":
        return MLPEncoder(embed_size, hidden)
    return None


class SoftPrompt(nn.Layer):
    """Trainable embeddings for a template's soft tokens, passed through their encoders.

    ``forward()`` returns a ``[num_soft_tokens + 1, embed_size]`` table whose row 0 is zero, to be
    indexed by the template's ``soft_token_ids``.
    """

    def __init__(self, soft_tokens: Sequence[SoftToken], word_embeddings: nn.Embedding):
        super().__init__()
        embed_size = word_embeddings.weight.shape[1]
        init = paddle.normal(std=0.02, shape=[len(soft_tokens), embed_size])
        for i, token in enumerate(soft_tokens):
            if token.init_token_id is not None:
                init[i] = word_embeddings.weight[token.init_token_id]
        self.embedding = self.create_parameter(
            [len(soft_tokens), embed_size], default_initializer=nn.initializer.Assign(init.numpy())
        )
        groups: Dict[Tuple[str, Optional[int]], List[int]] = {}
        for i, token in enumerate(soft_tokens):
            groups.setdefault(token.group, []).append(i)
        self.group_rows = [rows for rows in groups.values()]
        self.encoders = nn.LayerList([build_encoder(kind, embed_size, hidden) or nn.Identity() for kind, hidden in groups])
        order = [row for rows in self.group_rows for row in rows]
        inverse = [0] * len(order)
        for position, row in enumerate(order):
            inverse[row] = position
        self.register_buffer("_inverse", paddle.to_tensor(inverse, dtype="int64"), persistable=False)
        self._needs_reorder = order != sorted(order)

    def forward(self) -> paddle.Tensor:
        outputs = []
        for rows, encoder in zip(self.group_rows, self.encoders):
            if len(rows) == self.embedding.shape[0]:
                outputs.append(encoder(self.embedding))
            else:
                outputs.append(encoder(paddle.gather(self.embedding, paddle.to_tensor(rows, dtype="int64"))))
        table = paddle.concat(outputs, axis=0) if len(outputs) > 1 else outputs[0]
        if self._needs_reorder:
            table = paddle.gather(table, self._inverse)
        zero = paddle.zeros([1, table.shape[1]], dtype=table.dtype)
        return paddle.concat([zero, table], axis=0)


class PrefixPrompt(nn.Layer):
    """Prefix tuning: trainable prefix tokens turned by an MLP (tanh) into keys and values for every layer.

    ``forward()`` returns one ``(keys, values)`` pair per layer, each ``[1, heads, prefix, head_size]``,
    which every row of a batch attends to before its own tokens (as ``paddlenlp.prompt``'s
    ``PrefixTemplate``: MLP ``embed → hidden → 2 × layers × embed``, dropout 0.1 on its output).
    """

    def __init__(self, prefix: Prefix, word_embeddings: nn.Embedding, num_layers: int, num_heads: int,
                 dropout: float = 0.1):
        super().__init__()
        embed_size = word_embeddings.weight.shape[1]
        init = paddle.normal(std=0.02, shape=[len(prefix.init_token_ids), embed_size])
        for i, token_id in enumerate(prefix.init_token_ids):
            if token_id is not None:
                init[i] = word_embeddings.weight[token_id]
        self.embedding = self.create_parameter(
            list(init.shape), default_initializer=nn.initializer.Assign(init.numpy())
        )
        hidden = prefix.hidden_size or embed_size
        self.mlp = nn.Sequential(nn.Linear(embed_size, hidden), nn.Tanh(), nn.Linear(hidden, 2 * num_layers * embed_size))
        self.dropout = nn.Dropout(dropout)
        self.num_layers, self.num_heads, self.head_size = num_layers, num_heads, embed_size // num_heads

    def forward(self) -> List[Tuple[paddle.Tensor, paddle.Tensor]]:
        length = self.embedding.shape[0]
        out = self.dropout(self.mlp(self.embedding))
        out = out.reshape([length, 2 * self.num_layers, self.num_heads, self.head_size]).transpose([1, 2, 0, 3])
        return [(out[2 * i].unsqueeze(0), out[2 * i + 1].unsqueeze(0)) for i in range(self.num_layers)]
