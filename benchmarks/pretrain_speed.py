"""Masked-LM pretraining throughput: fewshot's loop against a plain PaddleNLP ``ErnieForMaskedLM`` loop.

Both loops train the same model on the same batches (our corpus pipeline: sentences packed
into ``--max-seq-len`` sequences, 15% whole-character masking) with the same AdamW; one step
is forward, backward and optimizer update. They differ in the loss:

- ours: ``fewshot.pretraining.trainer.masked_lm_loss`` passes ``masked_positions``, so the LM head
  (dense + layer norm + the ``[hidden, vocab]`` projection) and the softmax run only at the
  ~15% masked positions, and so does the last encoder layer apart from its keys and values
  (``fewshot.prompt.partial_encoder.last_layer_only_at``);
- plain: ``model(input_ids, labels=labels)`` with ``labels = -100`` at unmasked positions,
  PaddleNLP's documented usage: the LM head and softmax run at every position.

Ours runs inside ``fewshot.training.cpu_math.fast_cpu_math`` (contiguous view kernels, denormals flushed
to zero), as ``fewshot-pretrain`` does. The plain loop runs twice, on two more copies of the
model: as PaddleNLP ships (``plain``) and inside ``fast_cpu_math`` (``plain-fm``). The target is
checked against ``plain-fm``, where only the loss computation differs.

Each model is warmed up, then the loops alternate (ours, plain, plain-fm, ours, ...) in one
process so that a busy machine slows all alike; a loop's time is the median over its rounds.
Tokens/s counts the non-padding tokens of a batch.

CPU settings: Paddle fixes its thread count when it loads, so all of this runs in child processes,
one per CPU setting and round, alternating (``benchmarks/_machine.py``): ``fewshot`` (our defaults,
``fewshot.cpu_env``) and ``paddle`` (Paddle's own: one thread). A loop's figure is the median over
the children. Ratios: ours with the defaults over the same code with Paddle's; over ``plain-fm`` in
the same (fewshot) settings; over ``plain`` as shipped (Paddle's defaults, no ``fast_cpu_math``).

Models: ``../shared/models/zh-ernie-tiny`` (4 layers, hidden 256, vocab 4,823) when present,
and the tests' tiny random ERNIE (2 layers, hidden 32) with a character vocabulary of the
corpus; ``--nano-shape`` adds a random model shaped like ERNIE 3.0 nano (4 layers, hidden 312,
vocab 40,000). Corpus: FewCLUE TNEWS ``unlabeled.json`` when present, else generated text.

    python benchmarks/pretrain_speed.py [--steps 6] [--rounds 2] [--setting-rounds 2] [--batch-size 32] [--max-seq-len 64]

The last line is the ratios, e.g. ``ratios ours tokens/s: fewshot/paddle CPU defaults zh-ernie-tiny 1.20x,
tiny-h32 0.95x | ours/plain-fm same settings zh-ernie-tiny 1.59x, tiny-h32 3.70x (target >= 1.5x) |
ours/plain as shipped zh-ernie-tiny 2.87x, tiny-h32 4.97x``.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import statistics
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Dict, List, Sequence, Tuple

import _machine  # noqa: I001  (first: applies fewshot's CPU defaults before Paddle loads)

from _paths import TINY_ERNIE as SHARED_MODEL, TNEWS

SHARED_CORPUS = TNEWS / "unlabeled.json"
TARGET_RATIO = 1.5
GENERATED_CHARS = "的一是在了有和人这中大上个我他来们到地出就对会可年同工也能下过子说种面而方后多定行学所得进着等部度家里如高自起小球赛股价雨雪风"


@dataclass
class Timing:
    model: str
    loop: str
    seconds_per_step: float
    tokens_per_step: float
    loss: float
    setting: str = ""

    @property
    def tokens_per_second(self) -> float:
        return self.tokens_per_step / self.seconds_per_step


def corpus_texts(limit: int) -> List[str]:
    """TNEWS unlabelled sentences, or generated Chinese lines when ../shared is absent."""
    if SHARED_CORPUS.is_file():
        with SHARED_CORPUS.open(encoding="utf-8") as handle:
            return [json.loads(line)["sentence"] for _, line in zip(range(limit), handle)]
    rng = random.Random(0)
    return ["".join(rng.choice(GENERATED_CHARS) for _ in range(rng.randint(10, 30))) + "。" for _ in range(limit)]


def make_batches(texts: Sequence[str], tokenizer, count: int, batch_size: int, max_seq_len: int) -> List[Dict]:
    """``count`` collated batches from fewshot's own pipeline (pack, mask, flatten positions)."""
    import numpy as np

    from fewshot.pretraining.corpus import tokenize_sentence
    from fewshot.pretraining.packing import pack_sequences
    from fewshot.pretraining.data import MaskedLMCollator, PackedDataset, replacement_ids

    docs = [[tokenize_sentence(text, tokenizer)] for text in texts]
    sequences = pack_sequences(docs, max_seq_len, tokenizer.cls_token_id, tokenizer.sep_token_id)
    if len(sequences) < count * batch_size:
        raise SystemExit(f"corpus gives {len(sequences)} sequences, fewer than {count} batches of {batch_size}")
    dataset = PackedDataset(sequences, seed=0)
    collator = MaskedLMCollator(
        tokenizer.pad_token_id, tokenizer.mask_token_id, replacement_ids(tokenizer, len(tokenizer)), 0.15
    )
    batches = []
    for b in range(count):
        batch = collator([dataset[i] for i in range(b * batch_size, (b + 1) * batch_size)])
        full = np.full(batch["input_ids"].shape, -100, dtype="int64")
        full.reshape(-1)[batch["masked_positions"]] = batch["labels"]
        batch["full_labels"] = full
        batch["tokens"] = int((batch["input_ids"] != tokenizer.pad_token_id).sum())
        batches.append(batch)
    return batches


