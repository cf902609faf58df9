"""How much to trust ``fewshot-analyze label-issues --classifier``: TNEWS with 10 % of the labels flipped.

    flock /tmp/fewshot-heavy.lock python benchmarks/label_flags.py [--seed 0] [--steps 100]

The path a user takes (issue 26, group 16): a classifier is trained on the noisy rows and saved (it records
its training arguments); it is loaded again and its settings — base model, template, training arguments —
train the 3 fold models, whose out-of-fold probabilities cleanlab ranks. Prints the CPU, each fold's
held-out accuracy, how many rows were flagged, the precision of the flags against the base rate (10 %),
and their ratio (target: ≥ 2).
"""

from __future__ import annotations

import _machine  # noqa: I001  (first: applies fewshot's CPU defaults before Paddle loads)
import argparse
import random
import tempfile
import time
from pathlib import Path

from analysis import FOLDS, NOISE, flip_labels, load_tnews


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=100, help="training steps of the classifier and of each fold")
    args = parser.parse_args()

    from fewshot.analysis.label_issues import out_of_fold_probabilities, rank_label_issues
    from fewshot.classifier import PromptClassifier

    print(_machine.machine_line())
    setup = load_tnews(args.steps)
    noisy, flipped = flip_labels(setup.train, NOISE, random.Random(args.seed))
    began = time.perf_counter()
    clf = setup.build(args.seed)()
    clf.fit(noisy, **setup.fit_args(args.seed))
    with tempfile.TemporaryDirectory() as root:
        clf.save(Path(root) / "clf")
        saved = PromptClassifier.load(Path(root) / "clf", trust_pickle=True)  # the shared tiny ERNIE is pickled
    oof = out_of_fold_probabilities(lambda: saved.untrained_copy(seed=args.seed), noisy, folds=FOLDS,
                                    split_seed=args.seed, batch_size=64, **saved.training_arguments)
    issues = rank_label_issues(oof.task, noisy, oof.probs, fold_accuracy=oof.row_accuracy())
    wall = time.perf_counter() - began
    hits = len({issue.index for issue in issues} & set(flipped))
    precision = hits / len(issues) if issues else 0.0
    base = len(flipped) / len(noisy)
    print(f"rows {len(noisy)}, flipped {len(flipped)} (base rate {base:.3f}), {FOLDS}-fold, {args.steps} steps, "
          f"seed {args.seed}, {wall:.0f} s")
    print(f"fold accuracy (held out, noisy labels): {', '.join(f'{a:.3f}' for a in oof.fold_accuracy)}")
    print(f"flagged {len(issues)}, of them flipped {hits}: precision {precision:.3f}, recall {hits / len(flipped):.3f}, "
          f"precision / base rate {precision / base:.2f} (target >= 2)")


if __name__ == "__main__":
    main()
