"""Inference throughput: Paddle dynamic graph vs every inference engine and precision on the same bundle and texts.

    python benchmarks/inference.py [--checkpoint DIR] [--texts N] [--batch-size 32] [--threads N] [--setting-rounds 2]
    python benchmarks/inference.py --base-shape [--texts 256]

With ``../shared`` present: ``zh-ernie-tiny`` trained briefly on FewCLUE TNEWS ``train_0`` (or the
classifier in ``--checkpoint``), timed on the TNEWS test texts, accuracy on TNEWS ``dev_few_all``.
Without it: a tiny random ERNIE and generated texts. ``--base-shape``: an untrained random model of
``ernie-3.0-base-zh``'s shape (12 layers, hidden 768, vocabulary 40,000) over zh-ernie-tiny's
vocabulary, timed on fewer texts (default 256), accuracy not measured. Throughput is end to end
(texts → probabilities, tokenisation included: ``OnnxPredictor.predict_proba``, which tokenises the
next chunk while the engine runs) and model only (padded batches → probabilities, through the
engine's ``run_many``: several batches in flight where the engine profits). Engines: onnxruntime
fp32 and int8, and with ``pip install "fewshot[openvino]"`` OpenVINO fp32, bf16 (CPUs with native
bf16) and int8. The int8 model is calibrated at export (``--calibration``: 300 texts of TNEWS
``unlabeled.json``) and its accuracy change measured on the accuracy file by the export itself.
GFLOP/s counts the encoder's matmul FLOPs of the actual padded batches over the model-only time;
"% ceil" divides it by the GEMM peak of the engine's number type (fp32, bf16, int8) measured in this
run with the best kernel available (``benchmarks/ceilings.py``; the table says which). Accuracy
and top-1 agreement with onnxruntime fp32 on TNEWS ``test_public``. Prints a table and a final
line of ratios.

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

import ceilings  # noqa: E402

PADDLE = ("paddle default", "paddle fewshot")
RUNTIME = (("onnxruntime", "fp32"), ("onnxruntime", "int8"), ("openvino", "fp32"), ("openvino", "bf16"),
           ("openvino", "int8"))
"""(engine, precision) timed when installed and supported here; rows are named ``"onnxruntime fp32"``."""
BASELINE = "onnxruntime fp32"
CALIBRATION_TEXTS = 300


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
    p.add_argument("--ceiling-size", type=int, default=1024, help="matrix side of the GEMM ceilings (default 1024)")
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
        dev = [Example(r["sentence"], label=r["label_desc"]) for r in read_tnews("test_public.json")]
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
    return lambda: list(predictor.session.run_many(feeds))


def runtime_engines() -> List[Tuple[str, str]]:
    """The (engine, precision) pairs of ``RUNTIME`` installed and supported on this CPU."""
    from fewshot.runtime.engines import ENGINES

    return [(e, p) for e, p in RUNTIME if ENGINES[e].available() and p in ENGINES[e].precisions("cpu")]


def accuracy(labels: Sequence[str], gold: Sequence[str]) -> Optional[float]:
    return 100.0 * sum(p == g for p, g in zip(labels, gold)) / len(gold) if gold else None


def child_main(args: argparse.Namespace) -> None:
    """One CPU setting: time the dynamic graph and (in the fewshot setting) every engine; print one JSON line."""
    from fewshot.classifier import PromptClassifier
    from fewshot.runtime import OnnxPredictor

    clf = PromptClassifier.load(args.checkpoint)
    texts = json.loads(Path(args.texts_file).read_text(encoding="utf-8"))
    dev = json.loads(Path(args.dev_file).read_text(encoding="utf-8"))
    pairs = runtime_engines() if args.cpu_setting == "fewshot" else [("onnxruntime", "fp32")]
    predictors = {f"{e} {p}": OnnxPredictor(args.bundle, threads=args.threads, batch_size=args.batch_size, precision=p,
                                            engine=e) for e, p in pairs}
    order, batches = paddle_batches(clf, texts, args.batch_size)
    encoded = predictors[BASELINE].encode(texts)
    feeds = [predictors[BASELINE].encoder.pad([encoded[i] for i in order[s : s + args.batch_size]])
             for s in range(0, len(order), args.batch_size)]
    assert all(f["input_ids"].shape == b["input_ids"].shape for f, b in zip(feeds, batches))
    flops = _machine.encoder_flops(clf.model.plm.config, [b["input_ids"].shape for b in batches], clf.model.num_masks)
    gold = [label for _, label in dev]
    dev_texts = [text for text, _ in dev]
    dev_predicted = clf.predict(dev_texts, batch_size=args.batch_size) if dev else []
    engines: Dict[str, Dict[str, object]] = {}
    for name, fast_math in (("paddle default", False), ("paddle fewshot", True)):
        paddle_probs(clf, batches[:1], fast_math)
        model_time = timed(lambda: paddle_probs(clf, batches, fast_math), 1)
        e2e_time = timed(lambda: paddle_probs(clf, paddle_batches(clf, texts, args.batch_size)[1], fast_math), 1)
        engines[name] = {"e2e": e2e_time, "model": model_time, "accuracy": accuracy(dev_predicted, gold),
                         "kind": "fp32"}
    baseline = predictors[BASELINE].predict(dev_texts) if dev else []
    for name, predictor in predictors.items():
        run = onnx_engine(predictor, feeds)
        run()
        model_time = timed(run, args.repeats)
        e2e_time = timed(lambda: predictor.predict_proba(texts), args.repeats)
        predicted = predictor.predict(dev_texts) if dev else []
        agreement = 100.0 * sum(a == b for a, b in zip(predicted, baseline)) / len(baseline) if dev else None
        engines[name] = {"e2e": e2e_time, "model": model_time, "accuracy": accuracy(predicted, gold),
                         "agreement": agreement, "kind": "int8" if predictor.precision.name == "int8" else
                         predictor.precision.compute.replace("f32", "fp32")}
    mean_len = sum(int(b["attention_mask"].sum()) for b in batches) / len(texts)
    _machine.print_result({"engines": engines, "flops": flops, "mean_len": mean_len})


def calibration(clf, dev: Sequence[object], texts: Sequence[str]):
    """The int8 calibration: 300 TNEWS unlabelled texts (or the timed texts without ../shared), checked on ``dev``."""
    from fewshot.export.calibration import Calibration

    if TNEWS.is_dir():
        pool = [(r["sentence"], None) for r in read_tnews("unlabeled.json", CALIBRATION_TEXTS)]
        source = "tnews/unlabeled.json"
    else:
        pool, source = [(t, None) for t in texts[:CALIBRATION_TEXTS]], "timed texts"
    return Calibration(pool, list(dev), {"calibration_file": source})


def prepare(args: argparse.Namespace, work: Path) -> Tuple[List[str], str]:
    """Train or load the classifier, save it and its bundle under ``work``; child options and a description."""
    clf, texts, dev, what = build_classifier(args, work)
    if args.save:
        clf.save(args.save)
    checkpoint = Path(args.checkpoint) if args.checkpoint else clf.save(work / "checkpoint")
    start = time.perf_counter()
    bundle = Path(args.bundle) if args.bundle else clf.export(work / "bundle", int8=True,
                                                              calibration=calibration(clf, dev, texts))
    export_s = time.perf_counter() - start
    (work / "texts.json").write_text(json.dumps(texts, ensure_ascii=False), encoding="utf-8")
    (work / "dev.json").write_text(json.dumps([(e.text_a, e.label) for e in dev], ensure_ascii=False), encoding="utf-8")
    argv = ["--checkpoint", str(checkpoint), "--bundle", str(bundle), "--texts-file", str(work / "texts.json"),
            "--dev-file", str(work / "dev.json"), "--batch-size", str(args.batch_size), "--repeats", str(args.repeats)]
    if args.threads:
        argv += ["--threads", str(args.threads)]
    return argv, f"{what}; {len(texts)} texts, batch {args.batch_size}; dev {len(dev)} examples; export {export_s:.1f}s"


def print_report(runs: Dict[str, List[dict]], what: str, peaks: Dict[str, object], threads: int,
                 int8_check: Optional[dict]) -> None:
    """Per setting and engine the median texts/s, GFLOP/s, % of its ceiling, accuracy; then the ratio line."""
    first = runs["fewshot"][0]
    flops, n = first["flops"], first["n_texts"]
    print(f"model: {what}; mean length {first['mean_len']:.1f} tokens; engines on {threads} threads")
    print(f"encoder work: {flops / 1e9:.1f} GFLOP for the texts; GEMM {peaks['size']}^3 on {peaks['threads']} threads:")
    for kernel in peaks["kernels"]:
        print(f"  {kernel.kind:<5}{kernel.source:<40}{kernel.gflops:>8.1f}")
    rows = []
    for setting, children in runs.items():
        for name in children[0]["engines"]:
            e2e = statistics.median(c["engines"][name]["e2e"] for c in children)
            model = statistics.median(c["engines"][name]["model"] for c in children)
            result = children[0]["engines"][name]
            rows.append((setting, name, n / e2e, n / model, flops / model / 1e9, result))
    top = dict(peaks["ceilings"])
    for setting, name, _, _, gflops, result in rows:  # an engine faster than every GEMM probe sets the ceiling
        kind = result["kind"]
        if kind not in top or gflops > top[kind].gflops:
            top[kind] = ceilings.Kernel(kind, f"{name} itself (above every GEMM probe)", gflops)
    print(ceilings.ceiling_line(top))
    header = (f"{'setting':<9}{'engine':<18}{'texts/s e2e':>12}{'texts/s model':>14}{'enc GFLOP/s':>12}"
              f"{'% ceil':>8}{'acc %':>8}{'agree %':>9}")
    print(header)
    print("-" * len(header))
    speed: Dict[Tuple[str, str], Tuple[float, float, float, Optional[float]]] = {}
    for setting, name, e2e, model, gflops, result in rows:
        speed[setting, name] = (e2e, model, gflops, result["accuracy"])
        acc = "n/a" if result["accuracy"] is None else f"{result['accuracy']:.2f}"
        agree = "" if result.get("agreement") is None else f"{result['agreement']:.2f}"
        print(f"{setting:<9}{name:<18}{e2e:>12.1f}{model:>14.1f}{gflops:>12.1f}"
              f"{100 * gflops / top[result['kind']].gflops:>8.1f}{acc:>8}{agree:>9}")
    if int8_check:
        print(f"export check, int8 on {int8_check['examples']} labelled texts: {int8_check['metric']} "
              f"{100 * int8_check['fp32']:.2f} -> {100 * int8_check['int8']:.2f} ({100 * int8_check['delta']:+.2f} pts), "
              f"top-1 agreement {100 * int8_check['top1_agreement']:.2f} %")
    ours_graph, paddle_graph = speed["fewshot", "paddle fewshot"], speed["paddle", "paddle fewshot"]
    shipped, base = speed["paddle", "paddle default"], speed["fewshot", BASELINE]
    engines = [name for setting, name, *_ in rows if setting == "fewshot" and name not in PADDLE and name != BASELINE]
    vs_base = " ".join(f"{name} {speed['fewshot', name][0] / base[0]:.2f}x (model {speed['fewshot', name][1] / base[1]:.2f}x)"
                       for name in engines)
    print(
        f"ratios: predict's dynamic graph fewshot/paddle CPU defaults e2e {ours_graph[0] / paddle_graph[0]:.2f}x | "
        f"{BASELINE}/paddle as shipped e2e {base[0] / shipped[0]:.2f}x | vs {BASELINE} e2e: {vs_base}"
    )


def main() -> int:
    args = parse_args()
    if args.cpu_setting:
        child_main(args)
        return 0
    from fewshot.cpu_env import usable_cores

    with tempfile.TemporaryDirectory(prefix="fewshot-bench-") as tmp:
        argv, what = prepare(args, Path(tmp))
        bundle = Path(argv[argv.index("--bundle") + 1])
        int8_check = json.loads((bundle / "fewshot.json").read_text(encoding="utf-8"))["export_check"].get("int8_check")
        runs = _machine.alternate(Path(__file__), argv, args.setting_rounds)
        n_texts = len(json.loads((Path(tmp) / "texts.json").read_text(encoding="utf-8")))
    threads = args.threads or usable_cores()
    peaks = ceilings.measure_ceilings(args.ceiling_size, threads)
    for children in runs.values():
        for child in children:
            child["n_texts"] = n_texts
    print(_machine.machine_line() + " (this process)")
    _machine.print_settings(runs)
    print_report(runs, what, peaks, threads, int8_check)
    return 0


if __name__ == "__main__":
    sys.exit(main())
