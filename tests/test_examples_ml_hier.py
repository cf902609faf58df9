"""The hierarchical and multi-label examples: their data files are valid, their train.py runs end to end."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from types import ModuleType
from typing import Callable, Dict, List

import pytest

from fewshot.data import Example, read_tsv
from fewshot.tasks import HierarchicalTask as HierarchyTask, read_hierarchy
from fewshot.data.labels import read_label_words
from fewshot.tasks import MultiLabelTask
from fewshot.testing import build_tiny_model

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
DATA = ROOT / "data"
SPLITS = ("train", "dev", "test")
ZH_ERNIE_TINY_VOCAB = Path(__file__).resolve().parents[2] / "shared" / "models" / "zh-ernie-tiny" / "vocab.txt"


def load_module(name: str, filename: str) -> ModuleType:
    """Import ``examples/<name>/<filename>`` under a unique module name."""
    folder = DATA if filename == "make_data.py" else EXAMPLES
    spec = importlib.util.spec_from_file_location(f"example_{name}_{Path(filename).stem}", folder / name / filename)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def hierarchy_validator(folder: Path) -> Callable[[str, str], None]:
    """Row-label validator of the hierarchical example (every field must be a path of label.txt)."""
    return HierarchyTask(read_hierarchy(folder / "label.txt")).check


def multilabel_validator(folder: Path) -> Callable[[str, str], None]:
    """Row-label validator of the multi-label example (every field a ','-joined set of label.txt labels)."""
    return MultiLabelTask(list(read_label_words(folder / "label.txt"))).check


def label_words(name: str) -> Dict[str, List[str]]:
    """``{label or node: [words]}`` of an example's label.txt."""
    folder = DATA / name
    if name == "hierarchical":
        return read_hierarchy(folder / "label.txt").words
    return read_label_words(folder / "label.txt")


VALIDATORS = {"hierarchical": hierarchy_validator, "multilabel": multilabel_validator}
HEADERS = {"hierarchical": "| test | level 1 acc |", "multilabel": "| test | micro-F1 |"}


def read_split(name: str, split: str) -> List[Example]:
    """An example's ``<split>.txt``, every label validated against its label.txt."""
    folder = DATA / name
    return read_tsv(folder / f"{split}.txt", labels=VALIDATORS[name](folder))


@pytest.mark.parametrize("name", sorted(VALIDATORS))
def test_data_files_parse_and_splits_are_disjoint(name):
    splits = {split: read_split(name, split) for split in SPLITS}
    assert 250 <= sum(len(rows) for rows in splits.values()) <= 500
    texts = {split: {e.text_a for e in rows} for split, rows in splits.items()}
    assert all(len(texts[s]) == len(splits[s]) for s in SPLITS), "a text repeats inside a split"
    assert not texts["train"] & texts["test"] and not texts["train"] & texts["dev"] and not texts["dev"] & texts["test"]
    words = label_words(name)
    assert all(len(word) == 2 for ws in words.values() for word in ws), words
    used = {label for rows in splits.values() for e in rows for label in e.label.split(",")}
    assert used >= {label for label in words if name == "multilabel" or label.count("##") == 2}


@pytest.mark.parametrize("name", sorted(VALIDATORS))
def test_data_files_are_what_make_data_writes(name):
    splits = load_module(name, "make_data.py").make_splits()
    for split, rows in splits.items():
        written = (DATA / name / f"{split}.txt").read_text(encoding="utf-8")
        assert written == "".join(f"{text}\t{label}\n" for text, label in rows), f"{name}/{split}.txt is stale"


@pytest.mark.parametrize("name", sorted(VALIDATORS))
def test_texts_are_in_the_zh_ernie_tiny_vocabulary(name):
    if not ZH_ERNIE_TINY_VOCAB.is_file():
        pytest.skip("../shared/models/zh-ernie-tiny is not present")
    vocab = set(ZH_ERNIE_TINY_VOCAB.read_text(encoding="utf-8").split("\n"))
    module = load_module(name, "train.py")
    chars = set(re.sub(r"\{[^}]*\}", "", module.TEMPLATE))
    chars |= {c for words in label_words(name).values() for word in words for c in word}
    chars |= {c for split in SPLITS for e in read_split(name, split) for c in e.text_a}
    assert sorted(chars - vocab) == []


@pytest.mark.parametrize("name", sorted(VALIDATORS))
def test_train_script_runs_two_steps_with_a_tiny_model(name, tmp_path, capsys):
    module = load_module(name, "train.py")
    texts = [module.TEMPLATE] + [w for ws in label_words(name).values() for w in ws]
    texts += [e.text_a for split in SPLITS for e in read_split(name, split)]
    model = build_tiny_model(tmp_path / "tiny", texts, seed=0)
    output = tmp_path / "out"
    status = module.main(["--model", model, "--max_steps", "2", "--batch_size", "4", "--output", str(output)])
    printed = capsys.readouterr().out
    assert status == 0
    assert HEADERS[name] in printed
    assert "| default thresholds (0.5) |" in printed and "| thresholds tuned on dev |" in printed
    assert (output / "fewshot_config.json").is_file() and (output / "plm" / "model.safetensors").is_file()
    assert (output / "test_metrics.json").is_file()
