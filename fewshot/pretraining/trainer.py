"""The masked-LM trainer: PaddleNLP's ``Trainer`` with the masked-positions loss, held-out perplexity,
exact resume, and ``model_<step>/`` directories written as training goes.
"""

from __future__ import annotations

import logging
import math
import shutil
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import paddle
import paddle.nn.functional as F
from paddlenlp.trainer import Trainer, TrainerCallback, TrainingArguments

from ..prompt.partial_encoder import last_layer_only_at
from ..training.cpu_math import FastCpuMathTrainer
from ..training.datasets import ListDataset
from .config import MODEL_PREFIX, PretrainConfig
from .data import EpochBatchSampler, MaskedLMCollator, PackedDataset, PretrainData, masked_heldout_rows, replacement_ids
from .models import save_model_dir

logger = logging.getLogger(__name__)


def masked_lm_loss(
    model: paddle.nn.Layer, input_ids: paddle.Tensor, masked_positions: paddle.Tensor, labels: paddle.Tensor
) -> Tuple[paddle.Tensor, paddle.Tensor]:
    """Mean cross-entropy over the masked tokens, and their logits ``[n, vocab]``.

    ``model`` (an ``ErnieForMaskedLM``, possibly wrapped for data parallelism) gets
    ``masked_positions``, so its LM head transforms and projects only those hidden states, and
    its last encoder layer computes only those rows (``last_layer_only_at``).
    """
    core = model._layers if isinstance(model, paddle.DataParallel) else model
    with last_layer_only_at(core.base_model, masked_positions):
        output = model(input_ids=input_ids, masked_positions=masked_positions)
    logits = output[0] if isinstance(output, (tuple, list)) else getattr(output, "logits", output)
    return F.cross_entropy(logits, labels), logits


class MaskedLMTrainer(FastCpuMathTrainer, Trainer):
    """PaddleNLP ``Trainer`` with the masked-positions MLM loss, held-out perplexity and exact resume.

    Exact resume: batches come from :class:`EpochBatchSampler` on one device too, so their order
    and masks depend only on the seed and epoch, and the checkpoint's RNG state (dropout) is
    restored also when a run resumes at an epoch boundary, where PaddleNLP skips no batch and so
    never restores it. A resumed run then trains on the batches, masks and dropout of the
    uninterrupted one.
    """

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._resume_checkpoint: Optional[str] = None
        self.add_callback(_RestoreRngAtEpochBoundary(self))

    def train(self, resume_from_checkpoint: Optional[str] = None, **kwargs: Any):
        self._resume_checkpoint = resume_from_checkpoint
        return super().train(resume_from_checkpoint=resume_from_checkpoint, **kwargs)

    def _get_train_sampler(self) -> Optional[paddle.io.Sampler]:
        return EpochBatchSampler(
            self.train_dataset,
            batch_size=self.args.per_device_train_batch_size,
            shuffle=True,
            num_replicas=max(1, self.args.dataset_world_size),
            rank=max(0, self.args.dataset_rank),
            drop_last=self.args.dataloader_drop_last,
        )

    def compute_loss(self, model: paddle.nn.Layer, inputs: Dict[str, paddle.Tensor], return_outputs: bool = False):
        loss, logits = masked_lm_loss(model, inputs["input_ids"], inputs["masked_positions"], inputs["labels"])
        return (loss, (loss, logits)) if return_outputs else loss

    def evaluation_loop(self, *args: Any, **kwargs: Any):
        """The Trainer's loop, adding ``<prefix>_perplexity = exp(<prefix>_loss)``."""
        output = super().evaluation_loop(*args, **kwargs)
        prefix = kwargs.get("metric_key_prefix", "eval")
        loss = output.metrics.get(f"{prefix}_loss")
        if loss is not None:
            output.metrics[f"{prefix}_perplexity"] = math.exp(min(loss, 50.0))
        return output


