"""What a pretraining run is given and what it returns: ``PretrainConfig``, ``PretrainResult``, output names.

``fewshot-pretrain``'s options are generated from ``PretrainConfig``'s fields; PaddleNLP's
``run_pretrain.py`` spellings are extra option strings on them (``fewshot.cli.pretrain``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Dict, List, Optional

from ..errors import FewshotError
from ..numbers import check_fields
from .corpus import DOC_PER_CHOICES
from .split import parse_split

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
    tokenizer: Optional[str] = _option(None, "tokenizer name or directory, when not the model's")
    doc_per: str = DOC_PER_CHOICES[0]
    text_field: Optional[str] = None
    wwm_words: Optional[str] = None
    max_seq_length: int = _option(128, "tokens per packed sequence", low=1)
    mask_ratio: float = _option(0.15, "share of units masked", low=0, low_open=True, high=1, high_open=True)
    max_steps: int = _option(1000, "training steps", low=1)
    save_steps: int = _option(500, "write model_<step>/ (model and tokenizer) every N steps and at the end", low=1)
    checkpoint_steps: Optional[int] = _option(
        None, "write a resumable checkpoint-<step>/ (optimizer, RNG) every N steps (default: --save-steps)", low=1)
    eval_steps: int = _option(0, "held-out MLM loss/perplexity every N steps (0: none)", low=0)
    eval_ratio: float = _option(0.05, "share of sequences held out for --eval-steps (without --split)",
                                low=0, low_open=True, high=1, high_open=True)
    split: Optional[str] = _option(
        None, "train,eval,test shares of the documents, e.g. 198,1,1: eval every --eval-steps, test at the end")
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
        if self.split is not None:
            shares = parse_split(self.split)
            if self.eval_steps and not shares[1]:
                raise PretrainError(f"--eval-steps {self.eval_steps} needs an evaluation share in --split, got {self.split}")
        if self.resume and self.overwrite:
            raise PretrainError("--resume and --overwrite exclude each other")


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
    test_metrics: Dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)
