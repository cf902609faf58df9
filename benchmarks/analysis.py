"""Label noise, simulated labelling and calibration, measured on TNEWS and on data/hierarchical.

    flock /tmp/fewshot-heavy.lock python benchmarks/analysis.py --output output/analysis

Three experiments, each on both tasks (``--parts`` picks some of ``tnews-noise``, ``tnews-select``,
``hier-noise``, ``hier-select``):

(a) **label noise** (``*-noise``): 10 % of the training rows get a random other class (a random
    other gold path in the hierarchy); 3-fold out-of-fold probabilities are ranked by cleanlab
    (``fewshot.analysis.label_issues``). Reported: precision and recall of cleanlab's flagged rows,
    precision of the ``n_flipped`` lowest-quality rows (``precision@flipped``), and test accuracy of
    a classifier trained on the clean rows, on the noisy rows, on the noisy rows minus the flagged
    ones, and on the noisy rows minus the ``n_flipped`` (10 %) lowest-quality ones.
(b) **simulated labelling** (``*-select``): a classifier trained on the labelled start set scores
    the pool; each strategy (``margin``, ``entropy``, ``diverse``) and ``random`` choose ``--add``
    texts, whose labels are revealed only then; retrain on start + chosen, test accuracy. TNEWS:
    start = ``train_0.json`` (240), pool = ``train_few_all.json`` minus split 0 (945), add 100.
    Hierarchy: start = a random half of ``train.txt`` (84), pool = the other half, add 30.
(c) **calibration** (in ``*-noise``): the clean classifier's temperature fitted on dev
    (``dev_0.json`` / ``dev.txt``), expected calibration error (10 bins) on test before and after.

Accuracy is on ``test_public.json`` (TNEWS) and ``test.txt`` (hierarchy: exact match of the path).
Every experiment runs with ``--seeds`` (default 3) seeds: the seed draws the flipped rows, the
random picks and the half split, and seeds training. Training: TNEWS as ``benchmarks/fewclue.py``'s
prompt method (100 steps, batch 16, lr 2e-4, new parameters 1e-3, max_seq_length 64); the
hierarchy as ``examples/hierarchical`` trains on ``data/hierarchical`` (batch 16, lr 3e-4, node biases 1e-2) with ``--hier-steps``
(default 200 instead of the example's 300, for time). Prints the CPU, cores and thread settings,
one line per run with its wall time, the tables, and ends with the target line of (b): the best
strategy's mean gain over random on TNEWS (target ≥ +1 point).
"""

from __future__ import annotations

import _machine  # noqa: I001  (first: applies fewshot's CPU defaults before Paddle loads)
import argparse
import json
import logging
import random
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from _paths import HIERARCHY as HIER, ROOT, TINY_ERNIE as MODEL, TNEWS, TNEWS_LABELS, TNEWS_TEMPLATE
HIER_TEMPLATE = "{'text': 'text_a'}这条施工记录属于{'mask'}{'mask'}"
FIELDS = {"text_a": "sentence", "label": "label_desc"}
PARTS = ("tnews-noise", "tnews-select", "hier-noise", "hier-select")
STRATEGIES = ("random", "margin", "entropy", "diverse")
NOISE = 0.10
FOLDS = 3


@dataclass
class TaskSetup:
    """One task: how to build a classifier, train it, and its data."""

    name: str
    template: str
    labels: str
    hierarchical: bool
    steps: int
    learning_rate: float
    ppt_learning_rate: float
    train: List[Any]
    dev: List[Any]
    test: List[Any]
    pool: List[Any] = field(default_factory=list)
    batch_size: int = 16
    max_seq_length: int = 64

    def build(self, seed: int) -> Callable[[], Any]:
        from fewshot.classifier import PromptClassifier

        return lambda: PromptClassifier(str(MODEL), labels=self.labels, template=self.template,
                                        max_seq_length=self.max_seq_length, seed=seed, hierarchical=self.hierarchical)

    def fit_args(self, seed: int) -> Dict[str, Any]:
        return dict(max_steps=self.steps, per_device_train_batch_size=self.batch_size, learning_rate=self.learning_rate,
                    ppt_learning_rate=self.ppt_learning_rate, seed=seed, logging_steps=max(self.steps, 1),
                    disable_tqdm=True, evaluation_strategy="no", save_strategy="no", report_to=[])

    def train_and_test(self, rows: Sequence[Any], seed: int) -> Tuple[Any, float, float]:
        """A classifier trained on ``rows``, its test accuracy (exact match for paths), wall seconds."""
        began = time.perf_counter()
        clf = self.build(seed)()
        clf.fit(list(rows), **self.fit_args(seed))
        accuracy = clf.score(self.test, batch_size=64)
        return clf, accuracy, time.perf_counter() - began


