"""Masked-LM pretraining on a tiny model and a generated corpus (fewshot.pretraining.pretrain)."""

import json
import os
import random
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import paddle
import pytest
from paddlenlp.trainer import TrainerCallback

from fewshot.classifier import PromptClassifier
from fewshot.pretraining.config import PretrainConfig, PretrainError
from fewshot.pretraining.data import MaskedLMCollator, PackedDataset, replacement_ids
from fewshot.pretraining.pretrain import run_pretraining
from fewshot.pretraining.trainer import masked_lm_loss
from fewshot.cli.pretrain import BINARY_HEAD_NOTE, main
from fewshot.pretraining.corpus import read_corpus
from fewshot.pretraining.split import SplitError, parse_split, split_documents
from fewshot.testing import build_tiny_model

WORDS = ["球赛", "跑步", "股价", "上涨", "下雨", "刮风", "天气", "很好"]
FILLER = "的一是在了有和人这中大上我他来们"
TEMPLATE = "{'text': 'text_a'}这句话的类别是{'mask'}{'mask'}"
LABEL_WORDS = {"sports": "体育", "finance": "财经"}


def make_corpus_lines(count: int, seed: int = 0):
    """Lines of 1–3 sentences, each a listed word plus filler characters, ending in 。"""
    rng = random.Random(seed)
    lines = []
    for _ in range(count):
        parts = [rng.choice(WORDS) + "".join(rng.choice(FILLER) for _ in range(rng.randint(2, 5)))
                 for _ in range(rng.randint(1, 3))]
        lines.append("。".join(parts) + "。")
    return lines


