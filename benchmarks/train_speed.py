"""Training throughput: fewshot's ``PromptClassifier.fit`` against PaddleNLP's ``paddlenlp.prompt``.

Both systems train the same masked LM on the same examples with the same template (one
``[MASK]``), label words (one character each), batch size, learning rate, steps and seed;
PaddleNLP's side is its few-shot application's recipe: ``AutoTemplate`` + ``ManualVerbalizer``
+ ``PromptModelForSequenceClassification`` + ``PromptTrainer`` with a ``CrossEntropyLoss``
criterion over a ``MapDataset`` of ``{"text_a", "labels"}`` dicts. Models are loaded once,
each system is warmed up, then runs alternate (ours, theirs, ours, theirs, ...) in one
process so that a busy machine slows both alike. The samples/s of a run is PaddleNLP
Trainer's own ``train_samples_per_second`` (steps x batch size / training-loop time), measured
by the same code for both; "wall s" and "CPU s" cover the whole call, with what each system does
around the loop (encoding, trainer set-up). With Paddle on one thread (Paddle's defaults),
samples per CPU-second is a second ratio, less moved by other jobs on the machine (not immune:
cores share caches); with more threads it also counts the time OpenMP's idle threads spin.
"train loss" is the mean over a run's steps; runs continue training the same model, so a falling
loss shows both learn. (PaddleNLP starts higher: its prompt tokenizer gives ``[SEP]`` position 0.)

PaddleNLP runs twice, on two copies of the model: as it ships (``paddlenlp``), and inside
``fewshot.training.cpu_math.fast_cpu_math`` (``paddlenlp-fm``), the two process-wide CPU settings that
``fit`` turns on for itself (contiguous view kernels, denormals flushed to zero). The target is
checked against ``paddlenlp-fm``: same kernels and float settings on both sides, so the ratio
measures what our pipeline does differently (the last layer and the LM head only at the mask,
padding to the longest row, the template tokenised once), not the settings.

CPU settings: Paddle fixes its thread count when it loads, so the script runs itself as a child
process per setting, alternating for ``--setting-rounds`` rounds (``benchmarks/_machine.py``): ``fewshot``
(our CPU defaults, ``fewshot.cpu_env``: ``OMP_NUM_THREADS`` = usable cores, ``MKL_DEBUG_CPU_TYPE=5``
on AMD) and ``paddle`` (Paddle's own defaults: one thread; ``FEWSHOT_CPU_DEFAULTS=0``). Each child
trains all three systems; a figure is the median over the rounds' runs. Ratios: ours with the
defaults over the same code with Paddle's defaults; over ``paddlenlp-fm`` in the same (fewshot)
settings; over ``paddlenlp`` as shipped (Paddle's defaults, no ``fast_cpu_math``).

Defaults: ``../shared/models/zh-ernie-tiny`` and FewCLUE TNEWS ``train_0.json`` when the shared
folder is present, else a random ERNIE of the same size and generated Chinese texts.
``--base-shape`` trains a randomly initialised model of ``ernie-3.0-base-zh``'s shape instead
(PaddleNLP's configuration: 12 layers, hidden 768, 12 heads, intermediate 3072, vocabulary 40,000)
with zh-ernie-tiny's vocabulary padded to 40,000 tokens, and reports the GFLOP/s ours reaches:
3x the forward matmul FLOPs of the encoder (``_machine.encoder_flops``: projections, feed-forward,
attention; the last layer only at the ``[MASK]``) for the padded batches actually trained, over the
training-loop time, as a share of numpy's float32 2048x2048 matmul rate on the same machine.

    python benchmarks/train_speed.py [--steps 30] [--batch-size 8] [--setting-rounds 2] [--model DIR] [--data FILE]
    python benchmarks/train_speed.py --base-shape --steps 4 --warmup-steps 1 --repeats 1 --setting-rounds 3

The last line is the ratios, e.g. ``ratios ours: fewshot/paddle CPU defaults 1.23x (target >= 1.6x on
Intel, >= 3x on AMD) | ours/paddlenlp same settings 1.44x (target >= 1.3x) | as shipped 2.21x``.
"""

