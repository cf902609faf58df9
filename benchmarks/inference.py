"""Inference throughput: Paddle dynamic graph vs ONNX fp32 vs ONNX INT8 on the same bundle and texts.

    python benchmarks/inference.py [--checkpoint DIR] [--texts N] [--batch-size 32] [--threads N]

With ``../shared`` present: ``zh-ernie-tiny`` trained briefly on FewCLUE TNEWS ``train_0`` (or the
classifier in ``--checkpoint``), timed on the TNEWS test texts, accuracy on TNEWS ``dev_few_all``.
Without it: a tiny random ERNIE and generated texts. Everything runs on CPU with ``--threads``
threads (default: all cores). Throughput is end to end (texts → probabilities, tokenisation
included) and model only (padded batches → probabilities). GFLOP/s counts the encoder's matmul
FLOPs of the actual padded batches over the model-only time, against a float32 numpy matmul timed
in the same run. Prints a table and a final line of ratios.

The dynamic graph runs twice: with Paddle's default CPU settings (``paddle default``, the
baseline of the ">= 3x" target) and inside ``fewshot.cpu_math.fast_cpu_math`` (``paddle
fewshot``), which is how ``PromptClassifier.predict`` runs it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Dict, List, Sequence, Tuple

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
TNEWS = SHARED / "fewclue" / "tnews"
TINY_ERNIE = SHARED / "models" / "zh-ernie-tiny"
TNEWS_LABELS = ROOT / "examples" / "tnews" / "label.txt"
TEMPLATE = "{'text': 'text_a'}这条新闻的主题是{'mask'}{'mask'}"


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", help="a saved PromptClassifier to benchmark instead of training one")
    p.add_argument("--save", help="save the classifier trained here, for later runs with --checkpoint")
    p.add_argument("--texts", type=int, default=1500, help="number of texts to time (default 1500)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--threads", type=int, default=None, help="CPU threads for every engine (default: all cores)")
    p.add_argument("--train-steps", type=int, default=100, help="training steps on TNEWS train_0 (default 100)")
    p.add_argument("--repeats", type=int, default=3, help="timed passes of the ONNX engines; the best counts")
    return p.parse_args()


def configure_threads(threads: int) -> None:
    """Give Paddle (which forces OMP_NUM_THREADS=1 unless set) and OpenBLAS the same thread count as onnxruntime."""
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[name] = str(threads)


def read_tnews(name: str, limit: int = 0) -> List[dict]:
    rows = []
    with open(TNEWS / name, encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                rows.append(json.loads(line))
            if limit and len(rows) >= limit:
                break
    return rows


def build_classifier(args: argparse.Namespace, work: Path):
    """(classifier, texts to time, labelled dev examples, description)."""
    from fewshot.classifier import PromptClassifier
    from fewshot.data import Example

    if TINY_ERNIE.is_dir() and TNEWS.is_dir():
        texts = [r["sentence"] for r in read_tnews("test.json", args.texts)]
        dev = [Example(r["sentence"], label=r["label_desc"]) for r in read_tnews("dev_few_all.json")]
        if args.checkpoint:
            return PromptClassifier.load(args.checkpoint), texts, dev, f"checkpoint {args.checkpoint}"
        clf = PromptClassifier(str(TINY_ERNIE), labels=str(TNEWS_LABELS), template=TEMPLATE, max_seq_length=128, seed=0)
        train = [Example(r["sentence"], label=r["label_desc"]) for r in read_tnews("train_0.json")]
        clf.fit(train, max_steps=args.train_steps, learning_rate=2e-4, per_device_train_batch_size=16, seed=0,
                disable_tqdm=True, logging_steps=10_000, evaluation_strategy="no", report_to=[])
        return clf, texts, dev, f"zh-ernie-tiny, {args.train_steps} steps on TNEWS train_0"
    from fewshot.testing import build_tiny_model, make_separable_task

    train, test, words = make_separable_task(n_per_class=64, seed=0)
    model_dir = build_tiny_model(work / "tiny", [e.text_a for e in train + test] + ["这条新闻的主题是体育财经天气"],
                                 hidden_size=256, num_layers=4, num_heads=4, intermediate_size=1024)
    clf = PromptClassifier(model_dir, labels=words, template=TEMPLATE, max_seq_length=128, seed=0)
    clf.fit(train, max_steps=args.train_steps, learning_rate=1e-3, seed=0, disable_tqdm=True,
            logging_steps=10_000, evaluation_strategy="no", report_to=[])
    texts = [e.text_a for e in (train + test) * (args.texts // (len(train) + len(test)) + 1)][: args.texts]
    return clf, texts, test, "random tiny ERNIE (no ../shared), synthetic texts"


def matmul_gflops(threads: int, size: int = 1024, repeats: int = 20) -> float:
    """Best float32 numpy matmul rate, GFLOP/s."""
    import numpy as np

    a = np.random.default_rng(0).random((size, size), dtype=np.float32)
    a @ a
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        for _ in range(repeats):
            a @ a
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 * repeats / best / 1e9


def encoder_flops(config, shapes: Sequence[Tuple[int, int]], positions: int) -> float:
    """Matmul FLOPs of the transformer encoder on batches of ``(batch, length)``: projections, FFN, attention.

    The last layer runs its keys and values over every token but everything else only at the
    ``positions`` the head reads (``fewshot.encoder_forward``), so only that work is counted.
    """
    h, inner, layers = config.hidden_size, config.intermediate_size, config.num_hidden_layers
    total = 0.0
    for b, n in shapes:
        tokens, read = b * n, b * positions
        total += (layers - 1) * (2 * tokens * (4 * h * h + 2 * h * inner) + 4 * b * n * n * h)
        total += 2 * tokens * 2 * h * h + 2 * read * (2 * h * h + 2 * h * inner) + 4 * read * n * h
    return total


def best_time(fn: Callable[[], object], repeats: int) -> float:
    fn()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def paddle_batches(clf, texts: Sequence[str], batch_size: int) -> Tuple[List[int], List[Dict[str, "object"]]]:
    """The texts encoded by the training template, sorted by length and padded per batch: (order, batches)."""
    from fewshot.template import pad_batch

    rows = [clf.template.encode(t) for t in texts]
    order = sorted(range(len(rows)), key=lambda i: len(rows[i]["input_ids"]))
    batches = [pad_batch([rows[i] for i in order[s : s + batch_size]], clf.tokenizer.pad_token_id)
               for s in range(0, len(order), batch_size)]
    return order, batches


def paddle_probs(clf, batches: Sequence[Dict[str, "object"]], fast_math: bool) -> List["object"]:
    """The dynamic graph's probabilities per batch, with Paddle's default CPU settings or ``fast_cpu_math``."""
    from contextlib import nullcontext

    import paddle

    from fewshot.training.cpu_math import fast_cpu_math

    with paddle.no_grad(), fast_cpu_math() if fast_math else nullcontext():
        tensors = [{k: paddle.to_tensor(v) for k, v in b.items()} for b in batches]
        return [paddle.nn.functional.softmax(clf.model(**t), axis=-1).numpy() for t in tensors]


def onnx_engine(predictor, feeds: List[Dict[str, "object"]]) -> Callable[[], object]:
    return lambda: [predictor.session.run(["probs"], f)[0] for f in feeds]


def accuracy(labels: Sequence[str], gold: Sequence[str]) -> float:
    return 100.0 * sum(p == g for p, g in zip(labels, gold)) / len(gold)


def main() -> int:
    args = parse_args()
    threads = args.threads or len(os.sched_getaffinity(0))
    configure_threads(threads)
    sys.path.insert(0, str(ROOT))
    import numpy as np

    from fewshot.inference import OnnxPredictor

    load_before = os.getloadavg()[0]
    matmul_before = matmul_gflops(threads)
    with tempfile.TemporaryDirectory(prefix="fewshot-bench-") as tmp:
        work = Path(tmp)
        clf, texts, dev, what = build_classifier(args, work)
        if args.save:
            clf.save(args.save)
        start = time.perf_counter()
        bundle = clf.export(work / "bundle", int8=True)
        export_s = time.perf_counter() - start
        predictors = {p: OnnxPredictor(bundle, threads=threads, batch_size=args.batch_size, precision=p) for p in ("fp32", "int8")}

        order, batches = paddle_batches(clf, texts, args.batch_size)
        encoded = predictors["fp32"].encode(texts)
        feeds = [predictors["fp32"].encoder.pad([encoded[i] for i in order[s : s + args.batch_size]])
                 for s in range(0, len(order), args.batch_size)]
        assert all(f["input_ids"].shape == b["input_ids"].shape for f, b in zip(feeds, batches))
        flops = encoder_flops(clf.model.plm.config, [b["input_ids"].shape for b in batches], clf.model.num_masks)

        results = {}
        dev_predicted = clf.predict(dev, batch_size=args.batch_size)
        for name, fast_math in (("paddle default", False), ("paddle fewshot", True)):
            model_time = best_time(lambda: paddle_probs(clf, batches, fast_math), 1)
            e2e_time = best_time(lambda: paddle_probs(clf, paddle_batches(clf, texts, args.batch_size)[1], fast_math), 1)
            results[name] = (e2e_time, model_time, dev_predicted)
        for precision, predictor in predictors.items():
            model_time = best_time(onnx_engine(predictor, feeds), args.repeats)
            e2e_time = best_time(lambda: predictor.predict_proba(texts), args.repeats)
            dev_inputs = [e.text_a for e in dev]
            results[f"onnx {precision}"] = (e2e_time, model_time, predictor.predict(dev_inputs))
        matmul = max(matmul_before, matmul_gflops(threads))
    load_after = os.getloadavg()[0]

    gold = [e.label for e in dev]
    mean_len = sum(int(b["attention_mask"].sum()) for b in batches) / len(texts)
    print(f"model: {what}; {len(texts)} texts, mean length {mean_len:.1f} tokens, batch {args.batch_size}, "
          f"{threads} threads; dev {len(dev)} examples; export {export_s:.1f}s; load avg {load_before:.2f} -> {load_after:.2f}")
    print(f"numpy float32 matmul 1024x1024: {matmul:.1f} GFLOP/s; encoder work: {flops / 1e9:.1f} GFLOP for the {len(texts)} texts")
    header = f"{'engine':<16}{'texts/s e2e':>13}{'texts/s model':>15}{'enc GFLOP/s':>13}{'% matmul':>10}{'dev acc %':>11}"
    print(header)
    print("-" * len(header))
    speed = {}
    for name, (e2e, model, predicted) in results.items():
        gflops = flops / model / 1e9
        speed[name] = (len(texts) / e2e, len(texts) / model, gflops, accuracy(predicted, gold))
        e2e_rate, model_rate, _, acc = speed[name]
        print(f"{name:<16}{e2e_rate:>13.1f}{model_rate:>15.1f}{gflops:>13.1f}{100 * gflops / matmul:>10.1f}{acc:>11.2f}")
    paddle, tuned, fp32, int8 = (speed[k] for k in ("paddle default", "paddle fewshot", "onnx fp32", "onnx int8"))
    print(
        f"ratios: onnx_fp32/paddle e2e {fp32[0] / paddle[0]:.2f}x (model {fp32[1] / paddle[1]:.2f}x, target >=3; "
        f"vs paddle fewshot {fp32[0] / tuned[0]:.2f}x) | "
        f"fp32 encoder {100 * fp32[2] / matmul:.0f}% of matmul (target >=40%) | "
        f"int8/fp32 e2e {int8[0] / fp32[0]:.2f}x (model {int8[1] / fp32[1]:.2f}x, target >=1.5) | "
        f"int8 dev acc {int8[3] - fp32[3]:+.2f} pts vs fp32 (target within 1)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
