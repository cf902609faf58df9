"""Inference throughput: Paddle dynamic graph vs ONNX fp32 vs ONNX INT8 on the same bundle and texts.

    python benchmarks/inference.py [--checkpoint DIR] [--texts N] [--batch-size 32] [--threads N] [--setting-rounds 2]
    python benchmarks/inference.py --base-shape [--texts 256]

With ``../shared`` present: ``zh-ernie-tiny`` trained briefly on FewCLUE TNEWS ``train_0`` (or the
classifier in ``--checkpoint``), timed on the TNEWS test texts, accuracy on TNEWS ``dev_few_all``.
Without it: a tiny random ERNIE and generated texts. ``--base-shape``: an untrained random model of
``ernie-3.0-base-zh``'s shape (12 layers, hidden 768, vocabulary 40,000) over zh-ernie-tiny's
vocabulary, timed on fewer texts (default 256), accuracy not measured. Throughput is end to end
(texts → probabilities, tokenisation included) and model only (padded batches → probabilities).
GFLOP/s counts the encoder's matmul FLOPs of the actual padded batches over the model-only time,
against a float32 2048x2048 numpy matmul timed in this process before and after. Prints a table
and a final line of ratios.

CPU settings: the classifier is trained (or loaded) and exported once, then timed in child
processes, one per CPU setting and round, alternating (``benchmarks/_machine.py``): ``fewshot``
(our defaults, ``fewshot.cpu_env``: Paddle on every usable core) and ``paddle`` (Paddle's own: one
thread). onnxruntime uses ``--threads`` threads (default: the usable cores) in both; Paddle's
thread count is the setting's. Each child times the dynamic graph twice: with Paddle's default
kernel flags (``paddle default``) and inside ``fewshot.training.cpu_math.fast_cpu_math`` (``paddle fewshot``),
which is how ``PromptClassifier.predict`` runs it. A figure is the median over the children.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import _machine  # noqa: I001  (first: applies fewshot's CPU defaults before Paddle loads)

from _paths import TINY_ERNIE, TNEWS, TNEWS_LABELS, TNEWS_TEMPLATE as TEMPLATE

ENGINES = ("paddle default", "paddle fewshot", "onnx fp32", "onnx int8")


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", help="a saved PromptClassifier to benchmark instead of training one")
    p.add_argument("--bundle", help="(with --checkpoint) its exported bundle, instead of exporting again")
    p.add_argument("--save", help="save the classifier trained here, for later runs with --checkpoint")
    p.add_argument("--base-shape", action="store_true", help="time a random model of ernie-3.0-base-zh's shape")
    p.add_argument("--texts", type=int, default=None, help="number of texts to time (default 1500; 256 with --base-shape)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--threads", type=int, default=None, help="onnxruntime threads (default: the usable cores)")
    p.add_argument("--train-steps", type=int, default=100, help="training steps on TNEWS train_0 (default 100)")
    p.add_argument("--repeats", type=int, default=3, help="timed passes of the ONNX engines; the best counts")
    p.add_argument("--texts-file", help=argparse.SUPPRESS)
    p.add_argument("--dev-file", help=argparse.SUPPRESS)
    _machine.add_setting_arguments(p)
    args = p.parse_args()
    if args.base_shape and args.checkpoint:
        p.error("--base-shape builds its own model; leave out --checkpoint")
    if args.texts is None:
        args.texts = 256 if args.base_shape else 1500
    return args


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
        if args.base_shape:
            from fewshot.testing import build_shaped_model

            vocab = (TINY_ERNIE / "vocab.txt").read_text(encoding="utf-8").splitlines()
            model_dir = build_shaped_model(work / "base-shape", vocab, "ernie-3.0-base-zh", seed=0)
            clf = PromptClassifier(model_dir, labels=str(TNEWS_LABELS), template=TEMPLATE, max_seq_length=128, seed=0)
            return clf, texts, [], "random ernie-3.0-base-zh shape (12 layers, hidden 768, vocab 40000), untrained"
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


def timed(fn: Callable[[], object], repeats: int) -> float:
    """Best wall time of ``repeats`` calls of ``fn`` (warm it up first)."""
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
    return lambda: [predictor.run_batch(f) for f in feeds]


def accuracy(labels: Sequence[str], gold: Sequence[str]) -> Optional[float]:
    return 100.0 * sum(p == g for p, g in zip(labels, gold)) / len(gold) if gold else None


def child_main(args: argparse.Namespace) -> None:
    """One CPU setting: time every engine on the saved classifier and bundle; print one JSON line."""
    from fewshot.classifier import PromptClassifier
    from fewshot.runtime import OnnxPredictor

    clf = PromptClassifier.load(args.checkpoint)
    texts = json.loads(Path(args.texts_file).read_text(encoding="utf-8"))
    dev = json.loads(Path(args.dev_file).read_text(encoding="utf-8"))
    predictors = {p: OnnxPredictor(args.bundle, threads=args.threads, batch_size=args.batch_size, precision=p)
                  for p in ("fp32", "int8")}
    order, batches = paddle_batches(clf, texts, args.batch_size)
    encoded = predictors["fp32"].encode(texts)
    feeds = [predictors["fp32"].encoder.pad([encoded[i] for i in order[s : s + args.batch_size]])
             for s in range(0, len(order), args.batch_size)]
    assert all(f["input_ids"].shape == b["input_ids"].shape for f, b in zip(feeds, batches))
    flops = _machine.encoder_flops(clf.model.plm.config, [b["input_ids"].shape for b in batches], clf.model.num_masks)
    gold = [label for _, label in dev]
    dev_texts = [text for text, _ in dev]
    dev_predicted = clf.predict(dev_texts, batch_size=args.batch_size) if dev else []
    engines: Dict[str, Dict[str, float]] = {}
    for name, fast_math in (("paddle default", False), ("paddle fewshot", True)):
        paddle_probs(clf, batches[:1], fast_math)
        model_time = timed(lambda: paddle_probs(clf, batches, fast_math), 1)
        e2e_time = timed(lambda: paddle_probs(clf, paddle_batches(clf, texts, args.batch_size)[1], fast_math), 1)
        engines[name] = {"e2e": e2e_time, "model": model_time, "accuracy": accuracy(dev_predicted, gold)}
    for precision, predictor in predictors.items():
        run = onnx_engine(predictor, feeds)
        run()
        model_time = timed(run, args.repeats)
        e2e_time = timed(lambda: predictor.predict_proba(texts), args.repeats)
        engines[f"onnx {precision}"] = {"e2e": e2e_time, "model": model_time,
                                        "accuracy": accuracy(predictor.predict(dev_texts), gold) if dev else None}
    mean_len = sum(int(b["attention_mask"].sum()) for b in batches) / len(texts)
    _machine.print_result({"engines": engines, "flops": flops, "mean_len": mean_len})


def prepare(args: argparse.Namespace, work: Path) -> Tuple[List[str], str]:
    """Train or load the classifier, save it and its bundle under ``work``; child options and a description."""
    clf, texts, dev, what = build_classifier(args, work)
    if args.save:
        clf.save(args.save)
    checkpoint = Path(args.checkpoint) if args.checkpoint else clf.save(work / "checkpoint")
    start = time.perf_counter()
    bundle = Path(args.bundle) if args.bundle else clf.export(work / "bundle", int8=True)
    export_s = time.perf_counter() - start
    (work / "texts.json").write_text(json.dumps(texts, ensure_ascii=False), encoding="utf-8")
    (work / "dev.json").write_text(json.dumps([(e.text_a, e.label) for e in dev], ensure_ascii=False), encoding="utf-8")
    argv = ["--checkpoint", str(checkpoint), "--bundle", str(bundle), "--texts-file", str(work / "texts.json"),
            "--dev-file", str(work / "dev.json"), "--batch-size", str(args.batch_size), "--repeats", str(args.repeats)]
    if args.threads:
        argv += ["--threads", str(args.threads)]
    return argv, f"{what}; {len(texts)} texts, batch {args.batch_size}; dev {len(dev)} examples; export {export_s:.1f}s"


def print_report(runs: Dict[str, List[dict]], what: str, matmul: float, threads: int) -> None:
    """Per setting and engine the median texts/s, GFLOP/s and accuracy; then the ratio line."""
    first = runs["fewshot"][0]
    flops = first["flops"]
    print(f"model: {what}; mean length {first['mean_len']:.1f} tokens; onnxruntime {threads} threads")
    print(f"numpy float32 2048x2048 matmul: {matmul:.1f} GFLOP/s; encoder work: {flops / 1e9:.1f} GFLOP for the texts")
    header = (f"{'setting':<9}{'engine':<16}{'texts/s e2e':>13}{'texts/s model':>15}{'enc GFLOP/s':>13}"
              f"{'% matmul':>10}{'dev acc %':>11}")
    print(header)
    print("-" * len(header))
    speed: Dict[Tuple[str, str], Tuple[float, float, float, Optional[float]]] = {}
    for setting, children in runs.items():
        for name in ENGINES:
            e2e = statistics.median(c["engines"][name]["e2e"] for c in children)
            model = statistics.median(c["engines"][name]["model"] for c in children)
            acc = children[0]["engines"][name]["accuracy"]
            n = first["n_texts"]
            speed[setting, name] = (n / e2e, n / model, flops / model / 1e9, acc)
            acc_text = f"{acc:>11.2f}" if acc is not None else f"{'n/a':>11}"
            gflops = flops / model / 1e9
            print(f"{setting:<9}{name:<16}{n / e2e:>13.1f}{n / model:>15.1f}{gflops:>13.1f}"
                  f"{100 * gflops / matmul:>10.1f}{acc_text}")
    ours_graph, paddle_graph = speed["fewshot", "paddle fewshot"], speed["paddle", "paddle fewshot"]
    shipped, same = speed["paddle", "paddle default"], speed["fewshot", "paddle fewshot"]
    fp32, int8 = speed["fewshot", "onnx fp32"], speed["fewshot", "onnx int8"]
    acc = "n/a" if fp32[3] is None else f"{int8[3] - fp32[3]:+.2f} pts vs fp32 (target within 1)"
    print(
        f"ratios: predict's dynamic graph fewshot/paddle CPU defaults e2e {ours_graph[0] / paddle_graph[0]:.2f}x | "
        f"onnx_fp32/paddle as shipped e2e {fp32[0] / shipped[0]:.2f}x (model {fp32[1] / shipped[1]:.2f}x, target >=3), "
        f"same settings {fp32[0] / same[0]:.2f}x | fp32 encoder {100 * fp32[2] / matmul:.0f}% of matmul (target >=40%) | "
        f"int8/fp32 e2e {int8[0] / fp32[0]:.2f}x (model {int8[1] / fp32[1]:.2f}x, target >=1.5) | int8 dev acc {acc}"
    )


def main() -> int:
    args = parse_args()
    if args.cpu_setting:
        child_main(args)
        return 0
    from fewshot.cpu_env import usable_cores

    matmul_before = _machine.numpy_matmul_gflops()
    with tempfile.TemporaryDirectory(prefix="fewshot-bench-") as tmp:
        argv, what = prepare(args, Path(tmp))
        runs = _machine.alternate(Path(__file__), argv, args.setting_rounds)
        n_texts = len(json.loads((Path(tmp) / "texts.json").read_text(encoding="utf-8")))
    matmul = max(matmul_before, _machine.numpy_matmul_gflops())
    for children in runs.values():
        for child in children:
            child["n_texts"] = n_texts
    print(_machine.machine_line() + " (this process)")
    _machine.print_settings(runs)
    print_report(runs, what, matmul, args.threads or usable_cores())
    return 0


if __name__ == "__main__":
    sys.exit(main())