from __future__ import annotations

import argparse
import logging
import random
import statistics
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Protocol, Sequence, Tuple

import _machine  # noqa: I001  (first: applies fewshot's CPU defaults before Paddle loads)
import paddle
from paddlenlp.datasets import MapDataset
from paddlenlp.prompt import (
    AutoTemplate,
    ManualVerbalizer,
    PromptModelForSequenceClassification,
    PromptTrainer,
    PromptTuningArguments,
)
from paddlenlp.transformers import AutoModelForMaskedLM, AutoTokenizer
from paddlenlp.utils.log import logger as paddlenlp_logger

from fewshot.classifier import PromptClassifier
from fewshot.training.cpu_math import fast_cpu_math
from fewshot.data import Example, read_jsonl
from fewshot.data.labels import read_label_words
from fewshot.testing import build_char_vocab, build_shaped_model, build_tiny_model

from _paths import TINY_ERNIE as SHARED_MODEL, TNEWS, TNEWS_LABELS

SHARED_DATA = TNEWS / "train_0.json"
TEMPLATE = "{'text': 'text_a'}这条新闻的主题是{'mask'}"
MAX_SEQ_LENGTH = 128
TARGET_RATIO = 1.3
TARGET_DEFAULTS = "target >= 1.6x on Intel, >= 3x on AMD"
TARGET_MATMUL_SHARE = 35.0
BASE_SHAPE = "ernie-3.0-base-zh"
GENERATED_TOPICS: Dict[str, str] = {
    "news_sports": "球赛冠军比分教练队员进攻",
    "news_finance": "股价银行利率投资基金市场",
    "news_car": "汽车新车油耗驾驶司机车型",
    "news_edu": "学校老师考试学生课程高考",
    "news_game": "电竞玩家游戏战队比赛版本",
}
"""Label → cue characters of the generated fallback texts."""


@dataclass
class Workload:
    """What both systems train on: a model directory, examples and one label character per label."""

    model_dir: Path
    examples: List[Example]
    label_chars: Dict[str, str]
    model_source: str
    data_source: str


@dataclass
class RunResult:
    """One training run of one system."""

    system: str
    run: str
    steps: int
    batch_size: int
    train_runtime: float
    wall_seconds: float
    cpu_seconds: float
    train_loss: float
    setting: str = ""
    matmul_flops: float = 0.0
    """Encoder matmul FLOPs of the run's training steps (forward and backward), where counted."""

    @property
    def samples_per_second(self) -> float:
        """Training-loop throughput, as PaddleNLP's Trainer reports it."""
        return self.steps * self.batch_size / self.train_runtime

    @property
    def gflops(self) -> float:
        """Encoder matmul GFLOP/s over the training-loop time (0 where not counted)."""
        return self.matmul_flops / self.train_runtime / 1e9

    @property
    def samples_per_cpu_second(self) -> float:
        """Samples per second of process CPU time over the whole call."""
        return self.steps * self.batch_size / self.cpu_seconds


@dataclass
class TrainSettings:
    """Training settings shared by both systems."""

    batch_size: int
    learning_rate: float
    logging_steps: int
    seed: int

    def trainer_kwargs(self, steps: int) -> Dict[str, Any]:
        """``TrainingArguments`` fields common to both trainers."""
        return dict(
            max_steps=steps,
            per_device_train_batch_size=self.batch_size,
            learning_rate=self.learning_rate,
            logging_steps=self.logging_steps,
            seed=self.seed,
            disable_tqdm=True,
            evaluation_strategy="no",
            save_strategy="no",
            report_to=[],
        )


def first_chars(label_words: Dict[str, List[str]], labels: Sequence[str]) -> Dict[str, str]:
    """The first character of each label's first word: with one ``[MASK]`` a word is one token."""
    return {label: label_words[label][0][0] for label in labels}


