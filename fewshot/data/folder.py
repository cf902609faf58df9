"""A PaddleNLP few-shot data folder: ``train.txt dev.txt test.txt data.txt label.txt`` (no Paddle).

PaddleNLP's few-shot applications read one folder per task::

    data/tnews/train.txt   text<TAB>label   (or text_a<TAB>text_b<TAB>label)
               dev.txt     the same
               test.txt    the same (optional)
               data.txt    text per line, to predict (optional)
               label.txt   news_car==汽车 lines, or one label per line

>>> folder = TaskFolder.open("data/tnews")
>>> folder.label_words()["news_car"], folder.has("test"), len(folder.examples("train"))
(['汽车'], True, 240)
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

from ..atomic import atomic_file
from ..errors import DataError
from .examples import Example, LabelSpec, read_tsv
from .labels import read_label_words
from .lines import PathLike

FOLDER_FILES: Dict[str, str] = {
    "train": "train.txt", "dev": "dev.txt", "test": "test.txt", "data": "data.txt", "labels": "label.txt",
}
"""The role of each file in the folder → its name."""
PREDICTIONS_NAME = "predictions.txt"
"""What the example's ``train.py --do_predict`` and ``infer.py --output_file`` write: ``text<TAB>label`` per ``data.txt`` line."""


@dataclass(frozen=True)
class TaskFolder:
    """A folder in PaddleNLP's few-shot layout; every file but ``label.txt`` is optional until read."""

    root: Path

    @classmethod
    def open(cls, path: PathLike) -> "TaskFolder":
        """The folder at ``path``; ``DataError`` when it is not a folder or has no ``label.txt``."""
        root = Path(path)
        if not root.is_dir():
            raise DataError(f"{root}: not a folder (a PaddleNLP data folder holds {', '.join(FOLDER_FILES.values())})")
        folder = cls(root)
        if not folder.has("labels"):
            raise DataError(f"{folder.path('labels')}: file does not exist (a PaddleNLP data folder names its "
                            "labels in label.txt: one label, or label==word, per line)")
        return folder

    @staticmethod
    def looks_like(path: PathLike) -> bool:
        """Whether ``path`` is a folder holding ``label.txt`` and ``train.txt``, ``test.txt`` or ``data.txt``."""
        root = Path(path)
        names = ("train", "test", "data")
        return (root / FOLDER_FILES["labels"]).is_file() and any((root / FOLDER_FILES[n]).is_file() for n in names)

    def path(self, role: str) -> Path:
        """The file of ``role`` (``train``, ``dev``, ``test``, ``data`` or ``labels``), present or not."""
        if role not in FOLDER_FILES:
            raise DataError(f"{self.root}: no file role {role!r} (known: {', '.join(FOLDER_FILES)})")
        return self.root / FOLDER_FILES[role]

    def has(self, role: str) -> bool:
        """Whether the file of ``role`` exists."""
        return os.path.isfile(self.path(role))

    def require(self, role: str, why: str) -> Path:
        """The file of ``role``; ``DataError`` saying ``why`` it is needed when it is missing."""
        path = self.path(role)
        if not path.is_file():
            raise DataError(f"{path}: file does not exist ({why} needs it)")
        return path

    def label_words(self) -> Dict[str, List[str]]:
        """``label.txt`` as ``{label: [words]}``, labels in file order."""
        return read_label_words(self.path("labels"))

    def examples(self, role: str, labels: Optional[LabelSpec] = None, why: Optional[str] = None) -> List[Example]:
        """The labelled rows of ``train``, ``dev`` or ``test``, each label checked against ``labels``."""
        return read_tsv(self.require(role, why or f"reading {role}"), labels=labels)

    def texts(self, why: str = "prediction") -> List[Example]:
        """The unlabelled rows of ``data.txt`` (``text`` or ``text_a<TAB>text_b`` per line)."""
        return read_tsv(self.require("data", why), labeled=False)


def write_predictions(path: PathLike, rows: Sequence[Example], labels: Sequence[Any]) -> int:
    """Write ``text<TAB>label`` (``text_a<TAB>text_b<TAB>label``) lines atomically, the layout of ``train.txt``;
    returns the line count. ``[Example("球赛", None)], ["sports"]`` → ``球赛\tsports``."""
    lines = ["\t".join(t for t in (row.text_a, row.text_b, str(label)) if t is not None) for row, label in zip(rows, labels)]
    with atomic_file(path, "the predictions") as tmp:
        tmp.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return len(lines)
