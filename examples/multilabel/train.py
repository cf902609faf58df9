"""Train a multi-label prompt classifier on site inspection records (渗漏, 开裂, 用电, 消防, 高处, 扬尘).

    python examples/multilabel/train.py --max_steps 200 --output output/multilabel

Reads ``train.txt``, ``dev.txt``, ``test.txt`` (``text<TAB>label1,label2``) and ``label.txt``
(``label==word``) from ``--data_dir`` (``data/multilabel`` by default). Trains, evaluates on test with the
default thresholds (0.5) and again after tuning one threshold per label on dev, prints a Markdown
table (micro-F1, macro-F1, exact match), and saves the classifier (with the tuned thresholds) to
``--output``, with the table's numbers in ``test_metrics.json``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import List, Optional

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from threshold_task import ExampleTask, main as run_example  # noqa: E402

TEMPLATE = "{'text': 'text_a'}这条检查记录的问题是{'mask'}{'mask'}"
COLUMNS = (("micro_f1", "micro-F1"), ("macro_f1", "macro-F1"), ("exact_match", "exact match"))
TASK = ExampleTask(
    folder=HERE.parents[1] / "data" / "multilabel",
    description="Multi-label few-shot tagging of site inspection records.",
    task_option="multi_label",
    template=TEMPLATE,
    columns=COLUMNS,
    max_steps=200,
    max_seq_length=96,
    output="output/multilabel",
)


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point; returns the exit status."""
    return run_example(TASK, argv)


if __name__ == "__main__":
    sys.exit(main())