def generated_texts(n_per_label: int, seed: int) -> List[Tuple[str, str]]:
    """``(text, label)`` pairs of TNEWS-like length (16-30 characters) mixing cues and filler."""
    filler = "的一是在了有和人这中大上个我他来们到地出就对会可年同工也能下过子说种面而方后多定行"
    rng = random.Random(seed)
    rows = []
    for label, cues in GENERATED_TOPICS.items():
        for _ in range(n_per_label):
            chars = [rng.choice(filler) for _ in range(rng.randint(12, 24))]
            for cue in rng.sample(cues, rng.randint(4, 6)):
                chars.insert(rng.randint(0, len(chars)), cue)
            rows.append(("".join(chars), label))
    rng.shuffle(rows)
    return rows


def build_fallback_model(out_dir: Path, texts: Sequence[str], seed: int) -> Path:
    """A randomly initialised ERNIE masked LM the size of zh-ernie-tiny, over the texts' characters."""
    build_tiny_model(
        out_dir,
        list(texts) + [TEMPLATE],
        hidden_size=256,
        num_layers=4,
        num_heads=4,
        intermediate_size=1024,
        max_position_embeddings=512,
        seed=seed,
    )
    return out_dir


def load_examples(data: Optional[str], seed: int) -> Tuple[List[Example], str]:
    """Examples from ``--data`` (default: shared TNEWS train_0) or generated, and where they came from."""
    path = Path(data) if data else (SHARED_DATA if SHARED_DATA.is_file() else None)
    if path is None:
        examples = [Example(text, label=label) for text, label in generated_texts(48, seed)]
        return examples, f"generated ({len(examples)} texts, {len(GENERATED_TOPICS)} labels)"
    examples = read_jsonl(path)
    unknown = sorted({e.label for e in examples} - set(read_label_words(TNEWS_LABELS)))
    if unknown:
        raise SystemExit(f"{path}: labels {', '.join(unknown)} have no TNEWS label word")
    return examples, str(path)


def resolve_model(model: Optional[str], texts: Sequence[str], seed: int, scratch: Path) -> Tuple[Path, str]:
    """The ``--model`` directory (default: shared zh-ernie-tiny, else one built in ``scratch``) and a description."""
    path = Path(model) if model else (SHARED_MODEL if SHARED_MODEL.is_dir() else None)
    if path is not None:
        return path, str(path)
    built = build_fallback_model(scratch / "tiny-ernie", texts, seed)
    return built, "random ERNIE, 4 layers, hidden 256 (no shared model found)"


def build_base_shape(texts: Sequence[str], seed: int, scratch: Path) -> Tuple[Path, str]:
    """A random ``ernie-3.0-base-zh``-shaped model over zh-ernie-tiny's vocabulary (else the texts'), padded."""
    if SHARED_MODEL.is_dir():
        vocab, source = (SHARED_MODEL / "vocab.txt").read_text(encoding="utf-8").splitlines(), "zh-ernie-tiny's"
    else:
        vocab, source = build_char_vocab(list(texts) + [TEMPLATE]), "a character"
    built = build_shaped_model(scratch / "base-shape", vocab, BASE_SHAPE, seed)
    return Path(built), f"random {BASE_SHAPE} shape (12 layers, hidden 768, vocab 40000; {source} vocabulary padded)"


def load_workload(model: Optional[str], data: Optional[str], seed: int, scratch: Path, base_shape: bool = False) -> Workload:
    """Resolve ``--model`` and ``--data`` (or ``--base-shape``) into what both systems train on."""
    examples, data_source = load_examples(data, seed)
    label_words = read_label_words(TNEWS_LABELS)
    labels = [label for label in label_words if any(e.label == label for e in examples)]
    label_chars = first_chars(label_words, labels)
    texts = [e.text_a for e in examples] + list(label_chars.values())
    if base_shape:
        model_dir, model_source = build_base_shape(texts, seed, scratch)
    else:
        model_dir, model_source = resolve_model(model, texts, seed, scratch)
    return Workload(model_dir, examples, label_chars, model_source, data_source)


class TrainingSystem(Protocol):
    """A loaded model with a trainer; ``train`` goes on training it and returns the Trainer's metrics."""

    name: str

    def train(self, steps: int) -> Dict[str, Any]: ...


