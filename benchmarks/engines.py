"""Every inference engine and precision end to end on one saved classifier, alternated, against onnxruntime fp32.

    python benchmarks/engines.py --checkpoint CLASSIFIER [--texts 1500] [--rounds 2] [--threads N]

Exports the classifier twice, with dynamic int8 and with int8 calibrated on 300 TNEWS unlabelled
texts, both checked on TNEWS ``test_public`` by the export itself (accuracy and top-1 agreement,
printed). Then times ``OnnxPredictor.predict_proba`` on the TNEWS test texts for each engine and
precision installed here, and the sequential loop fewshot ran before pipelining (tokenise every text,
then batch after batch), each once per round, alternating; the best round counts. Prints the machine
line, how busy other processes kept the cores, a table (texts/s, ratio, top-1 agreement with
onnxruntime fp32) and a final line of ratios. ``python benchmarks/inference.py --save DIR`` writes a
classifier to use here.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List

import _machine  # noqa: I001  (first: applies fewshot's CPU defaults)

import numpy as np

from _paths import TNEWS

BASELINE = "onnxruntime fp32"
SEQUENTIAL = "onnxruntime fp32, sequential loop"


def export(checkpoint: str, out: Path, work: Path, calibrated: bool) -> Path:
    """``fewshot-export --int8 --check-data test_public`` (``--calibration`` 300 unlabelled texts); prints its check."""
    argv = [sys.executable, "-m", "fewshot.cli.export", "--checkpoint", checkpoint, "--output", str(out), "--int8",
            "--check-data", str(TNEWS / "test_public.json")]
    if calibrated:
        lines = (TNEWS / "unlabeled.json").read_text(encoding="utf-8").splitlines()[:300]
        (work / "unlabeled300.json").write_text("\n".join(lines) + "\n", encoding="utf-8")
        argv += ["--calibration", str(work / "unlabeled300.json")]
    result = subprocess.run(argv, capture_output=True, text=True, check=True)
    check = [line for line in result.stdout.splitlines() if "int8 on" in line]
    print(f"{'calibrated' if calibrated else 'dynamic'} int8: {check[-1].split(': ', 1)[1] if check else '?'}")
    return out


def sequential(predictor, texts: List[str]) -> np.ndarray:
    """What ``predict_proba`` did before pipelining: every text tokenised, then one batch after another."""
    from fewshot.runtime import GRAPH_INPUTS

    rows = predictor.encode(texts)
    order = sorted(range(len(rows)), key=lambda i: len(rows[i]["input_ids"]))
    out = np.empty((len(rows), len(predictor.labels)), np.float32)
    for start in range(0, len(order), predictor.batch_size):
        index = order[start : start + predictor.batch_size]
        batch = predictor.encoder.pad([rows[i] for i in index])
        out[index] = predictor.session.run({name: batch[name] for name in GRAPH_INPUTS})
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", required=True, help="a saved PromptClassifier (benchmarks/inference.py --save)")
    p.add_argument("--texts", type=int, default=1500, help="TNEWS test texts to time (default 1500)")
    p.add_argument("--rounds", type=int, default=2, help="timed passes per engine, alternating (default 2)")
    p.add_argument("--threads", type=int, default=None, help="engine threads (default: the usable cores)")
    args = p.parse_args()
    from fewshot.runtime import OnnxPredictor
    from fewshot.runtime.engines import ENGINES

    texts = [json.loads(line)["sentence"] for line in (TNEWS / "test.json").read_text(encoding="utf-8").splitlines()
             if line.strip()][: args.texts]
    with tempfile.TemporaryDirectory(prefix="fewshot-engines-") as tmp:
        work = Path(tmp)
        dynamic = export(args.checkpoint, work / "dynamic", work, calibrated=False)
        calibrated = export(args.checkpoint, work / "calibrated", work, calibrated=True)
        runs = {BASELINE: (calibrated, "onnxruntime", "fp32"), "onnxruntime int8 dynamic": (dynamic, "onnxruntime", "int8"),
                "onnxruntime int8 calibrated": (calibrated, "onnxruntime", "int8"),
                "openvino fp32": (calibrated, "openvino", "fp32"), "openvino bf16": (calibrated, "openvino", "bf16"),
                "openvino int8 calibrated": (calibrated, "openvino", "int8")}
        runs = {name: run for name, run in runs.items()
                if ENGINES[run[1]].available() and run[2] in ENGINES[run[1]].precisions("cpu")}
        predictors = {name: OnnxPredictor(bundle, engine=engine, precision=precision, threads=args.threads)
                      for name, (bundle, engine, precision) in runs.items()}
        timed = {**{name: predictor.predict_proba for name, predictor in predictors.items()},
                 SEQUENTIAL: lambda t: sequential(predictors[BASELINE], t)}
        for run in timed.values():
            run(texts[:64])  # warm up
        best: Dict[str, float] = {name: float("inf") for name in timed}
        probs: Dict[str, np.ndarray] = {}
        busy, start_all, own = _machine.busy_cpu_seconds(), time.perf_counter(), time.process_time()
        for _ in range(args.rounds):
            for name, run in timed.items():
                start = time.perf_counter()
                probs[name] = run(texts)
                best[name] = min(best[name], time.perf_counter() - start)
        wall = time.perf_counter() - start_all
    others = None if busy is None else (_machine.busy_cpu_seconds() - busy - (time.process_time() - own)) / wall
    print(_machine.machine_line())
    if others is not None:
        print(f"other processes kept {max(others, 0.0):.2f} cores busy during the {wall:.0f} s of timing")
    reference = probs[BASELINE].argmax(axis=1)
    print(f"{'engine':<36}{'texts/s':>9}{'ratio':>8}{'agree %':>9}")
    for name, seconds in best.items():
        agree = 100 * float(np.mean(probs[name].argmax(axis=1) == reference))
        print(f"{name:<36}{len(texts) / seconds:>9.1f}{best[BASELINE] / seconds:>7.2f}x{agree:>9.2f}")
    print("ratios vs " + BASELINE + ": " + " | ".join(f"{name} {best[BASELINE] / seconds:.2f}x"
                                                      for name, seconds in best.items() if name != BASELINE))
    return 0


if __name__ == "__main__":
    sys.exit(main())
