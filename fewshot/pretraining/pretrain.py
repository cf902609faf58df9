"""``fewshot-pretrain``: continue the masked-LM pretraining of an ERNIE-style model on a domain corpus.

Training runs in PaddleNLP's ``Trainer`` (so ``python -m paddle.distributed.launch --gpus 0,1
-m fewshot.cli.pretrain …`` trains on several GPUs, and ``--resume`` continues an interrupted run
from its last ``checkpoint-N``). What this module adds:

- a loss that runs the LM head only at the masked positions (about 15% of tokens) instead of
  at every position: the vocabulary projection is the largest matrix of a small model;
- dynamic whole-character (or whole-word) masking, seeded by (seed, epoch, sequence), so an
  interrupted and resumed run sees exactly the batches and masks of an uninterrupted one;
- a fixed-mask held-out split, evaluated as MLM loss and perplexity before training (step 0)
  and every ``--eval-steps``;
- ``output/model_<step>`` for every saved step (and the last step): plain PaddleNLP model
  directories with the tokenizer, loadable by ``PromptClassifier`` and ``fewshot-compare``;
- on CPU, training and evaluation in ``fast_cpu_math`` (see ``fewshot.training.cpu_math``), and
  gradients freed after each step instead of zero-filled (``release_grads``, as ``fit`` does).

Output layout::

    output/corpus_stats.json      statistics of the corpus (see fewshot.pretraining.corpus)
    output/model_0/               only when training from scratch: the initial model and its vocabulary
    output/model_320/             model + tokenizer + pretrain_info.json at step 320
    output/checkpoint-320/        Trainer state for --resume (optimizer, RNG); the last few are kept
    output/pretrain_summary.json  losses, perplexities and saved models of the run
"""

from __future__ import annotations

import inspect
import json
import logging
import math
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import paddle
import paddle.nn.functional as F
from paddle.io import Dataset, DistributedBatchSampler
from paddlenlp.trainer import Trainer, TrainerCallback, TrainingArguments
from paddlenlp.trainer.trainer_utils import get_last_checkpoint

from ..atomic import atomic_directory
from ..errors import FewshotError
from ..numbers import check_fields
from ..prompt.partial_encoder import last_layer_only_at
from ..prompt.pretrained import load_pretrained
from ..training.cpu_math import FastCpuMathTrainer
from ..training.datasets import ListDataset
from .corpus import (
    DOC_PER_CHOICES,
    SPECIAL_TOKENS,
    Corpus,
    CorpusStats,
    TokenizedSentence,
    build_vocab,
    corpus_statistics,
    mask_sequence,
    pack_sequences,
    read_corpus,
    read_word_list,
    tokenize_corpus,
    write_stats,
)

logger = logging.getLogger(__name__)

INFO_NAME = "pretrain_info.json"
STATS_NAME = "corpus_stats.json"
SUMMARY_NAME = "pretrain_summary.json"
MODEL_PREFIX = "model_"


class PretrainError(FewshotError):
    """Pretraining cannot start: bad options, an output directory in the way, too little text."""


def _option(default: Any, help: str, **bounds: Any) -> Any:
    """A field with its CLI help and, for a number, its range (``fewshot.numbers.check_number``'s bounds)."""
    return field(default=default, metadata={"help": help, **({"range": bounds} if bounds else {})})