class _RestoreRngAtEpochBoundary(TrainerCallback):
    """See :class:`MaskedLMTrainer`: restore the checkpoint's RNG state when resuming at an epoch start."""

    def __init__(self, trainer: MaskedLMTrainer):
        self.trainer = trainer

    def on_epoch_begin(self, args: TrainingArguments, state: Any, control: Any, **kwargs: Any) -> None:
        checkpoint, self.trainer._resume_checkpoint = self.trainer._resume_checkpoint, None
        steps_per_epoch = max(1, len(kwargs["train_dataloader"]) // args.gradient_accumulation_steps)
        if checkpoint and state.global_step % steps_per_epoch == 0:
            self.trainer._load_rng_state(checkpoint)


class StepModelSaver(TrainerCallback):
    """Write ``output/model_<step>`` (model, tokenizer, pretrain_info.json) at each save and at the end.

    ``model_<step>`` follows ``save_steps`` and the Trainer's resumable ``checkpoint-<step>``
    follows ``checkpoint_steps``, as PaddleNLP's ``run_pretrain.py`` writes ``model_<step>`` and
    ``model_last``. Also keeps the run's log (PaddleNLP's ``Trainer.log`` empties ``state.log_history``) and
    deletes all but the last ``keep_checkpoints`` ``checkpoint-*`` directories (the Trainer's own
    rotation only runs on a process with ``local_rank == 0``, so never in a single-process run).
    """

    def __init__(self, output_dir: str, info: Dict[str, Any], keep_checkpoints: int = 1, save_steps: int = 500):
        self.output_dir = Path(output_dir)
        self.info = info
        self.keep_checkpoints = keep_checkpoints
        self.save_steps = save_steps
        self.history: List[Dict[str, Any]] = []
        self._due: Optional[int] = None

    def on_log(self, args: TrainingArguments, state: Any, control: Any, logs: Any = None, **kwargs: Any) -> None:
        if logs:
            self.history.append(dict(logs, step=int(state.global_step)))

    def on_step_end(self, args: TrainingArguments, state: Any, control: Any, **kwargs: Any) -> None:
        """Save at a ``save_steps`` step; when the held-out evaluation runs at that step too, after it
        (in ``on_evaluate``), so that ``pretrain_info.json`` records its perplexity."""
        if state.global_step % self.save_steps:
            return
        if args.eval_steps and args.do_eval and state.global_step % args.eval_steps == 0:
            self._due = state.global_step
        else:
            self._save(args, state, kwargs["model"], kwargs.get("tokenizer"))

    def on_evaluate(self, args: TrainingArguments, state: Any, control: Any, **kwargs: Any) -> None:
        if self._due == state.global_step:
            self._due = None
            self._save(args, state, kwargs["model"], kwargs.get("tokenizer"))

    def on_save(self, args: TrainingArguments, state: Any, control: Any, **kwargs: Any) -> None:
        if args.should_save and self.keep_checkpoints > 0:
            remove_old_checkpoints(self.output_dir, self.keep_checkpoints)

    def on_train_end(self, args: TrainingArguments, state: Any, control: Any, **kwargs: Any) -> None:
        if not (self.output_dir / f"{MODEL_PREFIX}{state.global_step}").is_dir():
            self._save(args, state, kwargs["model"], kwargs.get("tokenizer"))

    def _save(self, args: TrainingArguments, state: Any, model: paddle.nn.Layer, tokenizer: Any) -> None:
        if not args.should_save:
            return
        step = int(state.global_step)
        info = dict(self.info, step=step, **latest_losses(self.history, step))
        target = save_model_dir(self.output_dir / f"{MODEL_PREFIX}{step}", model, tokenizer, info)
        logger.info("saved %s", target)


def remove_old_checkpoints(output_dir: Path, keep: int) -> None:
    """Delete all but the ``keep`` highest-step ``checkpoint-<step>`` directories."""
    found = [(int(p.name.split("-")[-1]), p) for p in output_dir.glob("checkpoint-*") if p.name.split("-")[-1].isdigit()]
    for _, path in sorted(found)[:-keep]:
        shutil.rmtree(path, ignore_errors=True)


def latest_losses(log_history: Sequence[Dict[str, Any]], step: int) -> Dict[str, float]:
    """The last logged training loss and held-out loss/perplexity at or before ``step``."""
    found: Dict[str, float] = {}
    for entry in log_history:
        if entry.get("step", 0) > step:
            continue
        if "loss" in entry:
            found["train_loss"] = float(entry["loss"])
        for key in ("eval_loss", "eval_perplexity"):
            if key in entry:
                found[key] = float(entry[key])
                found["eval_step"] = int(entry.get("step", step))
    return found


def training_arguments(config: PretrainConfig) -> TrainingArguments:
    """PaddleNLP ``TrainingArguments`` for the run; ``config.extra_args`` override the defaults."""
    evaluate = config.eval_steps > 0
    values: Dict[str, Any] = dict(
        output_dir=config.output_dir,
        max_steps=config.max_steps,
        per_device_train_batch_size=config.batch_size,
        per_device_eval_batch_size=config.eval_batch_size,
        learning_rate=config.learning_rate,
        warmup_ratio=config.warmup_ratio,
        weight_decay=config.weight_decay,
        logging_steps=config.logging_steps,
        save_strategy="steps",
        save_steps=config.checkpoint_steps or config.save_steps,
        evaluation_strategy="steps" if evaluate else "no",
        eval_steps=config.eval_steps if evaluate else None,
        seed=config.seed,
        disable_tqdm=config.disable_tqdm,
        report_to=[],
        label_names=["labels"],
        prediction_loss_only=True,
        remove_unused_columns=False,
        do_train=True,
        do_eval=evaluate,
        release_grads=True,
    )
    values.update(config.extra_args)
    return TrainingArguments(**values)


def build_trainer(
    config: PretrainConfig,
    args: TrainingArguments,
    model: paddle.nn.Layer,
    tokenizer: Any,
    data: PretrainData,
    callbacks: Sequence[TrainerCallback],
) -> MaskedLMTrainer:
    """A :class:`MaskedLMTrainer` over the packed training sequences and the pre-masked held-out rows."""
    vocab_size = min(len(tokenizer), model.config.vocab_size)
    collator = MaskedLMCollator(
        tokenizer.pad_token_id, tokenizer.mask_token_id, replacement_ids(tokenizer, vocab_size), config.mask_ratio
    )
    heldout = ListDataset(masked_heldout_rows(data.heldout, collator, config.seed + 1)) if data.heldout else None
    return MaskedLMTrainer(
        model=model,
        args=args,
        data_collator=collator,
        train_dataset=PackedDataset(data.train, config.seed),
        eval_dataset=heldout,
        tokenizer=tokenizer,
        callbacks=list(callbacks),
    )


def test_evaluation(trainer: "MaskedLMTrainer", data: PretrainData, config: PretrainConfig) -> Dict[str, float]:
    """MLM loss and perplexity of the final model on the ``--split`` test documents (PaddleNLP's last evaluation)."""
    collator = trainer.data_collator
    rows = ListDataset(masked_heldout_rows(data.test, collator, config.seed + 2))
    metrics = trainer.evaluate(eval_dataset=rows, metric_key_prefix="test")
    return {k: float(v) for k, v in metrics.items() if k in ("test_loss", "test_perplexity")}


def eval_history(log_history: Sequence[Dict[str, Any]]) -> List[Dict[str, float]]:
    """``[{"step", "eval_loss", "eval_perplexity"}, …]`` from the logged entries."""
    return [
        {"step": int(e["step"]), "eval_loss": float(e["eval_loss"]), "eval_perplexity": float(e["eval_perplexity"])}
        for e in log_history
        if "eval_loss" in e and "eval_perplexity" in e
    ]