class FewshotSystem:
    """Ours: ``PromptClassifier`` with a manual verbalizer, trained by ``fit``."""

    name = "fewshot"

    def __init__(self, work: Workload, settings: TrainSettings):
        self.examples = work.examples
        self.settings = settings
        self.classifier = PromptClassifier(
            str(work.model_dir),
            labels={label: [char] for label, char in work.label_chars.items()},
            template=TEMPLATE,
            verbalizer="manual",
            max_seq_length=MAX_SEQ_LENGTH,
            seed=settings.seed,
        )

        self.shapes: List[Tuple[int, int]] = []
        self.classifier.model.register_forward_pre_hook(self._record_shape, with_kwargs=True)

    def _record_shape(self, layer: paddle.nn.Layer, args: tuple, kwargs: Dict[str, Any]) -> None:
        """Remember the padded ``(batch, length)`` of every training forward."""
        if layer.training:
            ids = args[0] if args else kwargs["input_ids"]
            self.shapes.append((int(ids.shape[0]), int(ids.shape[1])))

    def train(self, steps: int) -> Dict[str, Any]:
        """Train ``steps`` more steps; PaddleNLP Trainer's metrics."""
        return self.classifier.fit(self.examples, **self.settings.trainer_kwargs(steps))

    def matmul_flops(self) -> float:
        """Forward + backward (3x forward) encoder matmul FLOPs of the batches trained since the last call."""
        model = self.classifier.model
        flops = 3 * _machine.encoder_flops(model.plm.config, self.shapes, model.num_masks)
        self.shapes = []
        return flops


class PaddleNLPSystem:
    """Theirs: PaddleNLP's few-shot recipe with ``paddlenlp.prompt``."""

    name = "paddlenlp"

    def __init__(self, work: Workload, settings: TrainSettings):
        self.settings = settings
        paddle.seed(settings.seed)
        plm = AutoModelForMaskedLM.from_pretrained(str(work.model_dir))
        self.tokenizer = AutoTokenizer.from_pretrained(str(work.model_dir))
        template = AutoTemplate.create_from(TEMPLATE, self.tokenizer, MAX_SEQ_LENGTH, model=plm)
        verbalizer = ManualVerbalizer(work.label_chars, self.tokenizer)
        self.model = PromptModelForSequenceClassification(plm, template, verbalizer)
        self.rows = [{"text_a": e.text_a, "labels": verbalizer.labels_to_ids[e.label]} for e in work.examples]

    def train(self, steps: int) -> Dict[str, Any]:
        """Train ``steps`` more steps; PaddleNLP Trainer's metrics."""
        with tempfile.TemporaryDirectory(prefix="paddlenlp-prompt-") as output_dir:
            args = PromptTuningArguments(
                output_dir=output_dir,
                max_seq_length=MAX_SEQ_LENGTH,
                do_train=True,
                **self.settings.trainer_kwargs(steps),
            )
            trainer = PromptTrainer(
                model=self.model,
                tokenizer=self.tokenizer,
                criterion=paddle.nn.CrossEntropyLoss(),
                args=args,
                train_dataset=MapDataset(list(self.rows)),
            )
            return trainer.train().metrics


class PaddleNLPFastMathSystem(PaddleNLPSystem):
    """Theirs, run inside ``fast_cpu_math`` like our ``fit``: the like-for-like comparison."""

    name = "paddlenlp-fm"

    def train(self, steps: int) -> Dict[str, Any]:
        with fast_cpu_math():
            return super().train(steps)


def timed_run(system: TrainingSystem, run: str, steps: int, batch_size: int, setting: str) -> RunResult:
    """Train ``system`` for ``steps`` steps and collect its speed and loss."""
    if isinstance(system, FewshotSystem):
        system.matmul_flops()
    wall, cpu = time.perf_counter(), time.process_time()
    metrics = system.train(steps)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return RunResult(
        setting=setting,
        matmul_flops=system.matmul_flops() if isinstance(system, FewshotSystem) else 0.0,
        system=system.name,
        run=run,
        steps=steps,
        batch_size=batch_size,
        train_runtime=float(metrics["train_runtime"]),
        wall_seconds=wall,
        cpu_seconds=cpu,
        train_loss=float(metrics["train_loss"]),
    )


