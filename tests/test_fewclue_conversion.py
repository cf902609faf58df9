"""data/fewclue_to_paddlenlp.py: a FewCLUE folder becomes train/dev/test/data/label files fewshot reads."""

import importlib.util
import json
import sys
from pathlib import Path

import pytest

from fewshot.data import read_examples, read_label_words

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("fewclue_to_paddlenlp", ROOT / "data" / "fewclue_to_paddlenlp.py")
convert = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = convert
_spec.loader.exec_module(convert)


def _fewclue(folder, label_key="label_desc"):
    folder.mkdir()
    rows = [("汽车降价\t了", "news_car"), ("球赛开始", "news_sports"), ("新车\n上市", "news_car")]
    for name in ("train_0.json", "dev_0.json", "test_public.json"):
        (folder / name).write_text("".join(json.dumps({"sentence": t, label_key: l, "id": i}, ensure_ascii=False) + "\n"
                                           for i, (t, l) in enumerate(rows)), encoding="utf-8")
    (folder / "test.json").write_text(json.dumps({"sentence": "待预测", "id": 0}, ensure_ascii=False) + "\n", encoding="utf-8")
    return folder


@pytest.mark.parametrize("label_key", ["label_desc", "label_des"])
def test_converted_files_read_back_with_the_same_rows(tmp_path, label_key, capsys):
    source = _fewclue(tmp_path / "task", label_key)
    words = tmp_path / "words.txt"
    words.write_text("news_car==汽车\nnews_sports==体育\n", encoding="utf-8")
    counts = convert.convert(source, 0, tmp_path / "out", words)
    assert counts == {"train.txt": 3, "dev.txt": 3, "test.txt": 3, "data.txt": 1, "label.txt": 2}
    train = read_examples(tmp_path / "out" / "train.txt", labels=["news_car", "news_sports"])
    assert [(e.text_a, e.label) for e in train] == [("汽车降价 了", "news_car"), ("球赛开始", "news_sports"),
                                                   ("新车 上市", "news_car")]
    assert read_label_words(tmp_path / "out" / "label.txt") == {"news_car": ["汽车"], "news_sports": ["体育"]}
    assert [e.text_a for e in read_examples(tmp_path / "out" / "data.txt", labeled=False)] == ["待预测"]
    assert "2 text(s) had tabs or line breaks" in capsys.readouterr().err


def test_missing_split_and_missing_words_are_one_line_errors(tmp_path, capsys):
    source = _fewclue(tmp_path / "task")
    assert convert.main([str(source), "--split", "3", "--output", str(tmp_path / "out")]) == 2
    assert "no train_3.json" in capsys.readouterr().err
    words = tmp_path / "words.txt"
    words.write_text("news_car==汽车\n", encoding="utf-8")
    assert convert.main([str(source), "--output", str(tmp_path / "out"), "--label-words", str(words)]) == 2
    assert "no words for label(s) news_sports" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
