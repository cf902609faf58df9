"""The prompt model's inference path as one static graph: token ids → probabilities.

The soft prompt does not depend on the input, so its encoder (LSTM or MLP) runs once here and its
output rows are appended to the word embedding table: soft tokens become ordinary token ids
``vocab_size, vocab_size+1, …``, and the deployed graph needs no LSTM.
"""

from __future__ import annotations

from pathlib import Path
from typing import Dict

import numpy as np
import paddle
import paddle.nn as nn
import paddle.nn.functional as F
from paddle.static import InputSpec

from ..errors import BundleError
from ..prompt.model import PromptModel
from ..prompt.partial_encoder import encode_at_positions
from ..runtime.manifest import GRAPH_INPUTS, PADDLE_MODEL_NAME, PADDLE_PARAMS_NAME
from ..tasks import Task

PADDLE_PREFIX = PADDLE_MODEL_NAME[: -len(".json")]


class InferenceGraph(nn.Layer):
    """The prompt model's inference path as one layer: token ids → probabilities.

    Shares the PLM encoder, the verbalizer and the calibration prior with ``model``; the word
    embedding table is the PLM's own, or (with soft tokens) a copy with the soft prompt's rows
    appended. The task gives the rest, as ``Task.activate`` applies it for
    ``PromptClassifier.predict_proba``: the logits are divided by ``task.temperature`` (a constant
    of the graph, left out at 1), then ``task.activation`` — ``softmax`` (one label per text) or
    ``sigmoid`` (independent labels: multi-label and hierarchical tasks).
    """

    def __init__(self, model: PromptModel, task: Task):
        super().__init__()
        self.encoder = model.encoder
        self.verbalizer = model.verbalizer
        self.activation = task.activation
        self.temperature = float(task.temperature)
        self.calibrated = bool(getattr(model, "calibrated", False))
        if self.calibrated:
            self.register_buffer("log_prior", model.log_prior, persistable=True)
        self.prefix = []
        if model.prefix is not None:  # the prefix's keys and values do not depend on the input: constants
            model.prefix.eval()
            self.prefix = [[self.create_parameter(list(t.shape), default_initializer=nn.initializer.Assign(t.numpy()))
                            for t in pair] for pair in model.prefix()]
            for i, (keys, values) in enumerate(self.prefix):
                self.add_parameter(f"prefix_keys_{i}", keys)
                self.add_parameter(f"prefix_values_{i}", values)
        words = model.plm.get_input_embeddings().weight
        if model.soft_prompt is None:
            self.word_embeddings = words
        else:
            table = extended_embedding_table(model)
            self.word_embeddings = self.create_parameter(
                list(table.shape), default_initializer=nn.initializer.Assign(table)
            )

    def forward(
        self,
        input_ids: paddle.Tensor,
        token_type_ids: paddle.Tensor,
        position_ids: paddle.Tensor,
        attention_mask: paddle.Tensor,
        masked_positions: paddle.Tensor,
    ) -> paddle.Tensor:
        embeds = F.embedding(input_ids, self.word_embeddings)
        positions = self.verbalizer.read_positions(masked_positions)
        hidden = encode_at_positions(self.encoder, positions, attention_mask, inputs_embeds=embeds,
                                     token_type_ids=token_type_ids, position_ids=position_ids,
                                     prefix=self.prefix or None)
        logits = self.verbalizer(hidden)
        if self.calibrated:
            logits = logits - self.log_prior
        if self.temperature != 1.0:
            logits = logits / self.temperature
        return F.softmax(logits, axis=-1) if self.activation == "softmax" else F.sigmoid(logits)


@paddle.no_grad()
def extended_embedding_table(model: PromptModel) -> np.ndarray:
    """The word embeddings with the soft prompt's ``S`` rows appended: ``[vocab + S, hidden]``.

    ``SoftPrompt()`` returns ``[S + 1, hidden]`` with a zero row 0; soft token ``k`` (1-based) gets
    row ``vocab + k - 1``. Call with the model in eval mode.
    """
    soft = model.soft_prompt().numpy()[1:]
    words = model.plm.get_input_embeddings().weight.numpy()
    return np.concatenate([words, soft.astype(words.dtype)], axis=0)


def save_static_graph(graph: InferenceGraph, directory: Path, num_masks: int, square_mask: bool = False) -> None:
    """``paddle.jit.save`` with dynamic batch and sequence length (``model.json`` + ``model.pdiparams``);
    ``square_mask``: the attention mask is ``[batch, sequence, sequence]`` (a template with options)."""
    shapes = {"masked_positions": [None, num_masks], "attention_mask": [None, None, None] if square_mask else [None, None]}
    spec = [InputSpec(shapes.get(name, [None, None]), "int64", name) for name in GRAPH_INPUTS]
    graph.eval()
    paddle.jit.save(graph, str(directory / PADDLE_PREFIX), input_spec=spec)
    for name in (PADDLE_MODEL_NAME, PADDLE_PARAMS_NAME):
        if not (directory / name).is_file():
            raise BundleError(f"export: paddle.jit.save did not write {name} (is FLAGS_enable_pir_api off?)")


def run_static_graph(directory: Path, feed: Dict[str, np.ndarray]) -> np.ndarray:
    loaded = paddle.jit.load(str(directory / PADDLE_PREFIX))
    return loaded(*[paddle.to_tensor(feed[name]) for name in GRAPH_INPUTS]).numpy()




@paddle.no_grad()
def reference_probabilities(model: PromptModel, batch: Dict[str, np.ndarray], task: Task) -> np.ndarray:
    """Probabilities of the Paddle dynamic graph for a template batch, as ``predict_proba`` gives them
    (``task.activate``: temperature and activation) — what every exported graph is checked against."""
    logits = model(**{k: paddle.to_tensor(v) for k, v in batch.items()})
    return task.activate(logits.numpy())