def quiet_logs() -> None:
    """Silence PaddleNLP's per-run banners so the table stays readable."""
    paddlenlp_logger.set_level("WARNING")
    logging.getLogger("fewshot").setLevel(logging.WARNING)




def format_table(results: Sequence[RunResult]) -> str:
    """Results as a fixed-width table."""
    header = (
        f"{'setting':<8} {'system':<12} {'run':<7} {'steps':>5} {'loop s':>7} {'samples/s':>9} "
        f"{'wall s':>7} {'CPU s':>7} {'samples/CPU-s':>13} {'train loss':>10} {'GFLOP/s':>8}"
    )
    lines = [header, "-" * len(header)]
    for r in results:
        gflops = f"{r.gflops:>8.1f}" if r.matmul_flops else f"{'':>8}"
        lines.append(
            f"{r.setting:<8} {r.system:<12} {r.run:<7} {r.steps:>5} {r.train_runtime:>7.2f} {r.samples_per_second:>9.1f} "
            f"{r.wall_seconds:>7.2f} {r.cpu_seconds:>7.2f} {r.samples_per_cpu_second:>13.1f} {r.train_loss:>10.4f} {gflops}"
        )
    return "\n".join(lines)


def median_of(results: Sequence[RunResult], setting: str, system: str, field: str) -> float:
    """Median of one field or property over a system's measured (not warm-up) runs in one CPU setting."""
    return statistics.median(
        getattr(r, field) for r in results if r.setting == setting and r.system == system and r.run != "warmup"
    )


SYSTEM_NAMES = (FewshotSystem.name, PaddleNLPSystem.name, PaddleNLPFastMathSystem.name)


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=30, help="training steps per measured run (default 30)")
    parser.add_argument("--batch-size", type=int, default=8, help="per-device train batch size (default 8)")
    parser.add_argument("--model", help=f"ERNIE masked-LM directory (default {SHARED_MODEL} if present)")
    parser.add_argument("--data", help=f"FewCLUE TNEWS JSON lines (default {SHARED_DATA} if present)")
    parser.add_argument("--base-shape", action="store_true", help=f"train a random model of {BASE_SHAPE}'s shape")
    parser.add_argument("--repeats", type=int, default=3, help="measured runs per system in a child (default 3)")
    parser.add_argument("--warmup-steps", type=int, default=5, help="steps of the unmeasured first run (default 5)")
    parser.add_argument("--learning-rate", type=float, default=5e-5, help="learning rate (default 5e-5)")
    parser.add_argument("--seed", type=int, default=42)
    _machine.add_setting_arguments(parser)
    args = parser.parse_args(argv)
    if args.base_shape and args.model:
        parser.error("--base-shape builds its own model; leave out --model")
    return args


def measure(systems: Sequence[TrainingSystem], args: argparse.Namespace) -> List[RunResult]:
    """A warm-up run of each system, then ``args.repeats`` rounds of one run each, alternating."""
    setting = args.cpu_setting
    results = [timed_run(s, "warmup", args.warmup_steps, args.batch_size, setting) for s in systems]
    for repeat in range(1, args.repeats + 1):
        results += [timed_run(s, str(repeat), args.steps, args.batch_size, setting) for s in systems]
    return results


def child_main(args: argparse.Namespace) -> None:
    """One CPU setting: train every system in this process, print the results as one JSON line."""
    quiet_logs()
    settings = TrainSettings(args.batch_size, args.learning_rate, logging_steps=10, seed=args.seed)
    with tempfile.TemporaryDirectory(prefix="train-speed-") as scratch:
        work = load_workload(args.model, args.data, args.seed, Path(scratch))
        systems = [FewshotSystem(work, settings), PaddleNLPSystem(work, settings), PaddleNLPFastMathSystem(work, settings)]
        results = measure(systems, args)
    _machine.print_result({"results": [asdict(r) for r in results]})


