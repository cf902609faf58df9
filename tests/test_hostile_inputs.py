"""Nothing runs, nothing escapes, nothing is lost: pickles refused, bundles confined and checked at load,
crash-proof replacement, outputs checked before work, one-line errors instead of tracebacks.

docs/errors.md lists the same cases with the message each one gives.
"""

import errno
import json
import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import fewshot.runtime.batch as batch_module
from fewshot.atomic import atomic_directory, recover
from fewshot.classifier import PromptClassifier
from fewshot.cli.export import main as export_main
from fewshot.cli.predict import main as predict_main
from fewshot.cli.train import main as train_main
from fewshot.data import read_label_words
from fewshot.errors import BundleError, DataError, LabelFileError
from fewshot.runtime import OnnxPredictor

TEMPLATE = "{'text': 'text_a'}这句话的类别是{'mask'}{'mask'}"
SOFT = "{'soft'}{'text': 'text_a'}{'mask'}{'mask'}"


class _RunsCode:
    """A pickle that, when loaded, creates the file it names: what a hostile .pdparams does."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def _write_evil_pickle(path, marker):
    path.write_bytes(pickle.dumps({"weight": _RunsCode(marker)}))


@pytest.fixture(scope="module")
def saved(tiny_model_dir, separable_task, tmp_path_factory):
    """A saved classifier with trained prompt parameters (a soft token), and its bundle."""
    train, _, words = separable_task
    clf = PromptClassifier(tiny_model_dir, labels=words, template=SOFT, max_seq_length=32, seed=0, verbalizer="soft")
    clf.fit(train, max_steps=3, learning_rate=1e-2, disable_tqdm=True, logging_steps=1000)
    root = tmp_path_factory.mktemp("hostile")
    clf.save(root / "clf")
    return clf, root / "clf", clf.export(root / "bundle")


def _copy(src, tmp_path, name="copy"):
    target = tmp_path / name
    shutil.copytree(src, target)
    return target


# --- pickles ------------------------------------------------------------------------------------------


def test_saved_classifier_holds_no_pickle(saved):
    _, directory, _ = saved
    names = {p.name for p in directory.rglob("*") if p.is_file()}
    assert "prompt_state.safetensors" in names and "model.safetensors" in names
    assert not [n for n in names if n.endswith((".pdparams", ".pkl", ".bin"))]


def test_a_pickled_prompt_state_is_refused_and_never_run(saved, tmp_path):
    target = _copy(saved[1], tmp_path)
    (target / "prompt_state.safetensors").unlink()
    marker = tmp_path / "pwned"
    _write_evil_pickle(target / "prompt_state.pdparams", marker)
    with pytest.raises(BundleError, match="prompt_state.pdparams: pickled weights can run code .* trust_pickle=True"):
        PromptClassifier.load(target)
    assert not marker.exists()


def test_a_pickle_beside_the_safetensors_weights_is_ignored(saved, tmp_path):
    target = _copy(saved[1], tmp_path)
    marker = tmp_path / "pwned"
    _write_evil_pickle(target / "plm" / "model_state.pdparams", marker)
    _write_evil_pickle(target / "prompt_state.pdparams", marker)
    clf = PromptClassifier.load(target)
    assert not marker.exists()
    assert clf.predict(["球赛"]) == saved[0].predict(["球赛"])


def test_pickled_plm_weights_are_refused_by_load_and_export(saved, tmp_path, capsys):
    target = _copy(saved[1], tmp_path)
    (target / "plm" / "model.safetensors").unlink()
    marker = tmp_path / "pwned"
    _write_evil_pickle(target / "plm" / "model_state.pdparams", marker)
    with pytest.raises(BundleError, match="model_state.pdparams: pickled weights can run code"):
        PromptClassifier.load(target)
    assert export_main(["--checkpoint", str(target), "--output", str(tmp_path / "bundle")]) == 2
    err = capsys.readouterr().err
    assert "pickled weights can run code" in err and "Traceback" not in err
    assert not marker.exists() and not (tmp_path / "bundle").exists()


def test_trusted_pickles_of_an_older_save_still_load(saved, tmp_path):
    import paddle
    from safetensors.numpy import load_file

    clf, directory, _ = saved
    target = _copy(directory, tmp_path)
    state = load_file(str(target / "prompt_state.safetensors"))
    paddle.save({k: paddle.to_tensor(v) for k, v in state.items()}, str(target / "prompt_state.pdparams"))
    (target / "prompt_state.safetensors").unlink()
    clf.model.plm.save_pretrained(str(target / "plm"), safe_serialization=False)
    (target / "plm" / "model.safetensors").unlink()
    with pytest.raises(BundleError, match="trust_pickle"):
        PromptClassifier.load(target)
    again = PromptClassifier.load(target, trust_pickle=True)
    assert again.predict_proba(["球赛"])[0].tolist() == pytest.approx(clf.predict_proba(["球赛"])[0].tolist(), abs=1e-6)


def test_a_weight_file_of_the_wrong_kind_is_a_clear_error(saved, tmp_path):
    target = _copy(saved[1], tmp_path)
    (target / "prompt_state.safetensors").write_bytes(b"not safetensors at all")
    with pytest.raises(BundleError, match="prompt_state.safetensors: not a readable safetensors file"):
        PromptClassifier.load(target)
    target = _copy(saved[1], tmp_path, "copy2")
    (target / "plm" / "model.safetensors").write_bytes(b"\x00" * 64)
    with pytest.raises(BundleError, match="plm/model.safetensors: not a readable safetensors file"):
        PromptClassifier.load(target)


# --- bundles confined and checked at load -------------------------------------------------------------


def _edit_manifest(bundle, edit):
    path = bundle / "fewshot.json"
    manifest = json.loads(path.read_text(encoding="utf-8"))
    edit(manifest)
    path.write_text(json.dumps(manifest), encoding="utf-8")


@pytest.mark.parametrize(
    "field,value",
    [("vocab", "../../vocab.txt"), ("vocab", "/etc/passwd"), ("onnx_fp32", "../model.onnx"),
     ("onnx_fp32", "/tmp/model.onnx"), ("onnx_int8", "sub/model.int8.onnx"), ("paddle_model", "..")],
)
def test_manifest_file_names_cannot_leave_the_bundle(saved, tmp_path, field, value):
    bundle = _copy(saved[2], tmp_path)

    def edit(manifest):
        if field == "vocab":
            manifest["encoding"]["tokenizer"]["vocab_file"] = value
        else:
            manifest["files"][field] = value

    _edit_manifest(bundle, edit)
    name = "encoding.tokenizer.vocab_file" if field == "vocab" else f"files.{field}"
    with pytest.raises(BundleError, match=f"fewshot.json: {name}"):
        OnnxPredictor(bundle)


def test_a_symbolic_link_out_of_the_bundle_is_refused(saved, tmp_path):
    bundle = _copy(saved[2], tmp_path)
    outside = tmp_path / "elsewhere.onnx"
    shutil.move(bundle / "model.onnx", outside)
    (bundle / "model.onnx").symlink_to(outside)
    with pytest.raises(BundleError, match="files.onnx_fp32 names 'model.onnx', a symbolic link"):
        OnnxPredictor(bundle)


@pytest.mark.parametrize(
    "damage,message",
    [
        (lambda m: m.update(labels=m["labels"][:2], task_config={"task": "multi_class"}),
         "model gives 3 probabilities, but fewshot.json lists 2 labels"),
        (lambda m: m["encoding"].update(parts=[p for p in m["encoding"]["parts"] if p["kind"] != "mask"]),
         "the encoding has no 'mask' part"),
        (lambda m: m["encoding"]["parts"][2].update(ids=[10 ** 6]), "uses token id 1000000, but the vocabulary"),
        (lambda m: m["encoding"]["parts"][2].update(ids=["x"]), "encoding part 2 needs 'ids'"),
        (lambda m: m.update(task="multi_label"), "task_config.task does not match task 'multi_label'"),
        (lambda m: m.update(labels="abc"), "'labels' must be a non-empty list"),
    ],
    ids=["labels-vs-output", "no-masks", "ids-out-of-vocabulary", "ids-not-integers", "task-mismatch", "labels-type"],
)
def test_a_bad_manifest_fails_at_load_not_at_predict(saved, tmp_path, damage, message):
    bundle = _copy(saved[2], tmp_path)
    _edit_manifest(bundle, damage)
    with pytest.raises(BundleError, match=message):
        OnnxPredictor(bundle)


def test_an_empty_vocabulary_is_a_bundle_error(saved, tmp_path):
    bundle = _copy(saved[2], tmp_path)
    (bundle / "vocab.txt").write_text("", encoding="utf-8")
    with pytest.raises(BundleError, match="vocab.txt: the vocabulary is empty"):
        OnnxPredictor(bundle)


# --- crash-proof replacement --------------------------------------------------------------------------

_KILL_AT = """
import os, sys
from pathlib import Path
import fewshot.atomic as atomic
step, exchange, target = sys.argv[1], sys.argv[2] == "exchange", Path(sys.argv[3])
calls = {"n": 0}
real_rename, real_exchange, real_rmtree = os.rename, atomic.exchange, atomic.shutil.rmtree
def killed_at(name, real):
    def wrapper(*args, **kwargs):
        calls["n"] += 1
        if f"{name}{calls['n']}" == step:
            os._exit(9)
        return real(*args, **kwargs)
    return wrapper