@dataclass
class PretrainConfig:
    """Everything a pretraining run needs; ``fewshot-pretrain``'s options are generated from these fields."""

    corpus: List[str]
    output_dir: str
    model: Optional[str] = _option(None, "PaddleNLP model name or local directory to continue from")
    doc_per: str = DOC_PER_CHOICES[0]
    text_field: Optional[str] = None
    wwm_words: Optional[str] = None
    max_seq_len: int = _option(128, "tokens per packed sequence", low=1)
    mask_ratio: float = _option(0.15, "share of units masked", low=0, low_open=True, high=1, high_open=True)
    max_steps: int = _option(1000, "training steps", low=1)
    save_steps: int = _option(500, "write model_<step>/ and a resumable checkpoint every N steps", low=1)
    eval_steps: int = _option(0, "held-out MLM loss/perplexity every N steps (0: none)", low=0)
    eval_ratio: float = _option(0.05, "share of sequences held out for --eval-steps",
                                low=0, low_open=True, high=1, high_open=True)
    batch_size: int = _option(32, "sequences per device and step", low=1)
    eval_batch_size: int = _option(64, "sequences per evaluation batch", low=1)
    learning_rate: float = _option(1e-4, "peak learning rate", low=0, low_open=True)
    warmup_ratio: float = _option(0.06, "share of steps with a rising learning rate", low=0, high=1)
    weight_decay: float = _option(0.01, "AdamW weight decay", low=0)
    logging_steps: int = _option(50, "log the loss every N steps", low=1)
    seed: int = _option(42, "random seed (masks, batches, dropout)", low=0, high=2**32 - 1)
    resume: bool = _option(False, "continue from the last checkpoint-<step> in --output")
    overwrite: bool = _option(False, "delete earlier checkpoints and model_* in --output")
    keep_checkpoints: int = _option(1, "resumable checkpoints to keep (model_* are all kept)", low=1)
    disable_tqdm: bool = _option(False, "hide the progress bar")
    from_scratch: bool = _option(False, "random ERNIE with a vocabulary built from the corpus")
    hidden_size: int = _option(256, "from scratch: hidden size", low=1)
    num_layers: int = _option(4, "from scratch: encoder layers", low=1)
    num_heads: int = _option(4, "from scratch: attention heads", low=1)
    intermediate_size: int = _option(1024, "from scratch: feed-forward size", low=1)
    vocab_min_freq: int = _option(2, "from scratch: keep characters seen at least this often", low=1)
    extra_args: Dict[str, Any] = field(default_factory=dict)

    def check(self) -> None:
        """Raise :class:`PretrainError` for inconsistent options, naming the option."""
        if self.from_scratch == bool(self.model):
            raise PretrainError("give exactly one of --model (continue a checkpoint) and --from-scratch")
        try:
            check_fields(self)
        except FewshotError as exc:
            raise PretrainError(str(exc)) from None
        if self.resume and self.overwrite:
            raise PretrainError("--resume and --overwrite exclude each other")


@dataclass
class PretrainData:
    """Packed training and held-out sequences, and the statistics of the corpus they came from."""

    train: List[TokenizedSentence]
    heldout: List[TokenizedSentence]
    stats: CorpusStats


@dataclass
class PretrainResult:
    """What a run did: its last step, losses and the model directories it wrote."""

    output_dir: str
    global_step: int
    train_loss: Optional[float]
    eval_history: List[Dict[str, float]]
    saved_models: List[str]
    train_sequences: int
    heldout_sequences: int
    resumed_from: Optional[str] = None

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)


class PackedDataset(Dataset):
    """Packed training sequences; each row carries the seed of its masks, ``(seed, epoch, index)``.

    Indexed by ``index`` or by ``(index, epoch)`` as :class:`EpochBatchSampler` yields, so a
    sequence gets new masks every epoch (dynamic masking), yet the same ones in a resumed run,
    whatever the data loader prefetches.
    """

    def __init__(self, sequences: Sequence[TokenizedSentence], seed: int):
        self.sequences = list(sequences)
        self.seed = seed

    def __len__(self) -> int:
        return len(self.sequences)

    def __getitem__(self, key: Any) -> Dict[str, np.ndarray]:
        index, epoch = key if isinstance(key, tuple) else (key, 0)
        seq = self.sequences[index]
        return {"ids": seq.ids, "kinds": seq.kinds, "mask_seed": np.array([self.seed, epoch, index], dtype="int64")}


class EpochBatchSampler(DistributedBatchSampler):
    """paddle's ``DistributedBatchSampler`` (order set by the epoch alone), yielding ``(index, epoch)`` keys."""

    def __iter__(self):
        epoch = self.epoch
        for batch in super().__iter__():
            yield [(int(index), epoch) for index in batch]


