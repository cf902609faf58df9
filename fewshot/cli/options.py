"""Command-line options generated from dataclass fields, so each default has one source.

>>> parser = argparse.ArgumentParser()
>>> add_dataclass_options(parser, PromptTrainingArguments, ["learning_rate", "use_rdrop"], {"use_rdrop": "--rdrop"})
>>> vars(parser.parse_args(["--rdrop"]))
{'learning_rate': 3e-05, 'use_rdrop': True}
"""

from __future__ import annotations

import argparse
import dataclasses
import typing
from typing import Any, Dict, Mapping, Optional, Sequence


def _base_type(annotation: Any) -> Any:
    """``Optional[float]`` → ``float``; ``List[str]`` stays ``List[str]`` (see :func:`_item_type`)."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if typing.get_origin(annotation) is typing.Union and len(args) == 1:
        return _base_type(args[0])
    return annotation


def _item_type(annotation: Any) -> Any:
    """``List[str]`` → ``str``; None for anything that is not a list."""
    if typing.get_origin(annotation) in (list, typing.List):
        return typing.get_args(annotation)[0]
    return None


def add_dataclass_options(
    parser: argparse.ArgumentParser, cls: type, names: Sequence[str], flags: Optional[Mapping[str, str]] = None,
    defaults: Optional[Mapping[str, Any]] = None,
) -> None:
    """Add ``--field-name`` for each of ``names`` (or the flag ``flags`` gives), destination the field
    name, type, default and help from ``cls``'s field. Booleans that default to False become
    ``store_true`` switches; a list field is an option given once per item (``--pattern A --pattern B``),
    its default the field's when not given. ``defaults`` overrides a field's default for this command only."""
    hints = typing.get_type_hints(cls)
    by_name = {f.name: f for f in dataclasses.fields(cls)}
    for name in names:
        f = by_name[name]
        flag = (flags or {}).get(name, "--" + name.replace("_", "-"))
        default = (defaults or {}).get(name, _default(f))
        help_text = f.metadata.get("help", "")
        kind = _base_type(hints[name])
        item = _item_type(kind)
        if item is not None:
            shown = f" (default {default})" if default else ""
            parser.add_argument(flag, dest=name, type=item, action=_ListOption, default=default,
                                help=help_text + " (repeat for several)" + shown)
        elif kind is bool and default is False:
            parser.add_argument(flag, dest=name, action="store_true", help=help_text)
        elif kind is bool:
            parser.add_argument(flag, dest=name, action=argparse.BooleanOptionalAction, default=default, help=help_text)
        else:
            shown = f" (default {default})" if default is not None else ""
            parser.add_argument(flag, dest=name, type=kind, default=default, help=help_text + shown)


class _ListOption(argparse.Action):
    """Collects each occurrence of a repeatable option; the first one replaces the default list."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: Optional[str] = None) -> None:
        current = getattr(namespace, self.dest, None)
        given = current if isinstance(current, list) and current is not self.default else []
        setattr(namespace, self.dest, [*given, values])


def _default(f: "dataclasses.Field[Any]") -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        return f.default_factory()  # type: ignore[misc]
    return None


def dataclass_values(args: argparse.Namespace, names: Sequence[str]) -> Dict[str, Any]:
    """The parsed values of ``names``: ``{"learning_rate": 3e-05, ...}``."""
    return {name: getattr(args, name) for name in names}


def add_engine_options(parser: argparse.ArgumentParser, legacy_engines: Sequence[str] = ()) -> None:
    """``--engine`` (what runs the bundle's graph) and ``--precision``, for every command that runs a bundle.
    ``legacy_engines`` are further ``--engine`` values a command still accepts, as deprecated spellings it maps itself.

    >>> add_engine_options(parser); vars(parser.parse_args(["--engine", "openvino", "--precision", "bf16"]))
    {'engine': 'openvino', 'precision': 'bf16'}
    """
    from ..runtime.engines import DEFAULT_ENGINE, DEFAULT_PRECISION, ENGINE_CHOICES, PRECISION_CHOICES

    parser.add_argument("--engine", choices=[*ENGINE_CHOICES, *legacy_engines], default=DEFAULT_ENGINE,
                        metavar="{" + ",".join(ENGINE_CHOICES) + "}",
                        help=f"inference engine (default {DEFAULT_ENGINE}); openvino needs pip install "
                             "'fewshot[openvino]'; auto: the fastest installed, printed at start")
    parser.add_argument("--precision", choices=PRECISION_CHOICES, default=DEFAULT_PRECISION,
                        help=f"fp32 (model.onnx), int8 (model.int8.onnx), bf16 (model.onnx in bfloat16: openvino on "
                             f"CPUs with native bf16), fp16 (model.fp16.onnx, GPU); auto: the fastest the bundle, "
                             f"engine and CPU allow (default {DEFAULT_PRECISION})")
