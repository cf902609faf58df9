"""The prompt model: PLM embeddings + soft prompt → encoder → hidden states at [MASK] → verbalizer → logits."""

from __future__ import annotations

from typing import Optional, Tuple, Union

import paddle
import paddle.nn as nn

from .encoders import SoftPrompt
from .template import Template

INPUT_NAMES = ("input_ids", "token_type_ids", "position_ids", "attention_mask", "soft_token_ids", "masked_positions")


def gather_positions(sequence: paddle.Tensor, positions: paddle.Tensor) -> paddle.Tensor:
    """``[batch, seq, hidden]`` at ``[batch, k]`` positions → ``[batch, k, hidden]``."""
    index = positions.unsqueeze(-1).expand([positions.shape[0], positions.shape[1], sequence.shape[-1]])
    return paddle.take_along_axis(sequence, index, axis=1)


class PromptModel(nn.Layer):
    """A masked-LM PLM turned into a classifier by a template and a verbalizer.

    ``forward`` takes the arrays produced by ``Template.encode`` + ``pad_batch`` and returns class
    logits; with ``return_hidden=True`` also the flattened mask hidden states (used by the RGL loss).
    """

    def __init__(self, plm: nn.Layer, template: Template, verbalizer: nn.Layer):
        super().__init__()
        self.plm = plm
        self.verbalizer = verbalizer
        self.num_masks = template.num_masks
        word_embeddings = plm.get_input_embeddings()
        self.soft_prompt: Optional[SoftPrompt] = (
            SoftPrompt(template.soft_tokens, word_embeddings) if template.num_soft_tokens else None
        )

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
            out = self.encoder(inputs_embeds=self.embed(input_ids, soft_token_ids), **kwargs)
        else:
            out = self.encoder(input_ids=input_ids, **kwargs)
        sequence = out[0] if isinstance(out, (tuple, list)) else out.last_hidden_state
        return gather_positions(sequence, masked_positions)

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
            input_ids, token_type_ids, position_ids, attention_mask, soft_token_ids, masked_positions
        )
        logits = self.verbalizer(hidden)
        if return_hidden:
            return logits, hidden.reshape([hidden.shape[0], -1])
        return logits