atomic.os.rename = killed_at("rename", real_rename)
atomic.exchange = killed_at("exchange", real_exchange) if exchange else (lambda a, b: False)
atomic.shutil.rmtree = killed_at("rmtree", real_rmtree)
with atomic.atomic_directory(target, marker="content.txt") as tmp:
    (tmp / "content.txt").write_text("new " * 1000)
    (tmp / "second.txt").write_text("new")
"""


@pytest.mark.parametrize(
    "mode,step",
    [("exchange", "exchange1"), ("exchange", "rmtree2"), ("rename", "rename1"), ("rename", "rename2"),
     ("rename", "rmtree3")],
)
def test_a_kill_at_any_step_of_the_swap_leaves_the_old_or_the_new_directory(tmp_path, mode, step):
    target = tmp_path / "out"
    target.mkdir()
    (target / "content.txt").write_text("old " * 1000)
    (target / "second.txt").write_text("old")
    result = subprocess.run([sys.executable, "-c", _KILL_AT, step, mode, str(target)], capture_output=True, text=True)
    assert result.returncode == 9, result.stderr
    recover(target)
    contents = {(target / "content.txt").read_text(), (target / "second.txt").read_text()}
    assert contents in ({"old " * 1000, "old"}, {"new " * 1000, "new"})
    with atomic_directory(target, marker="content.txt") as tmp:
        (tmp / "content.txt").write_text("next")
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # the dead run's hidden leftovers are gone


def test_a_killed_save_leaves_a_loadable_classifier(saved, tmp_path):
    clf, directory, _ = saved
    target = _copy(directory, tmp_path, "clf")
    code = (
        "import os, sys\nimport fewshot.atomic as atomic\nfrom fewshot.classifier import PromptClassifier\n"
        "clf = PromptClassifier.load(sys.argv[1])\n"
        "atomic.exchange = lambda a, b: os._exit(9)\nclf.save(sys.argv[1])\n"
    )
    result = subprocess.run([sys.executable, "-c", code, str(target)], capture_output=True, text=True)
    assert result.returncode == 9, result.stderr[-2000:]
    again = PromptClassifier.load(target)
    assert again.predict(["球赛"]) == clf.predict(["球赛"])
    clf.save(target)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clf"]


# --- outputs checked before the work, one-line errors -------------------------------------------------


def _data_file(tmp_path, name="data.txt"):
    path = tmp_path / name
    path.write_text("球赛跑\n股价钱\n", encoding="utf-8")
    return path


def test_predict_refuses_to_overwrite_its_input(saved, tmp_path, capsys):
    data = _data_file(tmp_path)
    before = data.read_bytes()
    assert predict_main(["--bundle", str(saved[2]), "--input", str(data), "--output", str(data), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "is the input file; write the predictions to another file" in err and "Traceback" not in err
    assert data.read_bytes() == before


@pytest.mark.parametrize(
    "output,message",
    [("existing-dir", "is a directory; name a file"), ("missing/out.jsonl", "does not exist")],
)
def test_predict_checks_the_output_location_before_any_work(saved, tmp_path, capsys, monkeypatch, output, message):
    data = _data_file(tmp_path)
    (tmp_path / "existing-dir").mkdir()
    monkeypatch.setattr(batch_module, "predict_file", lambda *a, **k: pytest.fail("predicted before checking"))
    code = predict_main(["--bundle", str(saved[2]), "--input", str(data), "--output", str(tmp_path / output)])
    err = capsys.readouterr().err
    assert code == 2 and message in err and "Traceback" not in err


def test_a_full_disk_while_predicting_keeps_the_previous_output(saved, tmp_path, capsys, monkeypatch):
    data = _data_file(tmp_path)
    out = tmp_path / "predictions.jsonl"
    out.write_text("previous\n", encoding="utf-8")

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(batch_module, "_predict_chunk", full)
    assert predict_main(["--bundle", str(saved[2]), "--input", str(data), "--output", str(out), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "cannot write the predictions (the disk is full); the previous one is unchanged" in err
    assert "Traceback" not in err and out.read_text(encoding="utf-8") == "previous\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.txt", "predictions.jsonl"]


def test_a_full_disk_while_saving_is_one_line_and_keeps_the_old_model(tiny_model_dir, separable_task, tmp_path,
                                                                    capsys, monkeypatch):
    train, _, words = separable_task
    (tmp_path / "train.txt").write_text("".join(f"{e.text_a}\t{e.label}\n" for e in train), encoding="utf-8")
    (tmp_path / "label.txt").write_text("".join(f"{k}=={v[0]}\n" for k, v in words.items()), encoding="utf-8")
    argv = ["--train", str(tmp_path / "train.txt"), "--labels", str(tmp_path / "label.txt"), "--model", tiny_model_dir,
            "--template", TEMPLATE, "--output", str(tmp_path / "out"), "--max-steps", "1", "--max-seq-length", "32"]
    assert train_main(argv) == 0
    before = sorted(p.name for p in (tmp_path / "out").iterdir())
    from paddlenlp.transformers import PretrainedTokenizer

    def full(self, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(PretrainedTokenizer, "save_pretrained", full)
    capsys.readouterr()
    assert train_main(argv) == 2
    err = capsys.readouterr().err
    assert "cannot write the classifier (the disk is full); the previous one is unchanged" in err
    assert "Traceback" not in err
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == before


# --- clear messages at the file and line --------------------------------------------------------------


def test_a_tab_in_a_label_file_is_reported_at_its_line(tmp_path):
    path = tmp_path / "label.txt"
    path.write_text("news_car==汽车\nnews_tech==科\t技\n", encoding="utf-8")
    with pytest.raises(LabelFileError, match="label.txt line 2: word '科\t技' contains a tab"):
        read_label_words(path)


def test_the_same_word_for_two_labels_is_a_warning(tmp_path, caplog):
    path = tmp_path / "label.txt"
    path.write_text("news_car==汽车\nnews_auto==汽车\n", encoding="utf-8")
    with caplog.at_level("WARNING"):
        read_label_words(path)
    assert "word '汽车' is given to labels 'news_car', 'news_auto'" in caplog.text


def test_a_missing_text_b_names_the_data_file(tiny_model_dir, separable_task, tmp_path):
    train, _, words = separable_task
    path = tmp_path / "train.txt"
    path.write_text("".join(f"{e.text_a}\t{e.label}\n" for e in train), encoding="utf-8")
    clf = PromptClassifier(tiny_model_dir, labels=words, template="{'text': 'text_a'}{'sep'}{'text': 'text_b'}{'mask'}{'mask'}",
                           max_seq_length=32)
    with pytest.raises(DataError, match=f"{path}: the template uses text_b, but the data has one text per row"):
        clf.fit(str(path), max_steps=1)


def test_a_missing_bundle_is_one_line_from_the_command(tmp_path):
    """A CLI given bad input prints one line and no traceback, even for a missing bundle."""
    result = subprocess.run([sys.executable, "-m", "fewshot.cli.predict", "--bundle", str(tmp_path / "nothing"),
                             "--input", str(_data_file(tmp_path)), "--output", str(tmp_path / "o.jsonl")],
                            capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])})
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().count("\n") == 0 and "bundle directory does not exist" in result.stderr


def test_atomic_outputs_get_the_usual_permissions(tmp_path):
    from fewshot.atomic import atomic_file

    old = os.umask(0o022)
    try:
        with atomic_file(tmp_path / "out.txt") as tmp:
            tmp.write_text("x")
    finally:
        os.umask(old)
    assert (tmp_path / "out.txt").stat().st_mode & 0o777 == 0o644
