"""Ray Data batch inference: throughput of 1 worker vs 2 workers (1 onnxruntime thread each), same texts.

    flock /tmp/fewshot-heavy.lock python benchmarks/ray_scaling.py [--bundle DIR] [--texts 12000] [--repeats 3]

A local Ray (``ray.init(num_cpus=<usable cores>)``) runs ``Dataset.map_batches(BundleClassifier,
concurrency=N, num_cpus=1)`` over TNEWS ``unlabeled`` sentences in blocks of ``--block`` rows, for
N = 1 and 2, alternating, ``--repeats`` times; each run is timed from the call to the last row
materialised, so actor start-up (a process and one bundle load per actor) is included, as in a real
job. Both runs must give the same labels. Prints texts/s per run, medians, and the scaling ratio.

Without ``--bundle``: zh-ernie-tiny with the TNEWS labels, exported untrained in a subprocess.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import List

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
TNEWS = SHARED / "fewclue" / "tnews"
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
    from machine import machine_line, usable_cores
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
        labels = {}
        for _ in range(args.repeats):
            for workers in (1, 2):
                start = time.perf_counter()
                done = ray.data.from_pandas(frames).map_batches(
                    BundleClassifier, batch_size=None, batch_format="pandas", concurrency=workers, num_cpus=1,
                    fn_constructor_kwargs={"bundle": str(bundle), "fields": {"text_a": "sentence"}, "threads": 1},
                ).materialize()
                rates[workers].append(len(texts) / (time.perf_counter() - start))
                labels[workers] = done.to_pandas()["label"].tolist()
        ray.shutdown()
    if labels[1] != labels[2]:
        print("error: 1 and 2 workers gave different labels")
        return 1
    print(machine_line({"onnxruntime threads per worker": 1, "Ray num_cpus": cores,
                        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "unset")}))
    print(f"bundle {'zh-ernie-tiny (untrained), TNEWS labels' if not args.bundle else args.bundle}; {len(texts)} TNEWS "
          f"unlabeled texts in blocks of {args.block}; {args.repeats} runs each, alternating; actor start-up included")
    print(f"{'workers':<9}{'texts/s (median)':>18}   runs")
    median = {}
    for workers in (1, 2):
        median[workers] = statistics.median(rates[workers])
        print(f"{workers:<9}{median[workers]:>18.0f}   {', '.join(f'{r:.0f}' for r in rates[workers])}")
    print(f"ratios: 2 workers/1 worker {median[2] / median[1]:.2f}x (target >=1.7 on 2 cores) | labels identical")
    return 0


if __name__ == "__main__":
    sys.exit(main())