def load_tnews(steps: int) -> TaskSetup:
    from fewshot.data import read_examples
    from fewshot.tasks import resolve_label_words

    labels = list(resolve_label_words(str(TNEWS_LABELS)))
    read = lambda name: read_examples(TNEWS / name, labels=labels, fields=FIELDS)  # noqa: E731
    train = read("train_0.json")
    seen = {e.text_a for e in train}
    pool = [e for e in read("train_few_all.json") if e.text_a not in seen]
    return TaskSetup("tnews", TNEWS_TEMPLATE, str(TNEWS_LABELS), False, steps, 2e-4, 1e-3, train, read("dev_0.json"),
                     read("test_public.json"), pool)


def load_hierarchy(steps: int) -> TaskSetup:
    from fewshot.data import read_examples
    from fewshot.tasks import read_hierarchy

    hierarchy = read_hierarchy(HIER / "label.txt")
    read = lambda name: read_examples(HIER / name, labels=hierarchy.check_path)  # noqa: E731
    return TaskSetup("hierarchy", HIER_TEMPLATE, str(HIER / "label.txt"), True, steps, 3e-4, 1e-2,
                     read("train.txt"), read("dev.txt"), read("test.txt"))


def flip_labels(rows: Sequence[Any], fraction: float, rng: random.Random) -> Tuple[List[Any], List[int]]:
    """A copy of ``rows`` with ``fraction`` of them given a random other class among the rows' classes."""
    from fewshot.data import Example

    classes = sorted({e.label for e in rows})
    flipped = sorted(rng.sample(range(len(rows)), round(fraction * len(rows))))
    noisy = list(rows)
    for i in flipped:
        e = rows[i]
        noisy[i] = Example(e.text_a, e.text_b, rng.choice([c for c in classes if c != e.label]), line=e.line)
    return noisy, flipped


def noise_run(setup: TaskSetup, seed: int, log: Callable[[str], None]) -> Dict[str, Any]:
    """Experiment (a) and (c) for one seed."""
    from fewshot.analysis.label_issues import out_of_fold_probabilities, rank_label_issues

    rng = random.Random(seed)
    noisy, flipped = flip_labels(setup.train, NOISE, rng)
    began = time.perf_counter()
    oof = out_of_fold_probabilities(setup.build(seed), noisy, folds=FOLDS, split_seed=seed, batch_size=64,
                                    **setup.fit_args(seed))
    ranked = rank_label_issues(oof.task, noisy, oof.probs, include_unflagged=True)
    oof_wall = time.perf_counter() - began
    flagged = [r.index for r in ranked if r.flagged]
    by_score = [r.index for r in sorted(ranked, key=lambda r: (r.score, r.index))][: len(flipped)]
    hits = len(set(flagged) & set(flipped))
    result: Dict[str, Any] = {
        "seed": seed, "rows": len(noisy), "flipped": len(flipped), "flagged": len(flagged),
        "precision": hits / len(flagged) if flagged else 0.0, "recall": hits / len(flipped),
        "precision_at_n_flipped": len(set(by_score) & set(flipped)) / len(flipped),
        "oof_wall_s": oof_wall,
    }
    log(f"{setup.name} noise seed {seed}: {FOLDS}-fold OOF {oof_wall:.0f} s; flagged {len(flagged)}, "
        f"precision {result['precision']:.3f}, recall {result['recall']:.3f}, "
        f"precision@{len(flipped)} {result['precision_at_n_flipped']:.3f}")
    keep = [row for i, row in enumerate(noisy) if i not in set(flagged)]
    keep_lowest = [row for i, row in enumerate(noisy) if i not in set(by_score)]
    for name, rows in (("clean", setup.train), ("noisy", noisy), ("cleaned", keep), ("cleaned_lowest", keep_lowest)):
        clf, accuracy, wall = setup.train_and_test(rows, seed)
        result[f"accuracy_{name}"] = accuracy
        log(f"{setup.name} noise seed {seed}: train on {name} ({len(rows)} rows) test accuracy {100 * accuracy:.2f} "
            f"({wall:.0f} s)")
        if name == "clean":
            before = clf.evaluate(setup.test, batch_size=64, report=True)["calibration"]["ece"]
            temperature = clf.fit_temperature(setup.dev, batch_size=64)
            after = clf.evaluate(setup.test, batch_size=64, report=True)["calibration"]
            result.update({"temperature": temperature, "ece_before": before, "ece_after": after["ece"]})
            log(f"{setup.name} calibration seed {seed}: temperature {temperature:.3f} (dev), test ECE "
                f"{before:.4f} -> {after['ece']:.4f}")
    return result


