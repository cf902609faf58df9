"""Issue 26, round 2: one loading policy (nothing unpickled, every tensor checked, the base model by identity),
outputs that never delete what fewshot did not write, numeric options checked when parsed.

docs/errors.md lists the same cases with the message each one gives.
"""

import json
import os
import pickle
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

from fewshot.atomic import atomic_directory
from fewshot.classifier import PromptClassifier
from fewshot.cli.analyze import main as analyze_main
from fewshot.cli.export import main as export_main
from fewshot.cli.report import main as report_main
from fewshot.cli.train import main as train_main
from fewshot.errors import BundleError, FewshotError, WriteError

SOFT = "{'soft'}{'text': 'text_a'}{'mask'}{'mask'}"
TEMPLATE = "{'text': 'text_a'}这句话的类别是{'mask'}{'mask'}"


class _RunsCode:
    """A pickle that, when loaded, creates the file it names: what a hostile .pdparams does."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def _evil_pickle(path, marker):
    path.write_bytes(pickle.dumps({"weight": _RunsCode(marker)}))


@pytest.fixture(scope="module")
def saved(tiny_model_dir, separable_task, tmp_path_factory):
    train, _, words = separable_task
    clf = PromptClassifier(tiny_model_dir, labels=words, template=SOFT, max_seq_length=32, seed=0, verbalizer="soft")
    clf.fit(train, max_steps=2, learning_rate=1e-2, disable_tqdm=True, logging_steps=1000)
    root = tmp_path_factory.mktemp("hostile2")
    clf.save(root / "clf")
    return clf, root / "clf"


def _copy(src, tmp_path, name="copy"):
    target = tmp_path / name
    shutil.copytree(src, target)
    return target


def _files(tmp_path, separable_task):
    train, _, words = separable_task
    (tmp_path / "train.txt").write_text("".join(f"{e.text_a}\t{e.label}\n" for e in train[:9]), encoding="utf-8")
    (tmp_path / "label.txt").write_text("".join(f"{k}=={v[0]}\n" for k, v in words.items()), encoding="utf-8")
    return tmp_path / "train.txt", tmp_path / "label.txt"


# --- group 1: shard indexes never reach paddle.load ----------------------------------------------------


def test_a_pickled_shard_index_beside_the_safetensors_is_never_run(saved, tmp_path):
    target = _copy(saved[1], tmp_path)
    marker = tmp_path / "pwned"
    _evil_pickle(target / "plm" / "model_state-00001-of-00001.pdparams", marker)
    index = {"metadata": {}, "weight_map": {"ernie.embeddings.word_embeddings.weight": "model_state-00001-of-00001.pdparams"}}
    (target / "plm" / "model_state.pdparams.index.json").write_text(json.dumps(index), encoding="utf-8")
    again = PromptClassifier.load(target)
    assert not marker.exists()
    assert again.predict_proba(["球赛"])[0].tolist() == pytest.approx(saved[0].predict_proba(["球赛"])[0].tolist(), abs=1e-6)
    assert export_main(["--checkpoint", str(target), "--output", str(tmp_path / "bundle"), "--no-onnx"]) == 0
    assert not marker.exists()


def test_a_pickled_index_alone_is_refused(saved, tmp_path):
    target = _copy(saved[1], tmp_path)
    marker = tmp_path / "pwned"
    (target / "plm" / "model.safetensors").unlink()
    _evil_pickle(target / "plm" / "shard.pdparams", marker)
    (target / "plm" / "model_state.pdparams.index.json").write_text(
        json.dumps({"weight_map": {"w": "shard.pdparams"}}), encoding="utf-8")
    with pytest.raises(BundleError, match=r"model_state.pdparams.index.json: pickled weights can run code"):
        PromptClassifier.load(target)
    assert not marker.exists()


@pytest.mark.parametrize("shard,message", [
    ("../../outside.safetensors", "not a plain .safetensors file name"),
    ("evil.pdparams", "not a plain .safetensors file name"),
    ("missing.safetensors", "'missing.safetensors' is missing or not a regular file"),
])
def test_a_safetensors_index_is_confined_to_the_directory(saved, tmp_path, shard, message):
    target = _copy(saved[1], tmp_path)
    (target / "plm" / "model.safetensors.index.json").write_text(json.dumps({"weight_map": {"w": shard}}), encoding="utf-8")
    with pytest.raises(BundleError, match=message):
        PromptClassifier.load(target)


def test_a_sharded_safetensors_classifier_loads(saved, tmp_path):
    target = _copy(saved[1], tmp_path)
    tensors = load_file(str(target / "plm" / "model.safetensors"))
    names = sorted(tensors)
    half = len(names) // 2
    for i, part in enumerate((names[:half], names[half:])):
        save_file({n: tensors[n] for n in part}, str(target / "plm" / f"model-{i}.safetensors"))
    weight_map = {n: f"model-{int(k >= half)}.safetensors" for k, n in enumerate(names)}
    (target / "plm" / "model.safetensors").unlink()
    (target / "plm" / "model.safetensors.index.json").write_text(json.dumps({"weight_map": weight_map}), encoding="utf-8")
    again = PromptClassifier.load(target)
    assert again.predict_proba(["球赛"])[0].tolist() == pytest.approx(saved[0].predict_proba(["球赛"])[0].tolist(), abs=1e-6)


def test_a_plm_file_linked_out_of_the_directory_is_refused(saved, tmp_path):
    target = _copy(saved[1], tmp_path)
    outside = tmp_path / "elsewhere.safetensors"
    shutil.move(str(target / "plm" / "model.safetensors"), outside)
    (target / "plm" / "model.safetensors").symlink_to(outside)
    with pytest.raises(BundleError, match="is not a file inside"):
        PromptClassifier.load(target)


# --- group 14: every tensor checked ----------------------------------------------------------------------


def test_missing_plm_tensors_are_refused_not_randomly_initialised(saved, tmp_path):
    target = _copy(saved[1], tmp_path)
    tensors = load_file(str(target / "plm" / "model.safetensors"))
    kept = dict(list(sorted(tensors.items()))[:3])
    save_file(kept, str(target / "plm" / "model.safetensors"))
    with pytest.raises(BundleError, match=rf"plm: missing tensors .* \({len(tensors) - 3} of {len(tensors)}\)"):
        PromptClassifier.load(target)


def test_a_plm_tensor_of_the_wrong_dtype_or_shape_is_named(saved, tmp_path):
    target = _copy(saved[1], tmp_path)
    tensors = load_file(str(target / "plm" / "model.safetensors"))
    name = sorted(tensors)[0]
    save_file({**tensors, name: tensors[name].astype("float64")}, str(target / "plm" / "model.safetensors"))
    with pytest.raises(BundleError, match=f"tensor {name} has dtype float64, the model expects float32"):
        PromptClassifier.load(target)
    save_file({**tensors, name: tensors[name][:1]}, str(target / "plm" / "model.safetensors"))
    with pytest.raises(BundleError, match=f"tensor {name} has shape"):
        PromptClassifier.load(target)


def test_a_prompt_state_of_the_wrong_dtype_is_refused_not_cast(saved, tmp_path):
    target = _copy(saved[1], tmp_path)
    state = load_file(str(target / "prompt_state.safetensors"))
    name = sorted(state)[0]
    save_file({**state, name: state[name].astype("float16")}, str(target / "prompt_state.safetensors"))
    with pytest.raises(BundleError, match=f"prompt_state.safetensors: {name} has dtype float16, the model expects float32"):
        PromptClassifier.load(target)


# --- group 2: the base model by identity -------------------------------------------------------------------


def test_a_saved_classifier_records_its_base_model_absolute_with_a_checksum(saved, tiny_model_dir):
    config = json.loads((saved[1] / "fewshot_config.json").read_text(encoding="utf-8"))
    assert config["base_model"] == str(Path(tiny_model_dir).resolve())
    assert len(config["base_model_sha256"]) == 64


def _with_base(saved, tmp_path, base, sha256=None):
    target = _copy(saved[1], tmp_path)
    path = target / "fewshot_config.json"
    config = json.loads(path.read_text(encoding="utf-8"))
    config["base_model"], config["base_model_sha256"] = base, sha256
    path.write_text(json.dumps(config), encoding="utf-8")
    return target


def test_a_base_model_with_pickled_weights_is_not_loaded_without_trust(saved, tmp_path):
    evil = tmp_path / "evil-model"
    shutil.copytree(saved[1] / "plm", evil)
    (evil / "model.safetensors").unlink()
    marker = tmp_path / "pwned"
    _evil_pickle(evil / "model_state.pdparams", marker)
    clf = PromptClassifier.load(_with_base(saved, tmp_path, str(evil)))
    with pytest.raises(BundleError, match="model_state.pdparams: pickled weights can run code"):
        clf.untrained_copy(seed=0)
    assert not marker.exists()


@pytest.mark.parametrize("base", ["ernie-3.0-base-zh", "../models/zh-ernie-tiny"])
def test_a_model_name_or_relative_base_model_needs_trust(saved, tmp_path, base):
    clf = PromptClassifier.load(_with_base(saved, tmp_path, base))
    with pytest.raises(BundleError, match="may download and unpickle weights, so pass trust_pickle=True"):
        clf.untrained_copy(seed=0)


def test_a_base_model_whose_weights_changed_is_refused(saved, tmp_path, tiny_model_dir):
    clf = PromptClassifier.load(_with_base(saved, tmp_path, str(Path(tiny_model_dir).resolve()), "0" * 64),
                                trust_pickle=True)
    with pytest.raises(BundleError, match="are not the ones the classifier was trained from"):
        clf.untrained_copy(seed=0)


def test_a_safetensors_base_model_rebuilds_without_trust(saved, tmp_path):
    base = tmp_path / "base"
    shutil.copytree(saved[1] / "plm", base)
    clf = PromptClassifier.load(_with_base(saved, tmp_path, str(base)))
    copy = clf.untrained_copy(seed=0)
    assert copy.predict_proba(["球赛"]).shape == (1, 3)


def test_label_issues_with_a_pickled_base_says_to_pass_trust(saved, tmp_path, separable_task, capsys):
    train, _ = _files(tmp_path, separable_task)
    code = analyze_main(["label-issues", "--classifier", str(saved[1]), "--train", str(train),
                         "--output", str(tmp_path / "issues.tsv"), "--max-steps", "1"])
    err = capsys.readouterr().err
    assert code == 2 and "pickled weights can run code" in err and "--trust-pickle" in err and "Traceback" not in err


# --- group 3: outputs never delete what fewshot did not write ------------------------------------------


def test_save_refuses_a_directory_that_is_not_a_classifier(saved, tmp_path):
    project = tmp_path / "proj"
    project.mkdir()
    (project / "notes.txt").write_text("mine", encoding="utf-8")
    with pytest.raises(WriteError, match="proj: exists and is not a fewshot classifier .no fewshot_config.json."):
        saved[0].save(project)
    assert (project / "notes.txt").read_text(encoding="utf-8") == "mine"
    with pytest.raises(WriteError, match="exists and is not a fewshot bundle .no fewshot.json."):
        saved[0].export(saved[1], onnx=False)
    assert (saved[1] / "fewshot_config.json").is_file()


def test_a_previous_classifier_is_replaced(saved, tmp_path):
    saved[0].save(tmp_path / "clf")
    saved[0].save(tmp_path / "clf")
    assert (tmp_path / "clf" / "fewshot_config.json").is_file()


def test_fewshot_train_refuses_a_project_directory_before_training(tmp_path, separable_task, tiny_model_dir,
                                                                   monkeypatch, capsys):
    train, labels = _files(tmp_path, separable_task)
    monkeypatch.setattr(PromptClassifier, "fit", lambda *a, **k: pytest.fail("trained before checking the output"))
    code = train_main(["--train", str(train), "--labels", str(labels), "--model", tiny_model_dir,
                       "--output", str(tmp_path), "--max-steps", "1"])
    err = capsys.readouterr().err
    assert code == 2 and "is not a fewshot classifier" in err and "Traceback" not in err
    assert train.is_file() and labels.is_file()


def test_fewshot_export_refuses_its_checkpoint_and_the_current_directory(saved, tmp_path, monkeypatch, capsys):
    target = _copy(saved[1], tmp_path)
    assert export_main(["--checkpoint", str(target), "--output", str(target)]) == 2
    assert "is not a fewshot bundle" in capsys.readouterr().err
    assert (target / "fewshot_config.json").is_file()
    monkeypatch.chdir(target)
    assert export_main(["--checkpoint", str(target), "--output", "."]) == 2
    assert "is the current directory or contains it" in capsys.readouterr().err
    assert export_main(["--checkpoint", str(target), "--output", ".."]) == 2
    assert sorted(p.name for p in target.iterdir()) == sorted(p.name for p in saved[1].iterdir())


def test_an_output_holding_an_input_is_refused(tmp_path):
    from fewshot.atomic import check_inputs_outside

    with pytest.raises(WriteError, match="holds the input"):
        check_inputs_outside(tmp_path / "out", [tmp_path / "out" / "train.txt"])


# --- group 4: permissions honour the umask -----------------------------------------------------------------


def test_saved_directories_and_weights_get_the_umask_permissions(saved, tmp_path):
    old = os.umask(0o022)
    try:
        saved[0].save(tmp_path / "clf")
    finally:
        os.umask(old)
    root = tmp_path / "clf"
    assert root.stat().st_mode & 0o777 == 0o755
    assert (root / "plm").stat().st_mode & 0o777 == 0o755
    assert (root / "plm" / "model.safetensors").stat().st_mode & 0o777 == 0o644
    assert (root / "prompt_state.safetensors").stat().st_mode & 0o777 == 0o644


def test_an_empty_directory_may_be_written(tmp_path):
    (tmp_path / "empty").mkdir()
    with atomic_directory(tmp_path / "empty") as tmp:
        (tmp / "x").write_text("x")
    assert (tmp_path / "empty" / "x").is_file()


# --- groups 6, 7, 11: numbers checked when parsed, bounded by the model -------------------------------


@pytest.mark.parametrize("option,value,message", [
    ("--learning-rate", "nan", "must be a finite number, got nan"),
    ("--learning-rate", "-1", "must be > 0, got -1"),
    ("--batch-size", "0", "must be ≥ 1, got 0"),
    ("--epochs", "inf", "must be a finite number"),
    ("--max-seq-length", "0", "must be ≥ 1, got 0"),
    ("--seed", "-3", "must be ≥ 0, got -3"),
])
def test_fewshot_train_checks_numbers_when_parsing(option, value, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        train_main(["--train", "t.txt", "--labels", "l.txt", "--model", "m", "--output", "o", option, value])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and message in err and "Traceback" not in err


@pytest.mark.parametrize("argv,message", [
    (["--explain", "-1"], "argument --explain: must be ≥ 0, got -1"),
    (["--eval-batch-size", "0"], "argument --eval-batch-size: must be ≥ 1, got 0"),
    (["--folds", "1"], "argument --folds: must be ≥ 2, got 1"),
    (["--learning-rate", "inf"], "must be a finite number"),
])
def test_fewshot_report_checks_numbers_when_parsing(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        report_main(["--classifier", "c", "--data", "d", "--output", "o.html", *argv])
    assert exit_info.value.code == 2 and message in capsys.readouterr().err


def test_training_arguments_reject_nan_from_python(tiny_model_dir, separable_task):
    train, _, words = separable_task
    clf = PromptClassifier(tiny_model_dir, labels=words, template=TEMPLATE, max_seq_length=32, seed=0)
    with pytest.raises(FewshotError, match="learning_rate must be a finite number, got nan"):
        clf.fit(train, max_steps=1, learning_rate=float("nan"))
    with pytest.raises(FewshotError, match="per_device_train_batch_size must be ≥ 1, got 0"):
        clf.fit(train, max_steps=1, per_device_train_batch_size=0)


def test_max_seq_length_beyond_the_position_table_is_refused_at_construction(tiny_model_dir, separable_task):
    _, _, words = separable_task
    with pytest.raises(FewshotError, match="max_seq_length 1000 is more than the model's 128 positions"):
        PromptClassifier(tiny_model_dir, labels=words, template=TEMPLATE, max_seq_length=1000)


def test_a_diverging_loss_is_one_line(tiny_model_dir, separable_task):
    train, _, words = separable_task
    clf = PromptClassifier(tiny_model_dir, labels=words, template=TEMPLATE, max_seq_length=32, seed=0)
    with pytest.raises(FewshotError, match="the training loss became NaN or infinite .learning rate 1e.30."):
        clf.fit(train, max_steps=6, learning_rate=1e30, disable_tqdm=True, logging_steps=1)


# --- groups 9, 15, 17: one input contract ----------------------------------------------------------------


@pytest.mark.parametrize("inputs,message", [
    (["球赛", "\ud800"], "input 1: text is not valid Unicode"),
    (["\u200b\u200d\ufeff"], "input 0: empty text .only control or zero-width characters."),
    (["\x00\x07"], "input 0: empty text"),
    ([("球赛", 5)], "input 0: text_b must be a string, found int"),
])
def test_both_predictors_refuse_the_same_inputs_alike(saved, tiny_bundle, inputs, message):
    from fewshot.errors import DataError
    from fewshot.runtime import OnnxPredictor

    for predictor in (saved[0], OnnxPredictor(tiny_bundle)):
        with pytest.raises(DataError, match=message):
            predictor.predict(inputs)


def test_fewshot_predict_skips_invalid_unicode_per_line(tiny_bundle, tmp_path, capsys):
    from fewshot.cli.predict import main as predict_main

    data = tmp_path / "data.jsonl"
    data.write_text('{"sentence": "球赛"}\n{"sentence": "\\ud800"}\n{"sentence": "\\u200b"}\n{"sentence": "雨"}\n',
                    encoding="utf-8")
    out = tmp_path / "out.jsonl"
    assert predict_main(["--bundle", str(tiny_bundle), "--input", str(data), "--output", str(out), "--no-progress",
                         "--on-error", "skip"]) == 0
    records = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [r["line"] for r in records] == [1, 2, 3, 4]
    assert "label" in records[0] and "label" in records[3]
    assert "not valid Unicode" in records[1]["error"] and "zero-width" in records[2]["error"]
    assert "Traceback" not in capsys.readouterr().err


def test_trailing_blank_lines_are_ignored_by_fewshot_predict_as_by_read_examples(tiny_bundle, tmp_path):
    from fewshot.cli.predict import main as predict_main
    from fewshot.data import read_examples

    data = tmp_path / "data.txt"
    data.write_text("球赛\n\n雨\n\n\n", encoding="utf-8")
    out = tmp_path / "out.jsonl"
    assert predict_main(["--bundle", str(tiny_bundle), "--input", str(data), "--output", str(out), "--no-progress",
                         "--on-error", "skip"]) == 0
    records = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [r["line"] for r in records] == [1, 2, 3] and records[1]["error"].endswith("line 2: empty line")
    assert len(read_examples(data, labeled=False)) == 2
    assert predict_main(["--bundle", str(tiny_bundle), "--input", str(data), "--output", str(out), "--no-progress"]) == 2


# --- group 10: a bundle checked as a whole when it loads; group 6: threads bounded -------------------


def _bundle_with(tiny_bundle, tmp_path, change):
    target = _copy(tiny_bundle, tmp_path, "bundle")
    path = target / "fewshot.json"
    manifest = json.loads(path.read_text(encoding="utf-8"))
    change(manifest)
    path.write_text(json.dumps(manifest), encoding="utf-8")
    return target


@pytest.mark.parametrize("change,message", [
    (lambda m: m["encoding"]["tokenizer"].update(max_input_chars_per_word="x"),
     "encoding.tokenizer.max_input_chars_per_word must be an integer ≥ 1, found 'x'"),
    (lambda m: m["encoding"]["tokenizer"].update(special_tokens=5), "encoding.tokenizer.special_tokens must be a list"),
    (lambda m: m["encoding"]["tokenizer"].update(do_lower_case="yes"), "encoding.tokenizer.do_lower_case must be true or false"),
    (lambda m: m.update(task_config="multi_class"), "task_config must be an object, found str"),
    (lambda m: m["encoding"].update(max_seq_length=600), "encoding.max_seq_length 600 is more than the model's 128 positions"),
    (lambda m: m["encoding"].update(max_seq_length=1e7), "encoding.max_seq_length must be an integer ≥ 1"),
])
def test_a_manifest_field_of_the_wrong_type_or_size_fails_at_load(tiny_bundle, tmp_path, change, message):
    from fewshot.runtime import OnnxPredictor

    with pytest.raises(BundleError, match=message):
        OnnxPredictor(_bundle_with(tiny_bundle, tmp_path, change))


def test_a_repeated_vocabulary_token_beyond_the_embedding_table_fails_at_load(tiny_bundle, tmp_path):
    from fewshot.runtime import OnnxPredictor

    target = _copy(tiny_bundle, tmp_path, "bundle")
    with open(target / "vocab.txt", "a", encoding="utf-8") as handle:
        handle.write("球\n")
    with pytest.raises(BundleError, match=r"vocab.txt gives ids up to \d+ \(a token repeated or added\?\)"):
        OnnxPredictor(target)


def test_a_manifest_linked_out_of_the_bundle_is_refused(tiny_bundle, tmp_path):
    from fewshot.runtime import OnnxPredictor

    target = _copy(tiny_bundle, tmp_path, "bundle")
    shutil.move(str(target / "fewshot.json"), tmp_path / "elsewhere.json")
    (target / "fewshot.json").symlink_to(tmp_path / "elsewhere.json")
    with pytest.raises(BundleError, match="fewshot.json: a symbolic link"):
        OnnxPredictor(target)


@pytest.mark.parametrize("unsqueeze", [False, True])
def test_a_swapped_graph_of_symbolic_width_or_rank_3_fails_at_load(tiny_bundle, tmp_path, unsqueeze):
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    from fewshot.runtime import OnnxPredictor

    target = _copy(tiny_bundle, tmp_path, "bundle")
    inputs = [helper.make_tensor_value_info(name, TensorProto.INT64, ["batch", "sequence"])
              for name in ("input_ids", "token_type_ids", "position_ids", "attention_mask")]
    inputs.append(helper.make_tensor_value_info("masked_positions", TensorProto.INT64, ["batch", 2]))
    nodes = [helper.make_node("Cast", ["input_ids"], ["cast" if unsqueeze else "probs"], to=TensorProto.FLOAT)]
    initializers = []
    shape = ["batch", "sequence"]
    if unsqueeze:
        initializers.append(helper.make_tensor("axes", TensorProto.INT64, [1], [2]))
        nodes.append(helper.make_node("Unsqueeze", ["cast", "axes"], ["probs"]))
        shape = ["batch", "sequence", 1]
    output = helper.make_tensor_value_info("probs", TensorProto.FLOAT, shape)
    graph = helper.make_graph(nodes, "swapped", inputs, [output], initializer=initializers)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(target / "model.onnx"))
    with pytest.raises(BundleError, match=r"the output probs has shape \[.*\], not \[batch, 3\]"):
        OnnxPredictor(target)


def test_threads_beyond_the_usable_cores_are_refused(tiny_bundle, tmp_path, capsys):
    from fewshot.cli.predict import main as predict_main
    from fewshot.cpu_env import usable_cores
    from fewshot.runtime import OnnxPredictor

    with pytest.raises(FewshotError, match=f"threads must be ≤ {usable_cores()}, got 100000"):
        OnnxPredictor(tiny_bundle, threads=100000)
    with pytest.raises(SystemExit):
        predict_main(["--bundle", str(tiny_bundle), "--input", "x", "--output", "y", "--threads", "100000"])
    assert f"argument --threads: must be ≤ {usable_cores()}, got 100000" in capsys.readouterr().err


# --- group 12: a runtime-only install names the extra to install ---------------------------------------

_WITHOUT = """
import sys
from importlib.abc import MetaPathFinder
blocked = set(sys.argv[1].split(","))
class Missing(MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in blocked:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
sys.meta_path.insert(0, Missing())
from fewshot.cli.launch import launch
sys.argv = [sys.argv[2], *sys.argv[3:]]
sys.exit(launch(sys.argv[0]))
"""


@pytest.mark.parametrize("blocked,prog,extras", [
    ("paddle,paddlenlp", "fewshot-train", "train"),
    ("paddle,paddlenlp", "fewshot-export", "train"),
    ("paddle,paddlenlp", "fewshot-pretrain", "train"),
    ("paddle,paddlenlp", "fewshot-corpus-stats", "train"),
    ("paddle,paddlenlp", "fewshot-compare", "train"),
    ("paddle,paddlenlp", "fewshot-labelwords", "train"),
    ("paddle,paddlenlp", "fewshot-analyze", "train,analysis"),
    ("paddle,paddlenlp", "fewshot-select", "train,analysis"),
    ("paddle,paddlenlp", "fewshot-report", "train,analysis"),
])
def test_a_command_without_its_extra_says_what_to_install(blocked, prog, extras):
    import subprocess
    import sys

    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    result = subprocess.run([sys.executable, "-c", _WITHOUT, blocked, prog, "--help"], capture_output=True, text=True,
                            env=env, timeout=120)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    plural = "s" if "," in extras else ""
    assert re.fullmatch(rf'{prog}: error: needs the "{extras}" extra{plural} \((paddle|paddlenlp) is not installed\): '
                        rf'pip install "fewshot\[{extras}\]"', result.stderr.strip()), result.stderr


# --- group 16: analysis you can trust ----------------------------------------------------------------------


def test_fold_models_train_with_the_saved_classifiers_arguments(saved, tmp_path, separable_task, monkeypatch):
    pytest.importorskip("cleanlab")
    import fewshot.cli.analyze as analyze
    from fewshot.analysis.label_issues import OutOfFold

    config = json.loads((saved[1] / "fewshot_config.json").read_text(encoding="utf-8"))
    assert config["training_arguments"]["learning_rate"] == 1e-2 and config["training_arguments"]["max_steps"] == 2
    train, _ = _files(tmp_path, separable_task)
    seen = {}

    def fake(build, examples, folds, split_seed, **fit_args):
        seen.update(fit_args)
        task = saved[0].task
        probs = np.full((len(examples), 3), 1 / 3, dtype="float32")
        return OutOfFold(probs, task, np.arange(len(examples)) % folds, [0.25, 0.5, 0.75][:folds])

    monkeypatch.setattr(analyze, "out_of_fold_probabilities", fake)
    out = tmp_path / "issues.tsv"
    assert analyze_main(["label-issues", "--classifier", str(saved[1]), "--train", str(train), "--output", str(out),
                         "--all", "--max-steps", "7", "--trust-pickle"]) == 0
    assert seen["learning_rate"] == 1e-2 and seen["max_steps"] == 7  # saved, and overridden where given
    header, *rows = out.read_text(encoding="utf-8").splitlines()
    assert header.split("\t")[-1] == "fold_accuracy"
    assert {row.split("\t")[-1] for row in rows} == {"0.25", "0.5", "0.75"}


def test_the_evaluation_report_is_one_table_of_classes(saved, separable_task):
    _, test, words = separable_task
    rows = [(e.text_a, e.label) for e in test if e.label != "weather"]
    metrics = saved[0].evaluate(rows, report=True)
    assert set(metrics["per_class"]) <= {"sports", "finance", "weather"}
    assert all(set(row) == {"precision", "recall", "f1-score", "support"} for row in metrics["per_class"].values())
    from sklearn.metrics import f1_score

    predicted = saved[0].predict([text for text, _ in rows])
    assert metrics["macro_f1"] == pytest.approx(f1_score([label for _, label in rows], predicted, average="macro"))


# --- groups 15, 18: leftovers ------------------------------------------------------------------------------


def test_label_words_that_all_become_unknown_tokens_are_an_error(tiny_model_dir):
    from fewshot.errors import LabelFileError

    with pytest.raises(LabelFileError, match=r"labels 'a' and 'b' both become \[UNK\]: their words have characters "
                                             "unknown to the vocabulary"):
        PromptClassifier(tiny_model_dir, labels={"a": ["😀"], "b": ["🎉"]}, template=TEMPLATE, max_seq_length=32)


def test_a_repeated_template_option_is_an_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        train_main(["--train", "t", "--labels", "l", "--model", "m", "--output", "o", "--template", TEMPLATE,
                    "--template", SOFT])
    assert exit_info.value.code == 2
    assert "argument --template: given more than once; give it once" in capsys.readouterr().err


@pytest.mark.parametrize("config,message", [
    ({"patterns": [TEMPLATE, "{'text': 'text_a'}没有掩码"]},
     "distillation: --pattern 2 \"{'text': 'text_a'}没有掩码\" has no {'mask'} slot"),
    ({"patterns": [TEMPLATE, "{'text': 'text_a'"]}, "distillation: --pattern 2 \"{'text': 'text_a'\": template:"),
    ({"student_model": "./no/such/model"}, "distillation: --student-model ./no/such/model: no such model directory"),
])
def test_distillation_checks_patterns_and_student_before_training_members(tiny_model_dir, separable_task, tmp_path,
                                                                         monkeypatch, config, message):
    from fewshot.unlabeled import DistillationConfig, distill

    train, test, words = separable_task
    monkeypatch.setattr(PromptClassifier, "fit", lambda *a, **k: pytest.fail("trained a member before checking"))
    with pytest.raises(FewshotError, match=re.escape(message)):
        distill(tiny_model_dir, PromptClassifier(tiny_model_dir, labels=words, max_seq_length=32).task, words, train,
                [e.text_a for e in test], tmp_path / "run", DistillationConfig(**config), template=TEMPLATE,
                classifier_options={"max_seq_length": 32}, progress=False)


def test_distillation_numbers_are_checked_like_every_other(capsys):
    from fewshot.unlabeled import DistillationConfig

    with pytest.raises(FewshotError, match="temperature must be a finite number, got inf"):
        DistillationConfig(temperature=float("inf"))
    with pytest.raises(SystemExit):
        train_main(["--train", "t", "--labels", "l", "--model", "m", "--output", "o", "--unlabeled", "u",
                    "--temperature", "nan"])
    assert "argument --temperature: must be a finite number, got nan" in capsys.readouterr().err


@pytest.mark.parametrize("module,argv,message", [
    ("select", ["--classifier", "c", "--input", "i", "--output", "o", "--k", "3", "--batch-size", "0"],
     "argument --batch-size: must be ≥ 1, got 0"),
    ("compare", ["--checkpoints", "a=b", "--train", "t", "--test", "t", "--labels", "l", "--max-seq-length", "-5"],
     "argument --max-seq-length/--max_seq_length: must be ≥ 1, got -5"),
    ("export", ["--checkpoint", "c", "--output", "o", "--opset", "0"], "argument --opset: must be ≥ 18, got 0"),
    ("pretrain", ["--corpus", "c", "--output", "o", "--from-scratch", "--learning-rate", "-1"],
     "argument --learning-rate/--learning_rate: must be > 0, got -1"),
    ("pretrain", ["--corpus", "c", "--output", "o", "--from-scratch", "--mask-ratio", "1.5"],
     "argument --mask-ratio: must be < 1, got 1.5"),
])
def test_every_command_checks_its_numbers_when_parsing(module, argv, message, capsys):
    import importlib

    with pytest.raises(SystemExit) as exit_info:
        importlib.import_module(f"fewshot.cli.{module}").main(argv)
    assert exit_info.value.code == 2 and message in capsys.readouterr().err


def test_a_label_with_dollar_signs_is_drawn_as_text():
    pytest.importorskip("matplotlib")
    from fewshot.analysis.report import confusion_picture

    picture = confusion_picture(["a$\\x$b", "b"], ["a$\\x$b", "b"], np.array([[2, 0], [1, 3]]), named=True)
    assert picture.startswith("data:image/png;base64,")


@pytest.mark.parametrize("template", ["{'soft': None, 'length': 1000000000}{'text': 'text_a'}{'mask'}",
                                      "{'text': 'text_a'}{'mask': None, 'length': 1000000000}"])
def test_a_huge_soft_or_mask_length_is_refused_before_anything_is_made(tiny_tokenizer, template):
    from fewshot.errors import TemplateError
    from fewshot.template import Template

    with pytest.raises(TemplateError, match="'length' must be ≤ 8192, got 1000000000"):
        Template(template, tiny_tokenizer, 32)
