"""Which verbalizer a classifier uses: a kind and its options, checked before any model loads.

Given as a kind name (``"manual"``), as ``"KIND:OPTION=VALUE,..."`` (what a command line takes) or as a
mapping (``{"kind": "paddlenlp", "token_aggregate_type": "max"}``); saved as the name alone when no
option differs from the default, so older classifiers keep their config unchanged::

    >>> VerbalizerSpec.parse("paddlenlp:mask_aggregate_type=mean").config()
    {'kind': 'paddlenlp', 'mask_aggregate_type': 'mean'}
    >>> VerbalizerSpec.parse({"kind": "manual"}).config()
    'manual'
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from typing import Any, Dict, Mapping, Type, Union

from ...errors import FewshotError
from .base import VERBALIZERS, Verbalizer

VerbalizerArg = Union[str, Mapping[str, Any], "VerbalizerSpec"]
_BOOLEANS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}


@dataclass(frozen=True)
class VerbalizerSpec:
    """A verbalizer kind and its non-default options (validated)."""

    kind: str
    options: Dict[str, Any] = field(default_factory=dict)

    @property
    def cls(self) -> Type[Verbalizer]:
        return VERBALIZERS[self.kind]

    @classmethod
    def parse(cls, value: VerbalizerArg) -> "VerbalizerSpec":
        """A spec from a name, ``"KIND:OPTION=VALUE,..."`` or a mapping; ``FewshotError`` naming the problem."""
        if isinstance(value, VerbalizerSpec):
            return value
        if isinstance(value, str):
            kind, _, rest = value.partition(":")
            raw = {}
            for item in filter(None, (part.strip() for part in rest.split(","))):
                name, sep, option = item.partition("=")
                if not sep:
                    raise FewshotError(f"verbalizer {value!r}: option {item!r} is not NAME=VALUE")
                raw[name.strip()] = option.strip()
        elif isinstance(value, Mapping):
            raw = dict(value)
            kind = raw.pop("kind", None)
            if not isinstance(kind, str):
                raise FewshotError(f"verbalizer {dict(value)!r}: needs a 'kind' naming one of {', '.join(VERBALIZERS)}")
        else:
            raise FewshotError(f"verbalizer must be a kind name or a mapping, found {type(value).__name__}")
        kind = kind.strip()
        if kind not in VERBALIZERS:
            raise FewshotError(f"verbalizer must be one of {', '.join(VERBALIZERS)}, got {kind!r}")
        allowed = VERBALIZERS[kind].OPTIONS
        options = {}
        for name, option in raw.items():
            if name not in allowed:
                known = ", ".join(allowed) or "none"
                raise FewshotError(f"verbalizer {kind!r}: unknown option {name!r} (options: {known})")
            option = _coerce(kind, name, option, allowed[name])
            if option != allowed[name][0]:
                options[name] = option
        return cls(kind, options)

    def config(self) -> Union[str, Dict[str, Any]]:
        """The JSON form: the kind name alone, or ``{"kind": ..., option: value}``."""
        return {"kind": self.kind, **self.options} if self.options else self.kind

    def build(self, label_words: Dict[str, Any], tokenizer: Any, num_masks: int, predictions: Any,
              **extra: Any) -> Verbalizer:
        """The verbalizer layer over ``label_words``; ``extra`` are the runtime arguments of the kind."""
        return self.cls(label_words, tokenizer, num_masks, predictions, **self.options, **extra)


def verbalizer_option(text: str) -> Union[str, Dict[str, Any]]:
    """An argparse ``type`` for ``--verbalizer KIND[:OPTION=VALUE,...]``, returning the spec's JSON form.

    ``"paddlenlp:token_aggregate_type=max"`` → ``{'kind': 'paddlenlp', 'token_aggregate_type': 'max'}``.
    """
    try:
        return VerbalizerSpec.parse(text).config()
    except FewshotError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _coerce(kind: str, name: str, value: Any, allowed: tuple) -> Any:
    """``value`` as one of ``allowed`` (booleans also from "true"/"false")."""
    if isinstance(allowed[0], bool) and isinstance(value, str):
        value = _BOOLEANS.get(value.strip().lower(), value)
    if value not in allowed or isinstance(value, bool) != isinstance(allowed[0], bool):
        choices = ", ".join(str(a).lower() if isinstance(a, bool) else a for a in allowed)
        raise FewshotError(f"verbalizer {kind!r}: option {name!r} must be one of {choices}, got {value!r}")
    return value