def select_run(setup: TaskSetup, seed: int, add: int, log: Callable[[str], None]) -> Dict[str, Any]:
    """Experiment (b) for one seed: accuracy after adding ``add`` texts chosen by each strategy."""
    from fewshot.analysis.selection import select_indices

    rng = random.Random(seed)
    if setup.pool:
        start, pool = list(setup.train), list(setup.pool)
    else:
        order = list(range(len(setup.train)))
        rng.shuffle(order)
        half = len(order) // 2
        start, pool = [setup.train[i] for i in order[:half]], [setup.train[i] for i in order[half:]]
    base, base_accuracy, wall = setup.train_and_test(start, seed)
    log(f"{setup.name} select seed {seed}: start ({len(start)} rows) test accuracy {100 * base_accuracy:.2f} ({wall:.0f} s)")
    logits, hidden = base.logits([e.text_a for e in pool], batch_size=64, return_hidden=True)
    probs = base.task.activate(logits)
    result: Dict[str, Any] = {"seed": seed, "start_rows": len(start), "pool_rows": len(pool), "added": add,
                              "accuracy_start": base_accuracy}
    for strategy in STRATEGIES:
        if strategy == "random":
            chosen = rng.sample(range(len(pool)), add)
        else:
            chosen, _ = select_indices(probs, hidden, base.task, add, strategy, seed=seed)
        _, accuracy, wall = setup.train_and_test(start + [pool[i] for i in chosen], seed)
        classes = len({pool[i].label for i in chosen})
        result[f"accuracy_{strategy}"] = accuracy
        result[f"classes_{strategy}"] = classes
        log(f"{setup.name} select seed {seed}: +{add} {strategy:<7} ({classes} classes) test accuracy "
            f"{100 * accuracy:.2f} ({wall:.0f} s)")
    return result


def mean_std(values: Sequence[float]) -> str:
    values = [100 * v for v in values]
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.fmean(values):.2f} ± {spread:.2f}"


def noise_table(name: str, runs: Sequence[Dict[str, Any]]) -> str:
    lines = [f"### {name}: 10 % flipped, {FOLDS}-fold cleanlab, {len(runs)} seeds", "",
             "| seed | flipped | flagged | precision | recall | precision@flipped | acc clean | acc noisy | "
             "acc noisy − flagged | acc noisy − lowest 10 % | T (dev) | test ECE before | after |", "|" + "---|" * 13]
    for r in runs:
        lines.append(f"| {r['seed']} | {r['flipped']} | {r['flagged']} | {r['precision']:.3f} | {r['recall']:.3f} | "
                     f"{r['precision_at_n_flipped']:.3f} | {100 * r['accuracy_clean']:.2f} | "
                     f"{100 * r['accuracy_noisy']:.2f} | {100 * r['accuracy_cleaned']:.2f} | "
                     f"{100 * r['accuracy_cleaned_lowest']:.2f} | {r['temperature']:.3f} | "
                     f"{r['ece_before']:.4f} | {r['ece_after']:.4f} |")
    lines.append(f"| mean | | | {statistics.fmean(r['precision'] for r in runs):.3f} | "
                 f"{statistics.fmean(r['recall'] for r in runs):.3f} | "
                 f"{statistics.fmean(r['precision_at_n_flipped'] for r in runs):.3f} | "
                 f"{mean_std([r['accuracy_clean'] for r in runs])} | {mean_std([r['accuracy_noisy'] for r in runs])} | "
                 f"{mean_std([r['accuracy_cleaned'] for r in runs])} | "
                 f"{mean_std([r['accuracy_cleaned_lowest'] for r in runs])} | "
                 f"{statistics.fmean(r['temperature'] for r in runs):.3f} | "
                 f"{statistics.fmean(r['ece_before'] for r in runs):.4f} | "
                 f"{statistics.fmean(r['ece_after'] for r in runs):.4f} |")
    return "\n".join(lines)


