"""``fewshot-corpus-stats``: count documents, sentences and tokens of a pretraining corpus, and the [UNK] share.

    fewshot-corpus-stats corpus/ --model ernie-3.0-base-zh --output stats.json
"""

from __future__ import annotations

import argparse
import sys
from typing import List, Optional

from ..pretraining.corpus import DOC_PER_CHOICES, CorpusError, CorpusStats, measure_corpus, write_stats
from .common import run


def add_corpus_arguments(parser: argparse.ArgumentParser) -> None:
    """The corpus options shared by ``fewshot-corpus-stats`` and ``fewshot-pretrain``."""
    parser.add_argument("corpus", nargs="*", help="text files or directories (searched recursively)")
    parser.add_argument("--input-dir", "--input_dir", dest="input_dirs", action="append", default=[],
                        help="a corpus file or directory, as a positional path (PaddleNLP's spelling; repeatable)")
    parser.add_argument("--doc-per", choices=DOC_PER_CHOICES, default=DOC_PER_CHOICES[0],
                        help="one document per non-blank line (default), per file, or per paragraph (blank-line separated)")
    parser.add_argument("--text-field", default=None,
                        help="JSON key holding the text in .json/.jsonl files (e.g. sentence for FewCLUE)")
    parser.add_argument("--wwm-words", default=None,
                        help="word list (one word per line) for whole-word masking; default: whole characters")



def corpus_paths(args: argparse.Namespace) -> List[str]:
    """The positional corpus paths and every ``--input-dir``; a ``CorpusError`` when there are none."""
    paths = [*args.corpus, *args.input_dirs]
    if not paths:
        raise CorpusError("no corpus given: name files or directories (or --input-dir DIR)")
    return paths


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fewshot-corpus-stats",
        description="Count documents, sentences and tokens of a pretraining corpus and the share of [UNK].",
    )
    add_corpus_arguments(parser)
    parser.add_argument("--model", required=True, help="model name or directory whose tokenizer counts the tokens")
    parser.add_argument("--output", default=None, help="write the statistics to this JSON file")
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    """``fewshot-corpus-stats``: print corpus statistics and optionally write them as JSON; 2 on bad input."""
    args = build_parser().parse_args(argv)

    def count() -> int:
        report_stats(measure_corpus(corpus_paths(args), args.model, args.doc_per, args.text_field, args.wwm_words), args.output)
        return 0

    return run(count, "fewshot-corpus-stats")


def report_stats(stats: CorpusStats, output: Optional[str]) -> None:
    """Print skipped files and lines, and the statistics table; write JSON when ``output`` is given."""
    for message in stats.skipped + stats.notes:
        print(message, file=sys.stderr)
    print(stats.table())
    if output:
        write_stats(stats, output)
        print(f"wrote {output}")


if __name__ == "__main__":
    sys.exit(main())
