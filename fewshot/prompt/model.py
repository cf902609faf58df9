"""The prompt model: PLM embeddings + soft prompt → encoder → hidden states at [MASK] → verbalizer → logits.

``ClsHeadModel`` is the fine-tuning baseline on the same PLM: a linear head on the ``[CLS]`` hidden state.
"""

from __future__ import annotations

from typing import Optional, Tuple, Union

import numpy as np
import paddle
import paddle.nn as nn

from ..template import Template
from .partial_encoder import encode_at_positions
from .soft_prompt import PrefixPrompt, SoftPrompt


class PromptModel(nn.Layer):
    """A masked-LM PLM turned into a classifier by a template and a verbalizer.

    ``forward`` takes the arrays produced by ``TemplateEncoder.encode`` + ``pad_batch`` and returns class
    logits; with ``return_hidden=True`` also the flattened mask hidden states (used by the RGL loss).
    """

    def __init__(self, plm: nn.Layer, template: Template, verbalizer: nn.Layer, calibrated: bool = False):
        super().__init__()
        self.plm = plm
        self.verbalizer = verbalizer
        self.num_masks = template.num_masks
        word_embeddings = plm.get_input_embeddings()
        self.soft_prompt: Optional[SoftPrompt] = (
            SoftPrompt(template.soft_tokens, word_embeddings) if template.num_soft_tokens else None
        )
        self.prefix: Optional[PrefixPrompt] = None
        if template.prefix is not None:
            config = plm.base_model.config
            self.prefix = PrefixPrompt(template.prefix, word_embeddings, config.num_hidden_layers,
                                       config.num_attention_heads)
        self.calibrated = calibrated
        if calibrated:
            # log of the label prior, subtracted from the logits (contextual calibration); a saved,
            # exported constant rather than a parameter, so training never moves it.
            self.register_buffer("log_prior", paddle.zeros([len(verbalizer.labels)], dtype="float32"), persistable=True)

    def set_log_prior(self, log_prior: "np.ndarray") -> None:
        """Set the label log-prior that calibrated logits subtract (``calibrated=True`` models only)."""
        if not self.calibrated:
            raise ValueError("set_log_prior: this PromptModel was built with calibrated=False")
        self.log_prior.set_value(paddle.to_tensor(np.asarray(log_prior, dtype="float32")))

    @property
    def encoder(self) -> nn.Layer:
        """The PLM's transformer encoder (without its LM head)."""
        return self.plm.base_model

    def prompt_parameters(self) -> list:
        """Parameters that are not part of the pretrained model: soft prompt and soft verbalizer head."""
        plm_ids = {id(p) for p in self.plm.parameters()}
        return [p for p in self.parameters() if id(p) not in plm_ids]

    def embed(self, input_ids: paddle.Tensor, soft_token_ids: paddle.Tensor) -> paddle.Tensor:
        """Word embeddings with soft-token positions replaced by the soft prompt table."""
        words = self.plm.get_input_embeddings()(input_ids)
        table = self.soft_prompt()
        soft = paddle.gather(table, soft_token_ids.reshape([-1])).reshape(words.shape)
        is_soft = (soft_token_ids > 0).unsqueeze(-1).astype(words.dtype)
        return words * (1 - is_soft) + soft * is_soft

    def mask_hidden_states(
        self,
        input_ids: paddle.Tensor,
        token_type_ids: paddle.Tensor,
        position_ids: paddle.Tensor,
        attention_mask: paddle.Tensor,
        soft_token_ids: paddle.Tensor,
        masked_positions: paddle.Tensor,
    ) -> paddle.Tensor:
        """Encoder hidden states at the mask slots, ``[batch, num_masks, hidden]``."""
        kwargs = dict(token_type_ids=token_type_ids, position_ids=position_ids, attention_mask=attention_mask)
        if self.soft_prompt is not None:
            kwargs["inputs_embeds"] = self.embed(input_ids, soft_token_ids)
        else:
            kwargs["input_ids"] = input_ids
        if self.prefix is not None:
            kwargs["prefix"] = self.prefix()
        return encode_at_positions(self.encoder, masked_positions, **kwargs)

    def forward(
        self,
        input_ids: paddle.Tensor,
        token_type_ids: paddle.Tensor,
        position_ids: paddle.Tensor,
        attention_mask: paddle.Tensor,
        soft_token_ids: paddle.Tensor,
        masked_positions: paddle.Tensor,
        return_hidden: bool = False,
    ) -> Union[paddle.Tensor, Tuple[paddle.Tensor, paddle.Tensor]]:
        hidden = self.mask_hidden_states(
            input_ids, token_type_ids, position_ids, attention_mask, soft_token_ids,
            self.verbalizer.read_positions(masked_positions),
        )
        logits = self.verbalizer(hidden)
        if self.calibrated:
            logits = logits - self.log_prior
        if return_hidden:
            return logits, hidden.reshape([hidden.shape[0], -1])
        return logits


class ClsHeadModel(nn.Layer):
    """Fine-tuning baseline: dropout + a new linear layer on the encoder's raw ``[CLS]`` hidden state.

    Same ``forward`` signature as ``PromptModel`` so the same trainer, collator and losses apply;
    ``soft_token_ids`` and ``masked_positions`` are accepted and ignored. The PLM's pooler is not
    used: small checkpoints pretrained without a next-sentence task leave it untrained.
    """

    def __init__(self, plm: nn.Layer, num_labels: int):
        super().__init__()
        self.plm = plm
        config = plm.base_model.config
        self.dropout = nn.Dropout(config.hidden_dropout_prob)
        self.classifier = nn.Linear(config.hidden_size, num_labels)

    @property
    def encoder(self) -> nn.Layer:
        """The PLM's transformer encoder (without its LM head)."""
        return self.plm.base_model

    def prompt_parameters(self) -> list:
        """The new head's parameters, so that they can get their own learning rate."""
        return list(self.classifier.parameters())

    def forward(
        self,
        input_ids: paddle.Tensor,
        token_type_ids: Optional[paddle.Tensor] = None,
        position_ids: Optional[paddle.Tensor] = None,
        attention_mask: Optional[paddle.Tensor] = None,
        soft_token_ids: Optional[paddle.Tensor] = None,
        masked_positions: Optional[paddle.Tensor] = None,
        return_hidden: bool = False,
    ) -> Union[paddle.Tensor, Tuple[paddle.Tensor, paddle.Tensor]]:
        if attention_mask is None:
            attention_mask = (input_ids != self.encoder.config.pad_token_id).astype("int64")
        first = paddle.zeros([input_ids.shape[0], 1], dtype="int64")
        cls = encode_at_positions(
            self.encoder, first, attention_mask,
            input_ids=input_ids, token_type_ids=token_type_ids, position_ids=position_ids,
        )[:, 0]
        logits = self.classifier(self.dropout(cls))
        if return_hidden:
            return logits, cls
        return logits