@pytest.fixture(scope="module")
def corpus_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("pretrain-corpus")
    (root / "news.txt").write_text("\n".join(make_corpus_lines(300)) + "\n", encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    texts = make_corpus_lines(300) + [TEMPLATE, "体育财经这句话的类别是"]
    return build_tiny_model(tmp_path_factory.mktemp("pretrain-tiny"), texts, seed=0)


def config(corpus_dir, output, model, **overrides):
    values = dict(
        corpus=[str(corpus_dir)], output_dir=str(output), model=model, max_seq_length=32, max_steps=20,
        save_steps=10, batch_size=16, eval_batch_size=64, learning_rate=5e-3, warmup_ratio=0.0,
        logging_steps=1, disable_tqdm=True,
    )
    values.update(overrides)
    return PretrainConfig(**values)


class StopAt(TrainerCallback):
    """Stop training after ``step``, as an interrupted run would."""

    def __init__(self, step):
        self.step = step

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            control.should_training_stop = True


class TrainLosses(TrainerCallback):
    def __init__(self):
        self.losses = {}

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs and "loss" in logs:
            self.losses[state.global_step] = logs["loss"]


def test_loss_is_mean_cross_entropy_over_masked_positions_only(model_dir):
    from paddlenlp.transformers import AutoTokenizer, ErnieForMaskedLM
    from fewshot.pretraining.corpus import tokenize_sentence
    from fewshot.pretraining.packing import pack_sequences

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = ErnieForMaskedLM.from_pretrained(model_dir)
    model.eval()
    docs = [[tokenize_sentence(line, tokenizer)] for line in make_corpus_lines(40, seed=3)]
    sequences = pack_sequences(docs, 32, tokenizer.cls_token_id, tokenizer.sep_token_id)
    collator = MaskedLMCollator(tokenizer.pad_token_id, tokenizer.mask_token_id, replacement_ids(tokenizer, len(tokenizer)))
    dataset = PackedDataset(sequences, seed=0)
    batch = collator([dataset[(i, 0)] for i in range(4)])
    assert not np.array_equal(collator([dataset[(0, 1)]])["input_ids"], collator([dataset[(0, 0)]])["input_ids"])

    with paddle.no_grad():
        tensors = {k: paddle.to_tensor(v) for k, v in batch.items()}
        loss, logits = masked_lm_loss(model, tensors["input_ids"], tensors["masked_positions"], tensors["labels"])
        full = model(input_ids=tensors["input_ids"]).numpy()
    rows = full.reshape(-1, full.shape[-1])[batch["masked_positions"]]
    log_probs = rows - rows.max(-1, keepdims=True)
    log_probs -= np.log(np.exp(log_probs).sum(-1, keepdims=True))
    expected = -log_probs[np.arange(len(rows)), batch["labels"]].mean()
    assert logits.shape == [len(batch["labels"]), len(tokenizer)]
    assert float(loss) == pytest.approx(float(expected), rel=1e-5)


def test_a_few_steps_lower_the_heldout_mlm_loss_and_save_step_models(corpus_dir, model_dir, tmp_path):
    result = run_pretraining(config(corpus_dir, tmp_path / "out", model_dir, max_steps=30, eval_steps=15, eval_ratio=0.1))
    steps = [e["step"] for e in result.eval_history]
    losses = [e["eval_loss"] for e in result.eval_history]
    assert steps == [0, 15, 30]
    assert losses[-1] < losses[0] - 0.1, losses
    assert result.eval_history[-1]["eval_perplexity"] == pytest.approx(np.exp(losses[-1]))
    assert [p.rsplit("/", 1)[-1] for p in result.saved_models] == ["model_10", "model_20", "model_30"]
    info = json.loads((tmp_path / "out" / "model_30" / "pretrain_info.json").read_text(encoding="utf-8"))
    assert info["step"] == 30 and info["eval_loss"] == pytest.approx(losses[-1]) and info["base_model"] == model_dir
    stats = json.loads((tmp_path / "out" / "corpus_stats.json").read_text(encoding="utf-8"))
    assert stats["documents"] == 300 and stats["unk_tokens"] == 0
    assert sorted(p.name for p in (tmp_path / "out").glob("checkpoint-*")) == ["checkpoint-30"]


class ReleaseGrads(TrainerCallback):
    def on_train_begin(self, args, state, control, **kwargs):
        self.value = args.release_grads


def test_gradients_are_freed_after_each_step_with_the_same_losses_as_zero_filling(corpus_dir, model_dir, tmp_path):
    runs = {}
    for release in (True, False):
        losses, seen = TrainLosses(), ReleaseGrads()
        extra = {} if release else {"extra_args": {"release_grads": False}}
        result = run_pretraining(config(corpus_dir, tmp_path / str(release), model_dir, max_steps=8, eval_steps=8,
                                        eval_ratio=0.1, **extra), callbacks=[losses, seen])
        runs[release] = (seen.value, losses.losses, [e["eval_loss"] for e in result.eval_history])
    assert runs[True][0] is True and runs[False][0] is False  # the default frees them
    assert len(runs[True][1]) == 8 and runs[True][1:] == runs[False][1:]  # bit-identical training


def test_saved_step_checkpoints_load_with_prompt_classifier(corpus_dir, model_dir, tmp_path):
    run_pretraining(config(corpus_dir, tmp_path / "out", model_dir, max_steps=10))
    base = PromptClassifier(model_dir, labels=LABEL_WORDS, template=TEMPLATE, max_seq_length=32, seed=0)
    tuned = PromptClassifier(str(tmp_path / "out" / "model_10"), labels=LABEL_WORDS, template=TEMPLATE,
                             max_seq_length=32, seed=0)
    texts = ["球赛跑步的", "股价上涨了"]
    assert tuned.predict(texts)[0] in LABEL_WORDS
    assert not np.allclose(tuned.predict_proba(texts), base.predict_proba(texts))


def test_resume_continues_from_the_saved_step_exactly_like_an_uninterrupted_run(corpus_dir, model_dir, tmp_path):
    full_losses = TrainLosses()
    probe = run_pretraining(config(corpus_dir, tmp_path / "probe", model_dir, max_steps=1))
    epoch = -(-probe.train_sequences // 16)  # stop at an epoch boundary, the case PaddleNLP alone gets wrong
    settings = dict(max_steps=epoch + 6, save_steps=epoch)
    run_pretraining(config(corpus_dir, tmp_path / "b", model_dir, **settings), callbacks=[full_losses])
    interrupted = run_pretraining(config(corpus_dir, tmp_path / "a", model_dir, **settings), callbacks=[StopAt(epoch)])
    assert interrupted.global_step == epoch and (tmp_path / "a" / f"checkpoint-{epoch}").is_dir()

    resumed_losses = TrainLosses()
    resumed = run_pretraining(config(corpus_dir, tmp_path / "a", model_dir, resume=True, **settings),
                              callbacks=[resumed_losses])
    assert resumed.resumed_from.endswith(f"checkpoint-{epoch}") and resumed.global_step == epoch + 6
    assert min(resumed_losses.losses) == epoch + 1
    assert resumed_losses.losses == {step: loss for step, loss in full_losses.losses.items() if step > epoch}
    from safetensors.numpy import load_file

    a = load_file(str(tmp_path / "a" / f"model_{epoch + 6}" / "model.safetensors"))
    b = load_file(str(tmp_path / "b" / f"model_{epoch + 6}" / "model.safetensors"))
    for name in b:
        np.testing.assert_array_equal(a[name], b[name])


def test_output_with_checkpoints_needs_resume_or_overwrite(corpus_dir, model_dir, tmp_path):
    run_pretraining(config(corpus_dir, tmp_path / "out", model_dir, max_steps=10))
    with pytest.raises(PretrainError, match=r"out: has checkpoint-10 from an earlier run; pass --resume"):
        run_pretraining(config(corpus_dir, tmp_path / "out", model_dir, max_steps=10))
    again = run_pretraining(config(corpus_dir, tmp_path / "out", model_dir, max_steps=10, overwrite=True))
    assert again.global_step == 10 and again.resumed_from is None


def test_corpus_smaller_than_one_batch_is_a_clear_error(model_dir, tmp_path):
    (tmp_path / "small.txt").write_text("球赛跑步。\n股价上涨。\n", encoding="utf-8")
    with pytest.raises(PretrainError, match=r"packs into 1 training sequence\(s\) of at most 32 tokens, fewer than one batch of 16"):
        run_pretraining(config(tmp_path / "small.txt", tmp_path / "out", model_dir))


def test_bad_options_are_rejected(corpus_dir, model_dir, tmp_path):
    with pytest.raises(PretrainError, match="exactly one of --model"):
        run_pretraining(config(corpus_dir, tmp_path / "o", None))
    with pytest.raises(PretrainError, match="--max-seq-length 1000 exceeds the model's 128 positions"):
        run_pretraining(config(corpus_dir, tmp_path / "o", model_dir, max_seq_length=1000))


def test_from_scratch_builds_a_vocabulary_and_model_0(corpus_dir, tmp_path):
    result = run_pretraining(config(
        corpus_dir, tmp_path / "out", None, from_scratch=True, hidden_size=32, num_layers=2, num_heads=2,
        intermediate_size=64, vocab_min_freq=1, max_steps=10,
    ))
    vocab = (tmp_path / "out" / "model_0" / "vocab.txt").read_text(encoding="utf-8").split("\n")
    assert vocab[:5] == ["[PAD]", "[CLS]", "[SEP]", "[MASK]", "[UNK]"]
    assert set("球赛股价的。") <= set(vocab)
    assert [p.rsplit("/", 1)[-1] for p in result.saved_models] == ["model_0", "model_10"]
    clf = PromptClassifier(str(tmp_path / "out" / "model_10"), labels={"sports": "球赛", "finance": "股价"},
                           template="{'text': 'text_a'}{'mask'}{'mask'}", max_seq_length=32)
    assert clf.predict(["跑步的人"])[0] in ("sports", "finance")


def test_cli_trains_with_whole_word_masking_and_reports_errors(corpus_dir, model_dir, tmp_path, capsys):
    words = tmp_path / "words.txt"
    words.write_text("\n".join(WORDS) + "\n", encoding="utf-8")
    out = tmp_path / "out"
    argv = [str(corpus_dir), "--model", model_dir, "--output", str(out), "--wwm-words", str(words),
            "--max-seq-len", "32", "--batch-size", "16", "--max-steps", "4", "--save-steps", "4", "--disable-tqdm"]
    assert main(argv) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["global_step"] == 4
    info = json.loads((out / "model_4" / "pretrain_info.json").read_text(encoding="utf-8"))
    assert info["whole_word_masking"] is True

    assert main(argv) == 2
    assert "pass --resume to continue it or --overwrite" in capsys.readouterr().err
    assert main(["--stats-only", str(corpus_dir), "--model", model_dir, "--output", str(tmp_path / "stats")]) == 0
    assert re.search(r"vocabulary coverage +100\.000%", capsys.readouterr().out)
    assert json.loads((tmp_path / "stats" / "corpus_stats.json").read_text(encoding="utf-8"))["documents"] == 300


def paddlenlp_command(input_dir, output, model):
    """The issue's PaddleNLP ``run_pretrain.py`` flags, with small numbers."""
    return ["--model_name_or_path", model, "--tokenizer_name_or_path", model, "--input_dir", str(input_dir),
            "--output_dir", str(output), "--split", "198,1,1", "--binary_head", "True", "--max_seq_len", "32",
            "--micro_batch_size", "16", "--max_steps", "6", "--checkpoint_steps", "2", "--save_steps", "3",
            "--logging_freq", "2", "--eval_freq", "3"]


@pytest.fixture(scope="module")
def paddlenlp_documents(tmp_path_factory):
    """PaddleNLP's data-preparation input: JSON lines with a "text" key (trans_to_json.py's output)."""
    root = tmp_path_factory.mktemp("paddlenlp-docs")
    lines = make_corpus_lines(300, seed=1)
    (root / "domain.jsonl").write_text("".join(json.dumps({"text": t}, ensure_ascii=False) + "\n" for t in lines),
                                       encoding="utf-8")
    return root


def test_paddlenlp_pretraining_command_runs_unchanged(paddlenlp_documents, model_dir, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(paddlenlp_command(paddlenlp_documents, out, model_dir) + ["--disable-tqdm"]) == 0
    captured = capsys.readouterr()
    assert BINARY_HEAD_NOTE in captured.err
    printed = json.loads(captured.out)
    assert printed["global_step"] == 6
    # --save_steps 3: model_<step> every 3 steps and at the end; --checkpoint_steps 2: resumable checkpoints
    # every 2 steps, the last one kept (PaddleNLP's model_last)
    assert [Path(p).name for p in printed["saved_models"]] == ["model_3", "model_6"]
    assert sorted(p.name for p in out.glob("checkpoint-*")) == ["checkpoint-6"]
    # --split 198,1,1 of 300 documents: 2 held out for evaluation (every --eval_freq 3 steps), 2 for the test
    assert [e["step"] for e in printed["eval_history"]] == [0, 3, 6]
    assert printed["test_metrics"]["test_perplexity"] == pytest.approx(np.exp(printed["test_metrics"]["test_loss"]))
    info = json.loads((out / "model_3" / "pretrain_info.json").read_text(encoding="utf-8"))
    assert info["step"] == 3 and info["eval_step"] == 3 and info["max_seq_length"] == 32
    assert printed["eval_history"][1]["eval_perplexity"] == pytest.approx(info["eval_perplexity"])


def test_two_cpu_processes_run_the_paddlenlp_command_under_distributed_launch(paddlenlp_documents, model_dir, tmp_path):
    root = Path(__file__).resolve().parents[1]
    out = tmp_path / "out"
    (tmp_path / "entry.py").write_text("import sys\nfrom fewshot.cli.pretrain import main\nsys.exit(main())\n")
    command = [sys.executable, "-m", "paddle.distributed.launch", "--nproc_per_node", "2", "--host", "127.0.0.1",
               "--log_dir", str(tmp_path / "logs"), "--", str(tmp_path / "entry.py"),
               *paddlenlp_command(paddlenlp_documents, out, model_dir), "--micro_batch_size", "8", "--disable-tqdm"]
    done = subprocess.run(command, cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(root)},
                          capture_output=True, text=True, timeout=300)
    logs = "".join((tmp_path / "logs" / f"workerlog.{rank}").read_text(encoding="utf-8", errors="replace")[-2000:]
                   for rank in (0, 1) if (tmp_path / "logs" / f"workerlog.{rank}").is_file())
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:] + logs
    summary = json.loads((out / "pretrain_summary.json").read_text(encoding="utf-8"))
    assert summary["global_step"] == 6 and summary["test_metrics"]["test_loss"] > 0
    assert sorted(p.name for p in out.glob("model_*")) == ["model_3", "model_6"]
    clf = PromptClassifier(str(out / "model_6"), labels=LABEL_WORDS, template=TEMPLATE, max_seq_length=32, seed=0)
    assert clf.predict(["球赛跑步的人"])[0] in LABEL_WORDS


def test_split_shares_are_contiguous_document_ranges_with_at_least_one_document_per_positive_share():
    assert parse_split("949,50,1") == pytest.approx((0.949, 0.05, 0.001))
    assert parse_split("9,1") == pytest.approx((0.9, 0.1, 0.0))
    assert split_documents(list(range(300)), parse_split("198,1,1")) == (list(range(296)), [296, 297], [298, 299])
    assert split_documents(list(range(10)), parse_split("1,0,0")) == (list(range(10)), [], [])
    for bad in ("0,1,1", "a,b,c", "1,-1,0", "1,2,3,4", "nan,1,1"):
        with pytest.raises(SplitError, match="--split"):
            parse_split(bad)
    with pytest.raises(SplitError, match="2 document\\(s\\) are too few"):
        split_documents(["a", "b"], parse_split("1,1,1"))


def test_paragraph_documents_and_paddlenlp_json_lines_are_read(tmp_path):
    (tmp_path / "raw.txt").write_text("第一段。\n还是第一段。\n\n第二段。\n\n\n第三段。\n", encoding="utf-8")
    (tmp_path / "docs.jsonl").write_text('{"text": "甲。乙。"}\n{"text": "丙。"}\n', encoding="utf-8")
    corpus = read_corpus([tmp_path / "raw.txt"], doc_per="paragraph")
    assert corpus.documents == [["第一段。", "还是第一段。"], ["第二段。"], ["第三段。"]]
    assert read_corpus([tmp_path / "docs.jsonl"]).documents == [["甲。", "乙。"], ["丙。"]]


def test_eval_steps_need_an_evaluation_share_and_binary_head_needs_a_boolean(corpus_dir, model_dir, tmp_path, capsys):
    with pytest.raises(PretrainError, match="--eval-steps 5 needs an evaluation share in --split, got 9,0,1"):
        run_pretraining(config(corpus_dir, tmp_path / "o", model_dir, eval_steps=5, split="9,0,1"))
    with pytest.raises(SystemExit):
        main([str(corpus_dir), "--model", model_dir, "--output", str(tmp_path / "o"), "--binary_head", "maybe"])
    assert "expected True or False, got 'maybe'" in capsys.readouterr().err
