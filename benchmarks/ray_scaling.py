"""Ray Data batch inference: throughput of 1 worker vs 2 workers (1 onnxruntime thread each), same texts.

    flock /tmp/fewshot-heavy.lock python benchmarks/ray_scaling.py [--bundle DIR] [--texts 12000] [--repeats 3]

A local Ray (``ray.init(num_cpus=<usable cores>)``) runs ``Dataset.map_batches(BundleClassifier,
concurrency=N, num_cpus=1)`` over TNEWS ``unlabeled`` sentences in blocks of ``--block`` rows, for
N = 1 and 2, alternating, ``--repeats`` times, the driver reading the results in order. Two rates:
the whole job (from the call to the last row: actor start-up, a process and one bundle load per
actor, included, as in a real job) and after the first N blocks have come back (start-up excluded).
Both runs must give the same labels. Prints texts/s per run, medians, and the scaling ratios.

Without ``--bundle``: zh-ernie-tiny with the TNEWS labels, exported untrained in a subprocess.

Measured 2026-12-02 (2-core Xeon, load average ~2.6 from other jobs; whole-job rate only then):
``ratios: 2 workers/1 worker 1.62x (target >=1.7 on 2 cores) | labels identical`` (622 vs 1006 texts/s)
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import List

from _paths import ROOT, TNEWS
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--bundle", help="an exported bundle (default: zh-ernie-tiny + TNEWS labels, exported here)")
    p.add_argument("--texts", type=int, default=12000, help="TNEWS unlabeled sentences to classify (default 12000)")
    p.add_argument("--block", type=int, default=500, help="rows per Ray block and batch (default 500)")
    p.add_argument("--repeats", type=int, default=3)
    return p.parse_args()


def read_texts(limit: int) -> List[str]:
    texts = []
    with open(TNEWS / "unlabeled.json", encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                texts.append(json.loads(line)["sentence"])
            if len(texts) >= limit:
                break
    return texts


def main() -> int:
    args = parse_args()
    from _machine import machine_line

    from fewshot.cpu_env import usable_cores
    from serve_load import build_bundle

    import pandas as pd
    import ray

    from fewshot.integrations.ray import BundleClassifier

    cores = usable_cores()
    with tempfile.TemporaryDirectory(prefix="fewshot-ray-") as tmp:
        bundle = Path(args.bundle) if args.bundle else build_bundle(Path(tmp))
        texts = read_texts(args.texts)
        ray.init(num_cpus=cores, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
        logging.getLogger("ray.data").setLevel(logging.ERROR)
        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = False
        context.execution_options.preserve_order = True
        frames = [pd.DataFrame({"sentence": texts[i : i + args.block]}) for i in range(0, len(texts), args.block)]
        rates = {1: [], 2: []}
        steady = {1: [], 2: []}
        labels = {}
        for _ in range(args.repeats):
            for workers in (1, 2):
                start = time.perf_counter()
                dataset = ray.data.from_pandas(frames).map_batches(
                    BundleClassifier, batch_size=None, batch_format="pandas", num_cpus=1,
                    compute=ray.data.ActorPoolStrategy(size=workers),
                    fn_constructor_kwargs={"bundle": str(bundle), "fields": {"text_a": "sentence"}, "threads": 1},
                )
                got, arrivals = [], []
                for batch in dataset.iter_batches(batch_size=None, batch_format="pandas"):
                    arrivals.append((time.perf_counter(), len(batch)))
                    got.extend(batch["label"].tolist())
                end = time.perf_counter()
                rates[workers].append(len(texts) / (end - start))
                # from the moment each worker has returned its first block: the rows after those
                steady[workers].append(sum(n for _, n in arrivals[workers:]) / (end - arrivals[workers - 1][0]))
                labels[workers] = got
        ray.shutdown()
    if labels[1] != labels[2]:
        print("error: 1 and 2 workers gave different labels")
        return 1
    print(machine_line({"onnxruntime threads per worker": 1, "Ray num_cpus": cores}))
    print(f"bundle {'zh-ernie-tiny (untrained), TNEWS labels' if not args.bundle else args.bundle}; {len(texts)} TNEWS "
          f"unlabeled texts in blocks of {args.block}; {args.repeats} runs each, alternating; actor start-up included")
    print(f"{'workers':<9}{'texts/s whole job':>19}{'after start-up':>17}   runs (whole job)")
    median, after = {}, {}
    for workers in (1, 2):
        median[workers] = statistics.median(rates[workers])
        after[workers] = statistics.median(steady[workers])
        print(f"{workers:<9}{median[workers]:>19.0f}{after[workers]:>17.0f}   {', '.join(f'{r:.0f}' for r in rates[workers])}")
    print(f"ratios: 2 workers/1 worker {median[2] / median[1]:.2f}x whole job, {after[2] / after[1]:.2f}x after the "
          f"first block per worker (start-up excluded) (target >=1.7 on 2 cores) | labels identical")
    return 0


if __name__ == "__main__":
    sys.exit(main())