def ours_step(model, batch) -> "object":
    import paddle

    from fewshot.pretraining.trainer import masked_lm_loss

    loss, _ = masked_lm_loss(
        model,
        paddle.to_tensor(batch["input_ids"]),
        paddle.to_tensor(batch["masked_positions"]),
        paddle.to_tensor(batch["labels"]),
    )
    return loss


def plain_step(model, batch) -> "object":
    import paddle

    return model(input_ids=paddle.to_tensor(batch["input_ids"]), labels=paddle.to_tensor(batch["full_labels"]))[0]


def run_loop(model, optimizer, step: Callable, batches: Sequence[Dict], fast_math: bool) -> Tuple[float, float]:
    """Train on ``batches`` (inside ``fast_cpu_math`` when ``fast_math``); return (seconds per step, last loss)."""
    from contextlib import nullcontext

    from fewshot.training.cpu_math import fast_cpu_math

    with fast_cpu_math() if fast_math else nullcontext():
        start = time.perf_counter()
        loss = None
        for batch in batches:
            loss = step(model, batch)
            loss.backward()
            optimizer.step()
            optimizer.clear_grad()
        return (time.perf_counter() - start) / len(batches), float(loss)


LOOPS: Dict[str, Tuple[Callable, bool]] = {"ours": (ours_step, True), "plain": (plain_step, False),
                                           "plain-fm": (plain_step, True)}
"""Loop name → (step function, inside ``fast_cpu_math``)."""


def time_model(name: str, load: Callable, batches: Sequence[Dict], warmup: int, rounds: int) -> List[Timing]:
    """Alternate the loops, each on its own copy of the model; median seconds per step of each."""
    import paddle

    models = {loop: load() for loop in LOOPS}
    optimizers = {loop: paddle.optimizer.AdamW(1e-4, parameters=m.parameters()) for loop, m in models.items()}
    for loop, (step, fast_math) in LOOPS.items():
        models[loop].train()
        run_loop(models[loop], optimizers[loop], step, batches[:warmup], fast_math)
    times: Dict[str, List[float]] = {loop: [] for loop in LOOPS}
    losses: Dict[str, float] = {}
    for _ in range(rounds):
        for loop, (step, fast_math) in LOOPS.items():
            seconds, losses[loop] = run_loop(models[loop], optimizers[loop], step, batches[warmup:], fast_math)
            times[loop].append(seconds)
    tokens = statistics.fmean(b["tokens"] for b in batches[warmup:])
    return [Timing(name, loop, statistics.median(times[loop]), tokens, losses[loop]) for loop in LOOPS]


