"""Template string → parts → token ids: parsing, the one encoder, a template bound to a tokenizer (no Paddle).

>>> parse_template("{'text': 'text_a'}主题是{'mask'}")
[Part(kind='text', value='text_a', ...), Part(kind='hard', value='主题是', ...), Part(kind='mask', ...)]
"""

from .encoder import ROW_KEYS, Row, TemplateEncoder, Tokenize, pad_batch
from .parse import ENCODERS, KINDS, TEXT_SLOTS, Part, complete_short_form, field_slots, format_part, named_fields, parse_template, set_soft_encoder
from .style import FEWSHOT, PADDLENLP, EncodingStyle
from .template import Prefix, SoftToken, Template, token_ids
from .windows import DEFAULT_POOLING, TRAININGS, LongText, LongTextArg, flatten_windows, window_starts

__all__ = [
    "DEFAULT_POOLING", "EncodingStyle", "FEWSHOT", "PADDLENLP", "LongText", "LongTextArg", "TRAININGS", "complete_short_form", "flatten_windows", "window_starts",
    "ENCODERS", "KINDS", "Part", "Prefix", "ROW_KEYS", "Row", "SoftToken", "TEXT_SLOTS", "Template", "TemplateEncoder",
    "Tokenize", "field_slots", "format_part", "named_fields", "pad_batch", "parse_template", "set_soft_encoder", "token_ids",
]
