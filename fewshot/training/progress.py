"""What a training command shows: a progress bar, a short line per logging step, no argument dump.

PaddleNLP logs every training argument (~150 lines at DEBUG) and its own loss lines (INFO) when a
``Trainer`` starts; :func:`quiet_paddlenlp` keeps only its warnings, and :class:`LossLines`
prints the periodic loss and metrics instead, above the progress bar::

    step 50/300  loss 2.3104  lr 8.6e-05  epoch 3.3
"""

from __future__ import annotations

import logging
import sys
from typing import Any, Dict, Optional

from paddlenlp.trainer import TrainerCallback
from paddlenlp.utils.log import logger as paddlenlp_logger
from tqdm import tqdm

_SHOWN = (("loss", "loss", "{:.4f}"), ("learning_rate", "lr", "{:.2g}"), ("progress_or_epoch", "epoch", "{:.1f}"))


def quiet_paddlenlp(verbose: bool = False) -> None:
    """PaddleNLP's logger at WARNING (``verbose``: everything, its argument dump included)."""
    paddlenlp_logger.set_level("DEBUG" if verbose else "WARNING")
    logging.getLogger("paddle").setLevel(logging.DEBUG if verbose else logging.WARNING)


def format_log(logs: Dict[str, Any], step: int, max_steps: int) -> Optional[str]:
    """``{"loss": 2.31, "learning_rate": 8.6e-05, "epoch": 3.3}`` → ``"step 50/300  loss 2.3100  lr 8.6e-05  epoch 3.3"``;
    evaluation logs show their ``eval_*`` metrics. None for a log with nothing to show."""
    parts = [f"{short} {fmt.format(logs[key])}" for key, short, fmt in _SHOWN if isinstance(logs.get(key), (int, float))]
    parts += [f"{key} {value:.4f}" for key, value in logs.items()
              if key.startswith("eval_") and isinstance(value, float) and not key.endswith(("_runtime", "per_second"))]
    return f"step {step}/{max_steps}  " + "  ".join(parts) if parts else None


class LossLines(TrainerCallback):
    """Prints one line per ``logging_steps`` (loss, learning rate, epoch; metrics after an evaluation)."""

    def on_log(self, args: Any, state: Any, control: Any, logs: Optional[Dict[str, Any]] = None, **kwargs: Any) -> None:
        if not state.is_local_process_zero or not logs or "train_runtime" in logs:
            return
        line = format_log(logs, int(state.global_step), int(state.max_steps))
        if line:
            tqdm.write(line, file=sys.stderr)