class MaskedLMCollator:
    """Pad a batch, mask it (unless pre-masked) and flatten the masked positions for the LM head.

    Output: ``input_ids`` ``[batch, width]``; ``masked_positions`` ``[n]`` as ``row * width + pos``
    (the index ``ErnieLMPredictionHead`` gathers with); ``labels`` ``[n]``, the original ids.
    A row's masks are drawn from ``numpy.random.default_rng(row["mask_seed"])``.
    """

    def __init__(self, pad_id: int, mask_id: int, random_ids: np.ndarray, mask_ratio: float = 0.15):
        self.pad_id, self.mask_id, self.random_ids, self.mask_ratio = pad_id, mask_id, random_ids, mask_ratio

    def mask(self, row: Dict[str, np.ndarray]) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(input_ids, positions, labels)`` of one row."""
        if "labels" in row:
            return row["input_ids"], row["positions"], row["labels"]
        rng = np.random.default_rng(row["mask_seed"])
        return mask_sequence(row["ids"], row["kinds"], rng, self.mask_id, self.random_ids, self.mask_ratio)

    def __call__(self, rows: Sequence[Dict[str, np.ndarray]]) -> Dict[str, np.ndarray]:
        masked = [self.mask(row) for row in rows]
        width = max(len(ids) for ids, _, _ in masked)
        input_ids = np.full((len(rows), width), self.pad_id, dtype="int64")
        for b, (ids, _, _) in enumerate(masked):
            input_ids[b, : len(ids)] = ids
        positions = np.concatenate([b * width + pos for b, (_, pos, _) in enumerate(masked)]).astype("int64")
        labels = np.concatenate([lab for _, _, lab in masked]).astype("int64")
        return {"input_ids": input_ids, "masked_positions": positions, "labels": labels}


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

    Also keeps the run's log (PaddleNLP's ``Trainer.log`` empties ``state.log_history``) and
    deletes all but the last ``keep_checkpoints`` ``checkpoint-*`` directories (the Trainer's own
    rotation only runs on a process with ``local_rank == 0``, so never in a single-process run).
    """

    def __init__(self, output_dir: str, info: Dict[str, Any], keep_checkpoints: int = 1):
        self.output_dir = Path(output_dir)
        self.info = info
        self.keep_checkpoints = keep_checkpoints
        self.history: List[Dict[str, Any]] = []

    def on_log(self, args: TrainingArguments, state: Any, control: Any, logs: Any = None, **kwargs: Any) -> None:
        if logs:
            self.history.append(dict(logs, step=int(state.global_step)))

    def on_save(self, args: TrainingArguments, state: Any, control: Any, **kwargs: Any) -> None:
        self._save(args, state, kwargs["model"], kwargs.get("tokenizer"))
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


