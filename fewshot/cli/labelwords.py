"""``fewshot-labelwords``: propose label words from the masked LM's predictions on labelled data.

    fewshot-labelwords --train train.json --model ernie-3.0-base-zh \\
        --template "{'text': 'text_a'}这条新闻的主题是{'mask'}{'mask'}" --top 3 --output label.txt

writes ``label==word`` lines (``--top`` per label; review and edit them, then train with
``--labels label.txt``) and prints each word's score. Labels come from ``--labels`` (a file of
label names; words in it are ignored) or, without it, from the training data in order of first
appearance. How the words are chosen: ``fewshot.prompt.label_search``. Search settings
(``--top``, ``--candidates``, ``--min-texts``, ``--length``, ``--ngrams``) are generated from ``LabelWordSearch``.
"""

from __future__ import annotations

import argparse
import sys
from typing import Dict, List, Optional

from ..atomic import atomic_file
from ..classifier import DEFAULT_MAX_SEQ_LENGTH, DEFAULT_TEMPLATE, PromptClassifier
from ..data import DEFAULT_JSON_FIELDS, format_fields, is_json_lines, parse_fields, read_examples, write_label_words
from ..prompt.label_search import LabelWordSearch
from ..tasks import DEFAULT_LABEL_DELIMITER, build_task
from ..template import DEFAULT_POOLING, LongText
from ..training.progress import quiet_paddlenlp
from ..numbers import int_option
from .common import run
from .options import OnceOption, add_dataclass_options, dataclass_values

SEARCH_OPTIONS = ("top", "candidates", "min_texts", "length", "ngrams")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="fewshot-labelwords",
                                description="Propose label words from the masked LM's predictions at the template's masks.")
    p.add_argument("--train", required=True, help="labelled data: text<TAB>label file or JSON lines")
    p.add_argument("--model", required=True, help="PaddleNLP model name or local directory")
    p.add_argument("--template", action=OnceOption, default=DEFAULT_TEMPLATE, help=f"prompt template (default {DEFAULT_TEMPLATE})")
    p.add_argument("--output", required=True, help="label file to write (label==word lines), replaced atomically")
    p.add_argument("--labels", help="file naming the labels, one per line (default: the labels of --train)")
    p.add_argument("--multi-label", action="store_true", help="rows hold several labels (joined by --label-delimiter)")
    p.add_argument("--label-delimiter", default=DEFAULT_LABEL_DELIMITER)
    p.add_argument("--max-seq-length", type=int_option(low=1), default=DEFAULT_MAX_SEQ_LENGTH)
    p.add_argument("--long-text", action="store_true",
                   help=f"read every window of a long text (as training with --long-text {DEFAULT_POOLING} does)")
    default_fields = format_fields(DEFAULT_JSON_FIELDS)
    p.add_argument("--fields", default=default_fields, help=f"JSON-lines field mapping (default {default_fields})")
    add_dataclass_options(p, LabelWordSearch, SEARCH_OPTIONS)
    return p


def main(argv: Optional[List[str]] = None) -> int:
    """``fewshot-labelwords``: exit status 0, or 2 with one error line for bad input."""
    args = build_parser().parse_args(argv)
    return run(lambda: _propose(args), "fewshot-labelwords")


def _labels(args: argparse.Namespace, fields: Optional[Dict[str, str]]) -> List[str]:
    """The label names: from ``--labels``, else from the training rows in order of first appearance."""
    if args.labels:
        words, _ = build_task(args.labels)
        return list(words)
    names: List[str] = []
    for example in read_examples(args.train, fields=fields):
        names.extend(part.strip() for part in example.label.split(args.label_delimiter)) if args.multi_label \
            else names.append(example.label)
    return list(dict.fromkeys(names))


def _propose(args: argparse.Namespace) -> int:
    quiet_paddlenlp()
    fields = parse_fields(args.fields) if is_json_lines(args.train) else None
    label_words, task = build_task(_labels(args, fields), multi_label=args.multi_label, label_delimiter=args.label_delimiter)
    train = read_examples(args.train, labels=task.check, fields=fields)
    search = LabelWordSearch(**dataclass_values(args, SEARCH_OPTIONS))
    clf = PromptClassifier.from_task(args.model, task, {label: [] for label in label_words}, template=args.template,
                                     max_seq_length=args.max_seq_length, search=search,
                                     long_text=LongText() if args.long_text else None)
    words = clf.choose_label_words(train)
    with atomic_file(args.output) as tmp:
        write_label_words(tmp, words)
    scores = clf.label_word_choice["scores"]
    width = max(len(label) for label in words)
    for label, chosen in words.items():
        shown = ", ".join(f"{word} ({score:+.2f})" for word, score in zip(chosen, scores[label]))
        print(f"{label:<{width}}  {shown}")
    print(f"fewshot-labelwords: {len(words)} labels, {search.top} word(s) each from {len(train)} rows -> {args.output} "
          "(scores: mean log-likelihood ratio per character, label's texts vs the others)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
