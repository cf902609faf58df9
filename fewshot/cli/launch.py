"""The console scripts of the commands that need an extra: each imports its command only when it runs,
so that an install without that extra says in one line what to install instead of a traceback.

``pip install fewshot`` (the runtime only), then ``fewshot-train --help``::

    fewshot-train: error: needs the "train" extra (paddle is not installed): pip install "fewshot[train]"

``fewshot-predict`` (the runtime) and ``fewshot-serve`` (its own check) are not launched from here.
"""

from __future__ import annotations

import importlib
import sys

TRAIN = "train"
ANALYSIS = "train,analysis"
COMMANDS = {
    "fewshot-train": ("train", TRAIN),
    "fewshot-export": ("export", TRAIN),
    "fewshot-pretrain": ("pretrain", TRAIN),
    "fewshot-corpus-stats": ("corpus_stats", TRAIN),
    "fewshot-compare": ("compare", TRAIN),
    "fewshot-labelwords": ("labelwords", TRAIN),
    "fewshot-import": ("import_paddlenlp", TRAIN),
    "fewshot-analyze": ("analyze", ANALYSIS),
    "fewshot-select": ("select", ANALYSIS),
    "fewshot-report": ("report", ANALYSIS),
}
"""Console script → (module in ``fewshot.cli``, the extras it needs)."""


def launch(prog: str) -> int:
    """Import ``prog``'s module and run its ``main``; a third-party module missing at import is one line
    on stderr naming the extra to install, and exit status 2."""
    module, extras = COMMANDS[prog]
    try:
        command = importlib.import_module(f"{__package__}.{module}")
    except ModuleNotFoundError as exc:
        if not exc.name or exc.name.split(".")[0] == "fewshot":
            raise
        plural = "s" if "," in extras else ""
        print(f'{prog}: error: needs the "{extras}" extra{plural} ({exc.name.split(".")[0]} is not installed): '
              f'pip install "fewshot[{extras}]"', file=sys.stderr)
        return 2
    return command.main()


def train() -> int:
    return launch("fewshot-train")


def export() -> int:
    return launch("fewshot-export")


def pretrain() -> int:
    return launch("fewshot-pretrain")


def corpus_stats() -> int:
    return launch("fewshot-corpus-stats")


def compare() -> int:
    return launch("fewshot-compare")


def labelwords() -> int:
    return launch("fewshot-labelwords")


def analyze() -> int:
    return launch("fewshot-analyze")


def select() -> int:
    return launch("fewshot-select")


def report() -> int:
    return launch("fewshot-report")


def import_paddlenlp() -> int:
    return launch("fewshot-import")
