"""Data-parallel training with two CPU processes: ``python -m paddle.distributed.launch --nproc_per_node 2 fewshot-train``.

Gloo all-reduces the gradients on CPU; both processes must end with the same weights, rank 0 alone
writes the model, and the model loads and predicts. The processes talk over 127.0.0.1 only.
"""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from fewshot.classifier import PromptClassifier

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = "{'text': 'text_a'}这句话的类别是{'mask'}{'mask'}"

ENTRY = '''
import hashlib, sys
import paddle
from fewshot.classifier import PromptClassifier

save = PromptClassifier.save

def save_and_report(self, directory):
    weights = b"".join(v.numpy().tobytes() for v in self.model.state_dict().values())
    print(f"rank {paddle.distributed.get_rank()} of {paddle.distributed.get_world_size()} weights "
          f"{hashlib.sha256(weights).hexdigest()}", flush=True)
    return save(self, directory)

PromptClassifier.save = save_and_report
from fewshot.cli.train import main
sys.exit(main())
'''


def _write_rows(path, examples):
    path.write_text("".join(f"{e.text_a}\t{e.label}\n" for e in examples), encoding="utf-8")


def test_two_cpu_processes_train_one_model_that_loads_and_predicts(tiny_model_dir, separable_task, tmp_path):
    train, test, words = separable_task
    _write_rows(tmp_path / "train.txt", train)
    _write_rows(tmp_path / "dev.txt", test)
    (tmp_path / "label.txt").write_text("".join(f"{k}=={w}\n" for k, ws in words.items() for w in ws), encoding="utf-8")
    (tmp_path / "entry.py").write_text(ENTRY, encoding="utf-8")
    steps, batch = 12, 8
    # "--" ends launch's own options: its parser would take --train for --trainers and --dev for --devices.
    command = [sys.executable, "-m", "paddle.distributed.launch", "--nproc_per_node", "2", "--host", "127.0.0.1",
               "--log_dir", str(tmp_path / "logs"), "--", str(tmp_path / "entry.py"),
               "--train", str(tmp_path / "train.txt"), "--dev", str(tmp_path / "dev.txt"),
               "--labels", str(tmp_path / "label.txt"), "--model", tiny_model_dir, "--template", TEMPLATE,
               "--output", str(tmp_path / "out"), "--max-steps", str(steps), "--batch-size", str(batch),
               "--max-seq-length", "32", "--learning-rate", "1e-3"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    logs = {rank: (tmp_path / "logs" / f"workerlog.{rank}").read_text(encoding="utf-8", errors="replace")
            for rank in (0, 1)}
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:] + logs[0][-2000:] + logs[1][-2000:]
    digests = {rank: re.search(rf"rank {rank} of 2 weights (\w+)", logs[rank]).group(1) for rank in (0, 1)}
    assert digests[0] == digests[1]  # gradients were all-reduced: both processes hold the same model

    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["train_steps"] == steps
    # effective batch = batch per process x 2 processes: 12 steps x 16 rows over 48 rows = 4 epochs
    assert abs(metrics["progress_or_epoch"] - steps * batch * 2 / len(train)) < 1e-3

    clf = PromptClassifier.load(tmp_path / "out")
    predicted = clf.predict([e.text_a for e in test])
    assert len(predicted) == len(test) and set(predicted) <= set(words)
    assert abs(clf.evaluate(test)["accuracy"] - metrics["eval_accuracy"]) < 1e-6
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []  # no half-written copies


END = '''
import atexit, sys
from fewshot.training.distributed import end_process

atexit.register(lambda: print("exit handler ran"))
print("buffered line")
sys.stderr.write("stderr line\\n")
status = end_process(3)
print(f"end_process returned {status}")
'''


def _end_process(tmp_path, world_size):
    (tmp_path / "end.py").write_text(END, encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PADDLE_TRAINERS_NUM": str(world_size), "PADDLE_TRAINER_ID": "0"}
    return subprocess.run([sys.executable, str(tmp_path / "end.py")], env=env, capture_output=True, text=True,
                          timeout=120)


def test_end_process_ends_a_multi_process_run_with_its_status_after_exit_handlers_and_flushing(tmp_path):
    done = _end_process(tmp_path, world_size=2)
    assert done.returncode == 3, done.stderr[-2000:]
    assert done.stdout.splitlines() == ["buffered line", "exit handler ran"]  # piped stdout is block-buffered
    assert "stderr line" in done.stderr


def test_end_process_returns_the_status_in_a_single_process_run(tmp_path):
    done = _end_process(tmp_path, world_size=1)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.splitlines() == ["buffered line", "end_process returned 3", "exit handler ran"]
