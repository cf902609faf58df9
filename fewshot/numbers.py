"""One check for every numeric option: finite and in range, for CLIs (argparse types) and dataclasses alike.

>>> check_number("learning_rate", 3e-5, low=0, low_open=True)
3e-05
>>> check_number("batch_size", 0, low=1)
Traceback (most recent call last):
fewshot.numbers.OptionError: batch_size must be ≥ 1, got 0
>>> int_option(low=1)("32")
32
"""

from __future__ import annotations

import argparse
import dataclasses
import math
from typing import Callable, Optional, Union

from .errors import FewshotError

Number = Union[int, float]


class OptionError(FewshotError):
    """A numeric option is not a finite number in its range."""


def check_number(name: str, value: Number, low: Optional[Number] = None, high: Optional[Number] = None,
                 low_open: bool = False, high_open: bool = False) -> Number:
    """``value`` unchanged when it is a finite number within ``[low, high]`` (``(low, …`` with ``low_open``);
    otherwise an :class:`OptionError` naming ``name``, the range and the value."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise OptionError(f"{name} must be a finite number, got {value!r}")
    if low is not None and (value <= low if low_open else value < low):
        raise OptionError(f"{name} must be {'>' if low_open else '≥'} {low}, got {value}")
    if high is not None and (value >= high if high_open else value > high):
        raise OptionError(f"{name} must be {'<' if high_open else '≤'} {high}, got {value}")
    return value


def _option_type(parse: Callable[[str], Number], kind: str, low: Optional[Number], high: Optional[Number],
                 low_open: bool, high_open: bool) -> Callable[[str], Number]:
    def convert(text: str) -> Number:
        try:
            value = parse(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {kind}, got {text!r}") from None
        try:
            return check_number("the value", value, low, high, low_open, high_open)
        except OptionError as exc:
            raise argparse.ArgumentTypeError(str(exc).replace("the value must be", "must be")) from None

    return convert


def int_option(low: Optional[int] = None, high: Optional[int] = None) -> Callable[[str], int]:
    """An argparse ``type`` for an integer in ``[low, high]``: ``--batch-size 0`` → ``argument --batch-size: must be ≥ 1, got 0``."""
    return _option_type(int, "an integer", low, high, False, False)  # type: ignore[return-value]


def float_option(low: Optional[float] = None, high: Optional[float] = None, low_open: bool = False,
                 high_open: bool = False) -> Callable[[str], float]:
    """An argparse ``type`` for a finite float in range: ``--max-wait-ms nan`` → ``must be a finite number, got nan``."""
    return _option_type(float, "a number", low, high, low_open, high_open)  # type: ignore[return-value]


def check_fields(instance: object) -> None:
    """Check every dataclass field of ``instance`` whose metadata has a ``range`` (``check_number``'s
    keyword arguments); None passes (an unset optional). The same ranges type the CLIs' options
    (``fewshot.cli.options.add_dataclass_options``), so a value is checked alike from Python and the command line.

    >>> check_fields(PromptTrainingArguments(learning_rate=float("nan")))
    Traceback (most recent call last):
    fewshot.numbers.OptionError: learning_rate must be a finite number, got nan
    """
    for f in dataclasses.fields(instance):  # type: ignore[arg-type]
        bounds = f.metadata.get("range")
        value = getattr(instance, f.name)
        if bounds is not None and value is not None:
            check_number(f.name, value, **bounds)
