"""``fewshot-pretrain``'s run: continue the masked-LM pretraining of an ERNIE-style model on a domain corpus.

Training runs in PaddleNLP's ``Trainer`` (so ``python -m paddle.distributed.launch --gpus 0,1
-- $(which fewshot-pretrain) …`` trains on several GPUs, and ``--resume`` continues an interrupted
run from its last ``checkpoint-N``). This module checks the output directory, reads the corpus,
builds the model and the trainer and writes the run's summary; the parts are

- ``config``: ``PretrainConfig`` (every option) and ``PretrainResult``;
- ``data``: packing, ``--split`` / held-out sequences, dynamic whole-character (or whole-word)
  masking seeded by (seed, epoch, sequence), so a resumed run sees the batches and masks of an
  uninterrupted one;
- ``trainer``: the loss with the LM head only at the masked positions, held-out perplexity,
  ``model_<step>`` every ``--save-steps`` and ``checkpoint-<step>`` every ``--checkpoint-steps``;
  on CPU, training and evaluation in ``fast_cpu_math`` and gradients freed after each step;
- ``models``: the model to continue or build from scratch, ``model_<step>/`` directories.

Output layout::

    output/corpus_stats.json      statistics of the corpus (see fewshot.pretraining.corpus)
    output/model_0/               only when training from scratch: the initial model and its vocabulary
    output/model_320/             model + tokenizer + pretrain_info.json at step 320
    output/checkpoint-240/        Trainer state for --resume (optimizer, RNG); the last few are kept
    output/pretrain_summary.json  losses, perplexities and saved models of the run
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import asdict
from pathlib import Path
from typing import Any, Dict, Optional, Sequence

import paddle
from paddlenlp.trainer import TrainerCallback, TrainingArguments
from paddlenlp.trainer.trainer_utils import get_last_checkpoint

from ..atomic import atomic_file
from ..documents import json_text
from .config import MODEL_PREFIX, STATS_NAME, SUMMARY_NAME, PretrainConfig, PretrainError, PretrainResult
from .corpus import Corpus, read_corpus, write_stats
from .data import check_enough_data, prepare_data
from .models import build_scratch_model, load_model, model_step
from .trainer import StepModelSaver, build_trainer, eval_history, test_evaluation, training_arguments

logger = logging.getLogger(__name__)


def prepare_output_dir(config: PretrainConfig, remove: bool = True) -> Optional[str]:
    """Check the output directory; return the checkpoint to resume from, if any.

    An output directory holding checkpoints is an error unless ``resume`` (continue the last
    one) or ``overwrite`` (delete checkpoints and ``model_*`` directories and start over; only
    where ``remove``, i.e. in the process that saves).
    """
    output = Path(config.output_dir)
    if output.exists() and not output.is_dir():
        raise PretrainError(f"{output}: exists and is not a directory")
    output.mkdir(parents=True, exist_ok=True)
    last = get_last_checkpoint(str(output))
    if config.overwrite:
        if remove:
            for path in [*output.glob("checkpoint-*"), *output.glob(f"{MODEL_PREFIX}*")]:
                shutil.rmtree(path)
        return None
    if last and not config.resume:
        raise PretrainError(
            f"{output}: has {Path(last).name} from an earlier run; pass --resume to continue it or --overwrite to start over"
        )
    if config.resume and not last:
        logger.warning("%s: no checkpoint to resume from; starting at step 0", output)
    return last if config.resume else None


def run_pretraining(config: PretrainConfig, callbacks: Sequence[TrainerCallback] = ()) -> PretrainResult:
    """Run (or resume) masked-LM pretraining as configured; return what it did.

    Parameter and optimizer-state names are drawn in a fresh namespace (``embedding_0.w_0``,
    ``…_moment1_0``), as in a new process, so a checkpoint's optimizer state matches them even
    when another model was built earlier in this process.
    """
    config.check()
    with paddle.utils.unique_name.guard():
        return _run_pretraining(config, callbacks)


def _run_pretraining(config: PretrainConfig, callbacks: Sequence[TrainerCallback]) -> PretrainResult:
    args = training_arguments(config)
    resume_from = prepare_output_dir(config, remove=args.should_save)
    output = Path(config.output_dir)
    corpus = read_corpus(config.corpus, doc_per=config.doc_per, text_field=config.text_field)
    model_source = initial_model(config, corpus, args)
    model, tokenizer = load_model(model_source, config.tokenizer)
    max_positions = getattr(model.config, "max_position_embeddings", config.max_seq_length)
    if config.max_seq_length > max_positions:
        raise PretrainError(f"--max-seq-length {config.max_seq_length} exceeds the model's {max_positions} positions")
    data = prepare_data(config, corpus, tokenizer)
    if args.should_save:
        write_stats(data.stats, output / STATS_NAME)
    check_enough_data(data, args, config)
    saver = StepModelSaver(config.output_dir, run_info(config, model_source), config.keep_checkpoints, config.save_steps)
    trainer = build_trainer(config, args, model, tokenizer, data, [saver, *callbacks])
    if data.heldout and resume_from is None:
        trainer.evaluate()
    train_output = trainer.train(resume_from_checkpoint=resume_from)
    test_metrics = test_evaluation(trainer, data, config) if data.test else {}
    result = PretrainResult(
        output_dir=str(output),
        global_step=int(trainer.state.global_step),
        train_loss=float(train_output.training_loss) if train_output.training_loss is not None else None,
        eval_history=eval_history(saver.history),
        saved_models=sorted({str(p) for p in output.glob(f"{MODEL_PREFIX}*") if p.is_dir()}, key=model_step),
        train_sequences=len(data.train),
        heldout_sequences=len(data.heldout),
        resumed_from=resume_from,
        test_metrics=test_metrics,
    )
    if args.should_save:
        summary = dict(result.to_dict(), config=asdict(config), corpus=data.stats.to_dict())
        with atomic_file(output / SUMMARY_NAME, "the run summary") as tmp:
            tmp.write_text(json_text(summary), encoding="utf-8")
    return result


def initial_model(config: PretrainConfig, corpus: Corpus, args: TrainingArguments) -> str:
    """The model to start from: ``config.model``, or ``output/model_0`` built (once, by the saving process) from scratch."""
    if not config.from_scratch:
        return str(config.model)
    directory = Path(config.output_dir) / f"{MODEL_PREFIX}0"
    if args.should_save and not (directory / "config.json").is_file():
        build_scratch_model(config, corpus, directory)
    if args.world_size > 1:
        paddle.distributed.barrier()
    return str(directory)


def run_info(config: PretrainConfig, model_source: str) -> Dict[str, Any]:
    """What each ``model_<step>/pretrain_info.json`` records about the run."""
    return {
        "base_model": model_source,
        "from_scratch": config.from_scratch,
        "max_seq_length": config.max_seq_length,
        "mask_ratio": config.mask_ratio,
        "whole_word_masking": bool(config.wwm_words),
        "corpus": list(config.corpus),
    }
