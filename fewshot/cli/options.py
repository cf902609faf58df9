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
from typing import Any, Callable, Dict, Mapping, Optional, Sequence, Union

from ..numbers import float_option, int_option


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
    parser: argparse.ArgumentParser, cls: type, names: Sequence[str], flags: Optional[Mapping[str, Any]] = None,
    defaults: Optional[Mapping[str, Any]] = None,
) -> None:
    """Add ``--field-name`` for each of ``names`` (or the flag ``flags`` gives), destination the field
    name, type, default and help from ``cls``'s field (a ``flags`` value may be a tuple of option strings:
    the first is the name, the others aliases such as PaddleNLP's spellings). Booleans that default to False become
    ``store_true`` switches; a list field is an option given once per item (``--pattern A --pattern B``),
    its default the field's when not given. ``defaults`` overrides a field's default for this command only."""
    hints = typing.get_type_hints(cls)
    by_name = {f.name: f for f in dataclasses.fields(cls)}
    for name in names:
        f = by_name[name]
        given = (flags or {}).get(name, "--" + name.replace("_", "-"))
        flag_strings = (given,) if isinstance(given, str) else tuple(given)
        default = (defaults or {}).get(name, _default(f))
        help_text = f.metadata.get("help", "")
        kind = _base_type(hints[name])
        item = _item_type(kind)
        if item is not None:
            shown = f" (default {default})" if default else ""
            parser.add_argument(*flag_strings, dest=name, type=item, action=_ListOption, default=default,
                                help=help_text + " (repeat for several)" + shown)
        elif kind is bool and default is False:
            parser.add_argument(*flag_strings, dest=name, action="store_true", help=help_text)
        elif kind is bool:
            parser.add_argument(*flag_strings, dest=name, action=argparse.BooleanOptionalAction, default=default, help=help_text)
        else:
            shown = f" (default {default})" if default is not None else ""
            parser.add_argument(*flag_strings, dest=name, type=_value_type(kind, f.metadata.get("range")), default=default,
                                help=help_text + shown)


def _value_type(kind: Any, bounds: Optional[Mapping[str, Any]]) -> Callable[[str], Any]:
    """The argparse ``type`` of a field: numbers checked finite and in the field's ``range`` metadata
    (``fewshot.numbers``) as they are parsed; other types as they are."""
    if kind is int:
        return int_option(**(bounds or {}))
    if kind is float:
        return float_option(**(bounds or {}))
    return kind


class OnceOption(argparse.Action):
    """An option given at most once: a second ``--template`` is an error, not silently the one that counts."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: Optional[str] = None) -> None:
        if getattr(namespace, self.dest, self.default) is not self.default:
            parser.error(f"argument {option_string}: given more than once; give it once")
        setattr(namespace, self.dest, values)


def add_trust_option(parser: argparse.ArgumentParser) -> None:
    """``--trust-pickle``: the one switch that lets fewshot read pickled weights (see ``fewshot.loading``)."""
    parser.add_argument("--trust-pickle", action="store_true",
                        help="read pickled (.pdparams) weights: of a checkpoint saved by an older fewshot, or of the "
                             "base model a saved classifier names; they can run code, so only for files you trust")


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


def with_underscore_spellings(names: Sequence[str], flags: Mapping[str, Union[str, Sequence[str]]]) -> Dict[str, Sequence[str]]:
    """Each option's flag plus PaddleNLP's spelling of it (``--field_name``), for ``add_dataclass_options``.

    >>> with_underscore_spellings(["max_steps", "use_rdrop"], {"use_rdrop": "--rdrop"})
    {'max_steps': ('--max-steps', '--max_steps'), 'use_rdrop': ('--rdrop', '--use_rdrop')}
    """
    spellings: Dict[str, Sequence[str]] = {}
    for name in names:
        given = flags.get(name, "--" + name.replace("_", "-"))
        strings = (given,) if isinstance(given, str) else tuple(given)
        spellings[name] = strings if "--" + name in strings else (*strings, "--" + name)
    return spellings


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