def child_argv(args: argparse.Namespace, model_dir: Path, data: Optional[str]) -> List[str]:
    """The options a child runs with: these, and the model the parent resolved or built."""
    argv = ["--model", str(model_dir), "--steps", str(args.steps), "--batch-size", str(args.batch_size),
            "--repeats", str(args.repeats), "--warmup-steps", str(args.warmup_steps),
            "--learning-rate", str(args.learning_rate), "--seed", str(args.seed)]
    return argv + (["--data", data] if data else [])


def print_report(work: Workload, args: argparse.Namespace, results: Sequence[RunResult], matmul: float) -> None:
    """The set-up, the table, and the ratio lines (the last one holds the targets)."""
    print(f"model: {work.model_source}")
    print(f"data:  {work.data_source}, {len(work.examples)} examples, {len(work.label_chars)} labels")
    print(f"template: {TEMPLATE}  max_seq_length={MAX_SEQ_LENGTH} batch={args.batch_size} lr={args.learning_rate}")
    print(f"numpy float32 2048x2048 matmul: {matmul:.1f} GFLOP/s (this process, before and after the children)")
    print()
    print(format_table(results))
    print()
    speed = {(setting, name): median_of(results, setting, name, "samples_per_second")
             for setting in _machine.SETTINGS for name in SYSTEM_NAMES}
    for setting in _machine.SETTINGS:
        print(f"median samples/s, {setting} CPU settings: "
              + ", ".join(f"{name} {speed[setting, name]:.1f}" for name in SYSTEM_NAMES))
    ours, ours_paddle = speed["fewshot", FewshotSystem.name], speed["paddle", FewshotSystem.name]
    same = ours / speed["fewshot", PaddleNLPFastMathSystem.name]
    shipped = ours / speed["paddle", PaddleNLPSystem.name]
    print(f"other ratios: ours/paddlenlp-fm both with Paddle's defaults "
          f"{ours_paddle / speed['paddle', PaddleNLPFastMathSystem.name]:.2f}x; paddlenlp with/without our defaults "
          f"{speed['fewshot', PaddleNLPSystem.name] / speed['paddle', PaddleNLPSystem.name]:.2f}x; ours samples per "
          f"CPU-second fewshot/paddle settings {median_of(results, 'fewshot', 'fewshot', 'samples_per_cpu_second') / median_of(results, 'paddle', 'fewshot', 'samples_per_cpu_second'):.2f}x")
    gflops = ""
    if args.base_shape:
        rate = median_of(results, "fewshot", FewshotSystem.name, "gflops")
        rate_paddle = median_of(results, "paddle", FewshotSystem.name, "gflops")
        print(f"ours training GFLOP/s (3x encoder forward matmuls): {rate:.1f} with our defaults, "
              f"{rate_paddle:.1f} with Paddle's; numpy matmul {matmul:.1f}")
        gflops = f" | training {100 * rate / matmul:.0f}% of numpy matmul GFLOP/s (target >= {TARGET_MATMUL_SHARE:.0f}%)"
    print(f"ratios ours: fewshot/paddle CPU defaults {ours / ours_paddle:.2f}x ({TARGET_DEFAULTS}) "
          f"| ours/paddlenlp same settings {same:.2f}x (target >= {TARGET_RATIO}x) | as shipped {shipped:.2f}x{gflops}")


def main(argv: Optional[Sequence[str]] = None) -> None:
    args = parse_args(argv)
    if args.cpu_setting:
        child_main(args)
        return
    quiet_logs()
    matmul_before = _machine.numpy_matmul_gflops()
    with tempfile.TemporaryDirectory(prefix="train-speed-") as scratch:
        work = load_workload(args.model, args.data, args.seed, Path(scratch), args.base_shape)
        runs = _machine.alternate(Path(__file__), child_argv(args, work.model_dir, args.data), args.setting_rounds)
    matmul = max(matmul_before, _machine.numpy_matmul_gflops())
    print(_machine.machine_line() + " (this process)")
    _machine.print_settings(runs)
    results = [RunResult(**r) for setting in _machine.SETTINGS for child in runs[setting] for r in child["results"]]
    print_report(work, args, results, matmul)


if __name__ == "__main__":
    main()
