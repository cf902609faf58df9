"""Train a hierarchical prompt classifier on construction-site records (成本 / 质量 / 进度, 3 levels).

    python examples/hierarchical/train.py --max_steps 300 --output output/hierarchical

Reads ``train.txt``, ``dev.txt``, ``test.txt`` (``text<TAB>path``, e.g. ``质量##混凝土##养护``) and
``label.txt`` (``path==word``) from ``--data_dir`` (``data/hierarchical`` by default). Trains, evaluates on
test with the default node thresholds (0.5) and again after tuning them on dev, prints a Markdown
table (per-level accuracy, exact match, tolerant accuracy, node micro-F1), and saves the classifier
(with the tuned thresholds) to ``--output``, with the table's numbers in ``test_metrics.json``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import List, Optional

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from threshold_task import ExampleTask, main as run_example  # noqa: E402

TEMPLATE = "{'text': 'text_a'}这条施工记录属于{'mask'}{'mask'}"
COLUMNS = (
    ("level_1_accuracy", "level 1 acc"),
    ("level_2_accuracy", "level 2 acc"),
    ("level_3_accuracy", "level 3 acc"),
    ("exact_match", "exact match"),
    ("tolerant_accuracy", "tolerant acc"),
    ("node_micro_f1", "node micro-F1"),
)
TASK = ExampleTask(
    folder=HERE.parents[1] / "data" / "hierarchical",
    description="Hierarchical few-shot classification of construction records.",
    task_option="hierarchical",
    template=TEMPLATE,
    columns=COLUMNS,
    max_steps=300,
    max_seq_length=64,
    output="output/hierarchical",
)


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point; returns the exit status."""
    return run_example(TASK, argv)


if __name__ == "__main__":
    sys.exit(main())
