"""``fewshot-pretrain``: continued masked-LM pretraining on a domain corpus, from the command line.

    fewshot-pretrain corpus/ --model ernie-3.0-base-zh --output runs/domain --max-steps 1000 --eval-steps 200

PaddleNLP's ``run_pretrain.py`` spellings are extra option strings on the same options, so its
command runs unchanged (also under ``python -m paddle.distributed.launch``)::

    fewshot-pretrain --model_name_or_path ernie-3.0-base-zh --input_dir corpus/ --output_dir out \
        --split 198,1,1 --binary_head True --max_seq_len 256 --micro_batch_size 128 --max_steps 2400 \
        --checkpoint_steps 240 --save_steps 320 --logging_freq 160 --eval_freq 160

Options and defaults are generated from ``fewshot.pretraining.config.PretrainConfig``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import List, Optional

from ..pretraining.corpus import measure_corpus
from ..pretraining.config import STATS_NAME, PretrainConfig, PretrainError
from ..pretraining.pretrain import run_pretraining
from ..training.distributed import end_process
from ..training.progress import LossLines, quiet_paddlenlp
from .common import run, show_fewshot_logs
from .corpus_stats import add_corpus_arguments, corpus_paths, report_stats
from .options import add_dataclass_options

RUN_OPTIONS = (
    "model", "tokenizer", "max_seq_length", "mask_ratio", "max_steps", "save_steps", "checkpoint_steps", "eval_steps",
    "split", "eval_ratio", "batch_size", "eval_batch_size", "learning_rate", "warmup_ratio", "weight_decay",
    "logging_steps", "seed", "resume", "overwrite", "keep_checkpoints", "disable_tqdm",
)
FLAGS = {
    "model": ("--model", "--model_name_or_path"),
    "tokenizer": ("--tokenizer", "--tokenizer_name_or_path"),
    "max_seq_length": ("--max-seq-length", "--max-seq-len", "--max_seq_len"),
    "batch_size": ("--batch-size", "--micro-batch-size", "--micro_batch_size"),
    "max_steps": ("--max-steps", "--max_steps"),
    "save_steps": ("--save-steps", "--save_steps"),
    "checkpoint_steps": ("--checkpoint-steps", "--checkpoint_steps"),
    "eval_steps": ("--eval-steps", "--eval-freq", "--eval_freq"),
    "logging_steps": ("--logging-steps", "--logging-freq", "--logging_freq"),
    "learning_rate": ("--learning-rate", "--learning_rate"),
    "weight_decay": ("--weight-decay", "--weight_decay"),
}
"""PaddleNLP's ``run_pretrain.py`` spellings (ernie-1.0 / ernie-3.0 model zoo) of the same options."""
BINARY_HEAD_NOTE = ("--binary_head: ignored: fewshot-pretrain continues masked-LM training only; "
                    "there is no next-sentence (binary) head to train")
SCRATCH_OPTIONS = ("from_scratch", "hidden_size", "num_layers", "num_heads", "intermediate_size", "vocab_min_freq")


def build_parser() -> argparse.ArgumentParser:
    """``fewshot-pretrain``'s options, generated from :class:`PretrainConfig` (plus the corpus options)."""
    p = argparse.ArgumentParser(
        prog="fewshot-pretrain",
        description="Continue masked-LM pretraining of an ERNIE model on unlabelled domain text "
        "(or train a small one from scratch); --stats-only just prints corpus statistics.",
    )
    add_corpus_arguments(p)
    p.add_argument("--output", "--output-dir", "--output_dir", required=True,
                   help="output directory (model_<step>/, checkpoint-<step>/, JSON reports)")
    p.add_argument("--binary-head", "--binary_head", type=parse_bool, default=None, metavar="True|False",
                   help="PaddleNLP's next-sentence head: accepted and ignored (not applicable to masked-LM continuation)")
    p.add_argument("--stats-only", action="store_true", help="print corpus statistics, write corpus_stats.json, and stop")
    p.add_argument("--verbose", action="store_true", help="PaddleNLP's full log, every training argument included")
    add_dataclass_options(p, PretrainConfig, RUN_OPTIONS, FLAGS)
    add_dataclass_options(p.add_argument_group("training from scratch (--from-scratch instead of --model)"),
                          PretrainConfig, SCRATCH_OPTIONS)
    return p


def config_from_args(args: argparse.Namespace) -> PretrainConfig:
    """Map parsed ``fewshot-pretrain`` options to a :class:`PretrainConfig`."""
    names = {f for f in PretrainConfig.__dataclass_fields__ if f not in ("extra_args", "output_dir")}
    values = {name: getattr(args, name) for name in names if hasattr(args, name)}
    values["corpus"] = corpus_paths(args)
    return PretrainConfig(output_dir=args.output, **values)


def parse_bool(text: str) -> bool:
    """PaddleNLP's ``strtobool`` spellings: ``True``/``False``, ``yes``/``no``, ``1``/``0``."""
    value = text.strip().lower()
    if value in ("true", "t", "yes", "y", "1", "on"):
        return True
    if value in ("false", "f", "no", "n", "0", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected True or False, got {text!r}")


def main(argv: Optional[List[str]] = None) -> int:
    """``fewshot-pretrain``: pretrain (or with --stats-only, count) and print a JSON summary; 2 on bad input
    (under ``paddle.distributed.launch`` with several processes the process ends here: ``end_process``)."""
    args = build_parser().parse_args(argv)
    return end_process(run(lambda: _pretrain(args), "fewshot-pretrain"))


def _pretrain(args: argparse.Namespace) -> int:
    quiet_paddlenlp(args.verbose)
    show_fewshot_logs()
    config = config_from_args(args)
    if args.binary_head is not None:
        print(BINARY_HEAD_NOTE, file=sys.stderr)
    if args.stats_only:
        if not config.model:
            raise PretrainError("--stats-only needs --model for its tokenizer")
        stats = measure_corpus(config.corpus, config.tokenizer or config.model, config.doc_per, config.text_field,
                               config.wwm_words)
        report_stats(stats, str(Path(config.output_dir) / STATS_NAME))
        return 0
    result = run_pretraining(config, callbacks=[] if args.verbose else [LossLines()])
    print(json.dumps(result.to_dict(), ensure_ascii=False, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