def save_model_dir(directory: Path, model: paddle.nn.Layer, tokenizer: Any, info: Dict[str, Any]) -> Path:
    """Write a loadable model directory atomically: weights, config, tokenizer and ``pretrain_info.json``."""
    with atomic_directory(directory, "the model", marker=INFO_NAME) as tmp:
        model.save_pretrained(str(tmp), safe_serialization=True)
        if tokenizer is not None:
            tokenizer.save_pretrained(str(tmp))
        (tmp / INFO_NAME).write_text(json.dumps(info, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return directory


def read_pretrain_info(directory: "str | Path") -> Dict[str, Any]:
    """``pretrain_info.json`` of a ``model_<step>`` directory, or ``{}`` for any other model."""
    path = Path(directory) / INFO_NAME
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        logger.warning("%s: not valid JSON, ignored", path)
        return {}


def load_model(name_or_dir: str) -> Tuple[paddle.nn.Layer, Any]:
    """A masked-LM model whose ``forward`` takes ``masked_positions``, and its tokenizer."""
    model, tokenizer = load_pretrained(name_or_dir)
    if "masked_positions" not in inspect.signature(model.forward).parameters:
        raise PretrainError(
            f"{name_or_dir}: {type(model).__name__}.forward has no masked_positions argument; "
            "fewshot-pretrain needs an ERNIE-style masked LM (ErnieForMaskedLM, BertForMaskedLM)"
        )
    return model, tokenizer


def build_scratch_model(config: PretrainConfig, corpus: Corpus, directory: Path) -> None:
    """Write a randomly initialised ERNIE masked LM with a character vocabulary built from ``corpus``."""
    from paddlenlp.transformers import ErnieConfig, ErnieForMaskedLM, ErnieTokenizer

    vocab = build_vocab(corpus.documents, min_freq=config.vocab_min_freq, special_tokens=SPECIAL_TOKENS)
    if len(vocab) <= len(SPECIAL_TOKENS):
        raise PretrainError(f"no character occurs {config.vocab_min_freq} times; lower --vocab-min-freq")
    paddle.seed(config.seed)
    model = ErnieForMaskedLM(
        ErnieConfig(
            vocab_size=len(vocab),
            hidden_size=config.hidden_size,
            num_hidden_layers=config.num_layers,
            num_attention_heads=config.num_heads,
            intermediate_size=config.intermediate_size,
            max_position_embeddings=max(512, config.max_seq_len),
            type_vocab_size=4,
            pad_token_id=0,
            use_task_id=False,
        )
    )
    with atomic_directory(directory, "the initial model", marker=INFO_NAME) as tmp:
        vocab_file = tmp / "vocab.txt"
        vocab_file.write_text("".join(token + "\n" for token in vocab), encoding="utf-8")
        ErnieTokenizer(str(vocab_file)).save_pretrained(str(tmp))
        model.save_pretrained(str(tmp), safe_serialization=True)
        info = {"step": 0, "base_model": None, "from_scratch": True, "vocab_size": len(vocab)}
        (tmp / INFO_NAME).write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    logger.info("wrote the initial model (vocabulary of %d tokens) to %s", len(vocab), directory)


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


def prepare_data(config: PretrainConfig, corpus: Corpus, tokenizer: Any) -> PretrainData:
    """Tokenize, count, pack and split the corpus into training and held-out sequences."""
    words = read_word_list(config.wwm_words) if config.wwm_words else None
    tokenized = tokenize_corpus(corpus, tokenizer, words)
    stats = corpus_statistics(tokenized)
    sequences = pack_sequences(tokenized.documents, config.max_seq_len, tokenizer.cls_token_id, tokenizer.sep_token_id)
    train, heldout = split_heldout(sequences, config.eval_ratio if config.eval_steps else 0.0, config.seed)
    return PretrainData(train=train, heldout=heldout, stats=stats)


def split_heldout(
    sequences: Sequence[TokenizedSentence], ratio: float, seed: int
) -> Tuple[List[TokenizedSentence], List[TokenizedSentence]]:
    """Hold out ``round(ratio × n)`` sequences (at least one when ``ratio > 0``), chosen with ``seed``."""
    if ratio <= 0:
        return list(sequences), []
    count = max(1, int(round(ratio * len(sequences))))
    if count >= len(sequences):
        raise PretrainError(
            f"the corpus packs into {len(sequences)} sequence(s): too few to hold out {ratio:.0%} for evaluation; "
            "add text or pass --eval-steps 0"
        )
    order = np.random.RandomState(seed).permutation(len(sequences))
    held = set(order[:count].tolist())
    return (
        [s for i, s in enumerate(sequences) if i not in held],
        [s for i, s in enumerate(sequences) if i in held],
    )


def masked_heldout_rows(
    sequences: Sequence[TokenizedSentence], collator: MaskedLMCollator, seed: int
) -> List[Dict[str, np.ndarray]]:
    """Mask the held-out sequences once, with their own seed, so every evaluation scores the same blanks."""
    rng = np.random.default_rng(seed)
    rows = []
    for seq in sequences:
        ids, positions, labels = mask_sequence(seq.ids, seq.kinds, rng, collator.mask_id, collator.random_ids, collator.mask_ratio)
        rows.append({"input_ids": ids, "positions": positions, "labels": labels})
    return rows


def replacement_ids(tokenizer: Any, vocab_size: int) -> np.ndarray:
    """Ids a masked token may be replaced with at random: the vocabulary without special tokens."""
    special = set(getattr(tokenizer, "all_special_ids", [])) | {tokenizer.unk_token_id}
    ids = np.array([i for i in range(vocab_size) if i not in special], dtype="int64")
    if len(ids) == 0:
        raise PretrainError("the vocabulary has no ordinary tokens")
    return ids


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
        save_steps=config.save_steps,
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


def check_enough_data(data: PretrainData, args: TrainingArguments, config: PretrainConfig) -> None:
    """A corpus that does not fill one global batch cannot train: say how much is missing."""
    needed = args.per_device_train_batch_size * max(1, args.dataset_world_size)
    if len(data.train) < needed:
        raise PretrainError(
            f"the corpus ({data.stats.tokens} tokens in {data.stats.sentences} sentences) packs into "
            f"{len(data.train)} training sequence(s) of at most {config.max_seq_len} tokens, fewer than one batch "
            f"of {needed}; add text, or lower --batch-size or --max-seq-len"
        )


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
    model, tokenizer = load_model(model_source)
    max_positions = getattr(model.config, "max_position_embeddings", config.max_seq_len)
    if config.max_seq_len > max_positions:
        raise PretrainError(f"--max-seq-len {config.max_seq_len} exceeds the model's {max_positions} positions")
    data = prepare_data(config, corpus, tokenizer)
    if args.should_save:
        write_stats(data.stats, output / STATS_NAME)
    check_enough_data(data, args, config)
    saver = StepModelSaver(config.output_dir, run_info(config, model_source), config.keep_checkpoints)
    trainer = build_trainer(config, args, model, tokenizer, data, [saver, *callbacks])
    if data.heldout and resume_from is None:
        trainer.evaluate()
    train_output = trainer.train(resume_from_checkpoint=resume_from)
    result = PretrainResult(
        output_dir=str(output),
        global_step=int(trainer.state.global_step),
        train_loss=float(train_output.training_loss) if train_output.training_loss is not None else None,
        eval_history=eval_history(saver.history),
        saved_models=sorted({str(p) for p in output.glob(f"{MODEL_PREFIX}*") if p.is_dir()}, key=model_step),
        train_sequences=len(data.train),
        heldout_sequences=len(data.heldout),
        resumed_from=resume_from,
    )
    if args.should_save:
        summary = dict(result.to_dict(), config=asdict(config), corpus=data.stats.to_dict())
        (output / SUMMARY_NAME).write_text(json.dumps(summary, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
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


def run_info(config: PretrainConfig, model_source: str) -> Dict[str, Any]:
    """What each ``model_<step>/pretrain_info.json`` records about the run."""
    return {
        "base_model": model_source,
        "from_scratch": config.from_scratch,
        "max_seq_len": config.max_seq_len,
        "mask_ratio": config.mask_ratio,
        "whole_word_masking": bool(config.wwm_words),
        "corpus": list(config.corpus),
    }


def eval_history(log_history: Sequence[Dict[str, Any]]) -> List[Dict[str, float]]:
    """``[{"step", "eval_loss", "eval_perplexity"}, …]`` from the logged entries."""
    return [
        {"step": int(e["step"]), "eval_loss": float(e["eval_loss"]), "eval_perplexity": float(e["eval_perplexity"])}
        for e in log_history
        if "eval_loss" in e and "eval_perplexity" in e
    ]


def model_step(path: "str | Path") -> int:
    """The step of a ``model_<step>`` directory name; -1 for other names."""
    name = Path(path).name
    suffix = name[len(MODEL_PREFIX) :] if name.startswith(MODEL_PREFIX) else ""
    return int(suffix) if suffix.isdigit() else -1
