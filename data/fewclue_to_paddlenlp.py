"""Convert a FewCLUE task folder into PaddleNLP's few-shot layout, which fewshot-train reads directly.

    python data/fewclue_to_paddlenlp.py ../shared/fewclue/tnews --split 0 --output data/tnews-0 \
        --label-words data/tnews/label.txt

writes (atomically: an interrupted run leaves no half-written folder)::

    data/tnews-0/train.txt   text<TAB>label      (train_0.json)
                 dev.txt     text<TAB>label      (dev_0.json)
                 test.txt    text<TAB>label      (test_public.json)
                 data.txt    text                (test.json: texts to predict)
                 label.txt   label==word lines   (--label-words), or one label per line

The label field is ``label_desc`` (TNEWS) or ``label_des`` (IFLYTEK), whichever the rows have. Tabs
and line breaks inside a text would break the TSV layout, so they become spaces (the count is
printed). The FewCLUE data itself is never committed: convert it where you use it.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Dict, List, Optional, Sequence

from fewshot.atomic import atomic_directory
from fewshot.cli.common import run
from fewshot.data import Example, parse_json_object, read_jsonl, read_label_words, read_lines, write_label_words
from fewshot.errors import DataError

LABEL_FIELDS = ("label_desc", "label_des")
_TSV_BREAKERS = re.compile(r"[\t\r\n]+")


def label_field(path: Path) -> str:
    """The label key of a FewCLUE file: ``label_desc`` or ``label_des``, from its first row."""
    for number, line in read_lines(path):
        if line.strip():
            row = parse_json_object(line)
            for name in LABEL_FIELDS:
                if name in row:
                    return name
            raise DataError(f"{path} line {number}: no {' or '.join(LABEL_FIELDS)} key")
    raise DataError(f"{path}: no rows")


def tsv_text(text: str) -> str:
    """A text that fits one TSV column: ``"上半句\\t下半句"`` → ``"上半句 下半句"``."""
    return _TSV_BREAKERS.sub(" ", text)


def write_tsv(path: Path, examples: Sequence[Example], labeled: bool) -> int:
    """Write ``text<TAB>label`` (or ``text``) lines; returns how many texts had tabs or line breaks."""
    cleaned = 0
    lines = []
    for example in examples:
        text = tsv_text(example.text_a)
        cleaned += text != example.text_a
        lines.append(f"{text}\t{example.label}" if labeled else text)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return cleaned


def convert(task_dir: Path, split: int, output: Path, label_words: Optional[Path] = None) -> Dict[str, int]:
    """Write the PaddleNLP layout for ``split`` of ``task_dir`` to ``output``; returns rows per file."""
    if not (task_dir / f"train_{split}.json").is_file():
        raise DataError(f"{task_dir}: no train_{split}.json (a FewCLUE task folder has train_0..4.json)")
    field = label_field(task_dir / f"train_{split}.json")
    sources = {"train.txt": f"train_{split}.json", "dev.txt": f"dev_{split}.json", "test.txt": "test_public.json"}
    fields = {"text_a": "sentence", "label": field}
    rows: Dict[str, List[Example]] = {
        name: read_jsonl(task_dir / source, fields=fields) for name, source in sources.items()
        if (task_dir / source).is_file()
    }
    if (task_dir / "test.json").is_file():
        rows["data.txt"] = read_jsonl(task_dir / "test.json", fields={"text_a": "sentence"}, labeled=False)
    labels = sorted({e.label for name in ("train.txt", "dev.txt", "test.txt") for e in rows.get(name, [])})
    words = read_label_words(label_words) if label_words else {label: [] for label in labels}
    missing = [label for label in labels if label not in words]
    if missing:
        raise DataError(f"{label_words}: no words for label(s) {', '.join(missing[:5])}")
    counts: Dict[str, int] = {}
    with atomic_directory(output, "the converted task") as tmp:
        for name, examples in rows.items():
            cleaned = write_tsv(tmp / name, examples, labeled=name != "data.txt")
            counts[name] = len(examples)
            if cleaned:
                print(f"{name}: {cleaned} text(s) had tabs or line breaks, now spaces", file=sys.stderr)
        write_label_words(tmp / "label.txt", {label: words[label] for label in labels})
        counts["label.txt"] = len(labels)
    return counts


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("task_dir", help="FewCLUE task folder (train_k.json, dev_k.json, test_public.json, test.json)")
    p.add_argument("--split", type=int, default=0, help="which of the five few-shot splits (default 0)")
    p.add_argument("--output", required=True, help="folder to write (replaced atomically)")
    p.add_argument("--label-words", default=None, help="label==word file for label.txt (default: bare labels)")
    args = p.parse_args(argv)

    def go() -> int:
        counts = convert(Path(args.task_dir), args.split, Path(args.output),
                         Path(args.label_words) if args.label_words else None)
        print(", ".join(f"{name}: {n}" for name, n in counts.items()) + f" -> {args.output}")
        return 0

    return run(go, "fewclue_to_paddlenlp")


if __name__ == "__main__":
    sys.exit(main())