def select_table(name: str, runs: Sequence[Dict[str, Any]]) -> str:
    lines = [f"### {name}: +{runs[0]['added']} texts to {runs[0]['start_rows']} (pool {runs[0]['pool_rows']}), "
             f"{len(runs)} seeds", "", "| seed | start | " + " | ".join(STRATEGIES) + " |", "|" + "---|" * (2 + len(STRATEGIES))]
    for r in runs:
        lines.append(f"| {r['seed']} | {100 * r['accuracy_start']:.2f} | "
                     + " | ".join(f"{100 * r[f'accuracy_{s}']:.2f}" for s in STRATEGIES) + " |")
    lines.append(f"| mean ± std | {mean_std([r['accuracy_start'] for r in runs])} | "
                 + " | ".join(mean_std([r[f'accuracy_{s}'] for r in runs]) for s in STRATEGIES) + " |")
    lines.append("| gain over random (points) | | | "
                 + " | ".join(f"{gain(runs, s):+.2f}" for s in STRATEGIES[1:]) + " |")
    return "\n".join(lines)


def gain(runs: Sequence[Dict[str, Any]], strategy: str) -> float:
    """Mean accuracy of ``strategy`` minus mean accuracy of random, in points."""
    return 100 * (statistics.fmean(r[f"accuracy_{strategy}"] for r in runs)
                  - statistics.fmean(r["accuracy_random"] for r in runs))


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--parts", default=",".join(PARTS), help=f"comma-separated, of {', '.join(PARTS)}")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--tnews-add", type=int, default=100)
    p.add_argument("--hier-add", type=int, default=30)
    p.add_argument("--hier-steps", type=int, default=200)
    p.add_argument("--tnews-steps", type=int, default=100, help="as benchmarks/fewclue.py (change only for a smoke run)")
    p.add_argument("--output", default=str(ROOT / "output" / "analysis"))
    return p.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> Dict[str, Any]:
    args = parse_args(argv)
    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    unknown = sorted(set(parts) - set(PARTS))
    if unknown:
        raise SystemExit(f"analysis.py: unknown part(s) {', '.join(unknown)}")
    if not (TNEWS / "train_0.json").is_file() or not (MODEL / "config.json").is_file():
        raise SystemExit(f"analysis.py: needs {TNEWS} and {MODEL}")
    from paddlenlp.utils.log import logger

    logger.set_level("WARNING")
    logging.getLogger("fewshot").setLevel(logging.WARNING)
    started = time.perf_counter()
    cpu_started = time.process_time()
    print(_machine.machine_line(), flush=True)

    def log(line: str) -> None:
        print(f"[{time.perf_counter() - started:6.0f} s] {line}", flush=True)

    setups = {"tnews": lambda: load_tnews(args.tnews_steps), "hier": lambda: load_hierarchy(args.hier_steps)}
    report: Dict[str, Any] = {}
    output = Path(args.output)
    output.mkdir(parents=True, exist_ok=True)
    for part in parts:
        task_name, experiment = part.split("-")
        setup = setups[task_name]()
        runs = [noise_run(setup, seed, log) if experiment == "noise"
                else select_run(setup, seed, args.tnews_add if task_name == "tnews" else args.hier_add, log)
                for seed in range(args.seeds)]
        report[part] = runs
        (output / "analysis.json").write_text(json.dumps(report, indent=2), encoding="utf-8")
    tables = [noise_table(p, report[p]) if p.endswith("noise") else select_table(p, report[p]) for p in parts]
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    text = "\n\n".join(tables) + f"\n\nTotal wall time {wall / 60:.1f} min, process CPU time {cpu / 60:.1f} min.\n"
    (output / "analysis.md").write_text(text, encoding="utf-8")
    print()
    print(text)
    if "tnews-select" in report:
        runs = report["tnews-select"]
        best = max(STRATEGIES[1:], key=lambda s: gain(runs, s))
        value = gain(runs, best)
        print(f"target (b) TNEWS best strategy over random: {best} {value:+.2f} points "
              f"({'met' if value >= 1.0 else 'MISSED'}, target >= +1.00)")
    return report


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
