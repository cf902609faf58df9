"""``fewshot-select``: the unlabelled texts most worth labelling next, by a trained classifier.

    fewshot-select --classifier out/ --unlabeled data.txt --k 100 --strategy diverse --output to_label.tsv

``--unlabeled``: one text (or ``text_a<TAB>text_b``) per line, or JSON lines (``--fields``).
Strategies: ``margin`` (two most probable classes closest), ``entropy``, ``diverse`` (the most
uncertain texts spread over k-means clusters of the mask hidden states; see
``fewshot.analysis.selection``). The output is tab-separated with a header: ``line`` (in
``--unlabeled``), ``text``, ``predicted``, ``score`` (uncertainty: higher is less sure), best first.
"""

from __future__ import annotations

import argparse
import sys
from typing import List, Optional

from ..analysis.selection import DEFAULT_POOL_FACTOR, STRATEGIES, select_texts
from ..analysis.tables import write_tsv
from ..classifier import DEFAULT_BATCH_SIZE, PromptClassifier
from ..data import format_fields, is_json_lines, parse_fields, read_examples
from ..training.progress import quiet_paddlenlp
from ..numbers import int_option
from .common import run

COLUMNS = ("line", "text", "predicted", "score")
DEFAULT_FIELDS = format_fields({"text_a": "sentence"})


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="fewshot-select", description="Choose which unlabelled texts to label next.")
    p.add_argument("--classifier", required=True, help="a classifier saved by fewshot-train or PromptClassifier.save")
    p.add_argument("--unlabeled", required=True, help="texts: one per line (text_a<TAB>text_b for pairs) or JSON lines")
    p.add_argument("--k", type=int_option(low=1), required=True, help="how many texts to choose")
    p.add_argument("--strategy", choices=STRATEGIES, default="margin")
    p.add_argument("--output", required=True, help="the chosen texts, best first (tab-separated, header line)")
    p.add_argument("--pool-factor", type=int_option(low=1), default=DEFAULT_POOL_FACTOR,
                   help=f"diverse: cluster the pool-factor*k most uncertain texts (default {DEFAULT_POOL_FACTOR})")
    p.add_argument("--seed", type=int_option(low=0, high=2**32 - 1), default=0, help="diverse: k-means seed")
    p.add_argument("--batch-size", type=int_option(low=1), default=DEFAULT_BATCH_SIZE)
    p.add_argument("--fields", default=DEFAULT_FIELDS, help=f"JSON-lines keys (default {DEFAULT_FIELDS})")
    return p


def main(argv: Optional[List[str]] = None) -> int:
    """``fewshot-select``: exit status 0, or 2 with one error line for bad input."""
    args = build_parser().parse_args(argv)
    return run(lambda: _select(args), "fewshot-select")


def _select(args: argparse.Namespace) -> int:
    quiet_paddlenlp()
    clf = PromptClassifier.load(args.classifier)
    fields = parse_fields(args.fields) if is_json_lines(args.unlabeled) else None
    examples = read_examples(args.unlabeled, labeled=False, fields=fields)
    chosen, scores, probs = select_texts(clf, examples, args.k, args.strategy, args.batch_size, args.pool_factor,
                                         args.seed)
    predicted = clf.task.decode(probs[chosen])
    rows = [{"line": examples[i].line, "text": examples[i].text_a if examples[i].text_b is None
             else f"{examples[i].text_a} / {examples[i].text_b}", "predicted": clf.task.label_field(label),
             "score": float(scores[i])} for i, label in zip(chosen, predicted)]
    write_tsv(args.output, COLUMNS, rows)
    print(f"fewshot-select: {len(rows)} of {len(examples)} texts ({args.strategy}) -> {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