def model_loaders(texts: Sequence[str], workdir: Path, nano_shape: bool) -> Dict[str, Tuple[Callable, object]]:
    """``{name: (load model, tokenizer)}`` for each benchmarked model."""
    from paddlenlp.transformers import AutoTokenizer, ErnieConfig, ErnieForMaskedLM

    from fewshot.testing import build_tiny_model

    loaders: Dict[str, Tuple[Callable, object]] = {}
    if SHARED_MODEL.is_dir():
        loaders["zh-ernie-tiny"] = (
            lambda: ErnieForMaskedLM.from_pretrained(str(SHARED_MODEL)),
            AutoTokenizer.from_pretrained(str(SHARED_MODEL)),
        )
    tiny_dir = build_tiny_model(workdir / "tiny-h32", texts, hidden_size=32, num_layers=2, seed=0)
    loaders["tiny-h32"] = (lambda: ErnieForMaskedLM.from_pretrained(tiny_dir), AutoTokenizer.from_pretrained(tiny_dir))
    if nano_shape:
        config = ErnieConfig(vocab_size=40000, hidden_size=312, num_hidden_layers=4, num_attention_heads=12,
                             intermediate_size=1248, max_position_embeddings=2048, type_vocab_size=4, use_task_id=False)
        loaders["nano-shape"] = (lambda: ErnieForMaskedLM(config), loaders["tiny-h32"][1])
    return loaders


def print_table(timings: Sequence[Timing]) -> None:
    print(f"{'setting':<8} {'model':<14} {'loop':<8} {'ms/step':>9} {'tokens/step':>12} {'tokens/s':>10} {'last loss':>10}")
    for t in timings:
        print(f"{t.setting:<8} {t.model:<14} {t.loop:<8} {1000 * t.seconds_per_step:>9.1f} {t.tokens_per_step:>12.0f} "
              f"{t.tokens_per_second:>10.0f} {t.loss:>10.3f}")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=6, help="timed steps per loop and round")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2, help="alternations of the loops within a child")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-seq-len", type=int, default=64)
    parser.add_argument("--nano-shape", action="store_true", help="also time a random ERNIE 3.0 nano-shaped model")
    _machine.add_setting_arguments(parser)
    return parser.parse_args()


def child_main(args: argparse.Namespace) -> None:
    """One CPU setting: time every model's loops in this process, print them as one JSON line."""
    logging.disable(logging.WARNING)
    import paddle

    paddle.set_device("cpu")
    texts = corpus_texts(limit=4000)
    timings: List[Timing] = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, (load, tokenizer) in model_loaders(texts, Path(tmp), args.nano_shape).items():
            batches = make_batches(texts, tokenizer, args.warmup + args.steps, args.batch_size, args.max_seq_len)
            timings.extend(time_model(name, load, batches, args.warmup, args.rounds))
    _machine.print_result({"timings": [asdict(t) for t in timings]})


def median_timings(runs: Dict[str, List[Dict]]) -> List[Timing]:
    """One Timing per setting, model and loop: the median seconds per step over that setting's children."""
    medians = []
    for setting, children in runs.items():
        rows: Dict[Tuple[str, str], List[Dict]] = {}
        for child in children:
            for t in child["timings"]:
                rows.setdefault((t["model"], t["loop"]), []).append(t)
        for (model, loop), ts in rows.items():
            medians.append(Timing(model, loop, statistics.median(t["seconds_per_step"] for t in ts),
                                  ts[0]["tokens_per_step"], ts[-1]["loss"], setting))
    return medians


def main() -> None:
    args = parse_args()
    if args.cpu_setting:
        child_main(args)
        return
    argv = ["--steps", str(args.steps), "--warmup", str(args.warmup), "--rounds", str(args.rounds),
            "--batch-size", str(args.batch_size), "--max-seq-len", str(args.max_seq_len)]
    runs = _machine.alternate(Path(__file__), argv + (["--nano-shape"] if args.nano_shape else []), args.setting_rounds)
    print(_machine.machine_line() + " (this process)")
    _machine.print_settings(runs)
    print(f"batch {args.batch_size} x up to {args.max_seq_len} tokens, {args.steps} steps x {args.rounds} rounds "
          f"in each of {args.setting_rounds} children per setting, CPU")
    timings = median_timings(runs)
    print_table(timings)
    by = {(t.setting, t.model, t.loop): t.tokens_per_second for t in timings}
    models = list(dict.fromkeys(t.model for t in timings))

    def ratios(num: Tuple[str, str], den: Tuple[str, str]) -> str:
        return ", ".join(f"{m} {by[num[0], m, num[1]] / by[den[0], m, den[1]]:.2f}x" for m in models)

    print(f"ratios ours tokens/s: fewshot/paddle CPU defaults {ratios(('fewshot', 'ours'), ('paddle', 'ours'))} "
          f"| ours/plain-fm same settings {ratios(('fewshot', 'ours'), ('fewshot', 'plain-fm'))} (target >= {TARGET_RATIO}x) "
          f"| ours/plain as shipped {ratios(('fewshot', 'ours'), ('paddle', 'plain'))}")


if __name__ == "__main__":
    main()
