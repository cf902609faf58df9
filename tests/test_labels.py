import re
from pathlib import Path

import pytest

from fewshot.errors import FewshotError, LabelFileError
from fewshot.data.labels import label_words_from_mapping, read_label_words, write_label_words


def write_text(tmp_path, text: str, name: str = "label.txt") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8"))
    return path


def where(path, line):
    return re.escape(f"{path} line {line}: ")


# --- read_label_words ------------------------------------------------------------------


def test_plain_label_lines_give_labels_without_words(tmp_path):
    path = write_text(tmp_path, "news_car\nnews_tech\nnews_car\n")
    assert read_label_words(path) == {"news_car": [], "news_tech": []}


def test_label_word_lines_map_labels_to_words(tmp_path):
    path = write_text(tmp_path, "news_car==汽车\nnews_sports==体育竞技\n")
    assert read_label_words(path) == {"news_car": ["汽车"], "news_sports": ["体育竞技"]}


def test_repeated_label_lines_give_several_words(tmp_path):
    path = write_text(tmp_path, "news_car==汽车\nnews_tech==科技\nnews_car==车辆\nnews_car==汽车\n")
    label_words = read_label_words(path)
    assert label_words == {"news_car": ["汽车", "车辆"], "news_tech": ["科技"]}
    assert list(label_words) == ["news_car", "news_tech"]


def test_label_file_with_bom_and_crlf(tmp_path):
    path = write_text(tmp_path, "\ufeffnews_car == 汽车 \r\n\r\n  \r\n news_tech==科技\r\n")
    assert read_label_words(path) == {"news_car": ["汽车"], "news_tech": ["科技"]}


def test_label_file_empty_label_before_separator(tmp_path):
    path = write_text(tmp_path, "a==甲\nb==乙\nc==丙\n==丁\n")
    with pytest.raises(LabelFileError, match=where(path, 4) + re.escape("empty label before '=='")):
        read_label_words(path)


def test_label_file_empty_word_after_separator(tmp_path):
    path = write_text(tmp_path, "a==甲\n\n\n\n\n\nnews_car==  \n")
    with pytest.raises(LabelFileError, match=where(path, 7) + re.escape("empty word after '==' for label 'news_car'")):
        read_label_words(path)


def test_label_file_line_with_two_separators(tmp_path):
    path = write_text(tmp_path, "a==甲==乙\n")
    with pytest.raises(LabelFileError, match=where(path, 1) + re.escape("more than one '==' in 'a==甲==乙'")):
        read_label_words(path)


def test_label_file_mixing_labels_with_and_without_words_names_the_bare_label(tmp_path):
    path = write_text(tmp_path, "news_car==汽车\nnews_tech\nnews_sports\n")
    with pytest.raises(LabelFileError, match=where(path, 2) + "label 'news_tech' has no word, but other labels do"):
        read_label_words(path)


def test_bare_line_for_a_label_that_has_words_elsewhere_is_fine(tmp_path):
    path = write_text(tmp_path, "news_car\nnews_car==汽车\n")
    assert read_label_words(path) == {"news_car": ["汽车"]}


@pytest.mark.parametrize("content", ["", "\r\n \n"])
def test_empty_label_file_is_an_error(tmp_path, content):
    path = write_text(tmp_path, content)
    with pytest.raises(LabelFileError, match=re.escape(f"{path}: no labels")):
        read_label_words(path)


def test_missing_label_file_names_path(tmp_path):
    path = tmp_path / "label.txt"
    with pytest.raises(LabelFileError, match=re.escape(f"{path}: file does not exist")):
        read_label_words(path)


def test_label_file_invalid_utf8_names_line(tmp_path):
    path = tmp_path / "label.txt"
    path.write_bytes("a==甲\n".encode("utf-8") + "b==乙\n".encode("gbk"))
    with pytest.raises(LabelFileError, match=where(path, 2) + "not valid UTF-8"):
        read_label_words(path)


def test_label_file_error_is_a_fewshot_value_error():
    assert issubclass(LabelFileError, FewshotError)
    assert issubclass(LabelFileError, ValueError)


# --- label_words_from_mapping ----------------------------------------------------------


def test_mapping_accepts_word_or_word_list_and_strips():
    mapping = {" news_car ": ["汽车", " 车辆 ", "汽车"], "news_tech": "科技"}
    assert label_words_from_mapping(mapping) == {"news_car": ["汽车", "车辆"], "news_tech": ["科技"]}


def test_mapping_without_any_words_gives_empty_lists():
    assert label_words_from_mapping({"a": None, "b": []}) == {"a": [], "b": []}


def test_mapping_empty_word_names_the_label():
    with pytest.raises(LabelFileError, match=re.escape("label 'news_car': empty word")):
        label_words_from_mapping({"news_car": ["汽车", " "]})


def test_mapping_mixing_labels_with_and_without_words_names_the_label():
    with pytest.raises(LabelFileError, match=re.escape("label words: label 'b' has no word, but other labels do")):
        label_words_from_mapping({"a": "甲", "b": []})


def test_mapping_rejects_separator_in_word():
    with pytest.raises(LabelFileError, match=re.escape("label 'a': word '甲==乙' contains '=='")):
        label_words_from_mapping({"a": "甲==乙"})


def test_mapping_rejects_labels_equal_after_stripping():
    with pytest.raises(LabelFileError, match=re.escape("label 'a': given twice")):
        label_words_from_mapping({"a": "甲", " a ": "乙"})


def test_mapping_rejects_non_string_words():
    with pytest.raises(LabelFileError, match=re.escape("label 'a': word must be a string, found int")):
        label_words_from_mapping({"a": [1]})


def test_empty_mapping_is_an_error():
    with pytest.raises(LabelFileError, match="no labels"):
        label_words_from_mapping({})


# --- write_label_words -----------------------------------------------------------------


def test_written_label_words_read_back_unchanged(tmp_path):
    label_words = {"news_car": ["汽车", "车辆"], "news_tech": ["科技"], "news_sports": ["体育竞技"]}
    path = tmp_path / "label.txt"
    write_label_words(path, label_words)
    assert path.read_text(encoding="utf-8") == "news_car==汽车\nnews_car==车辆\nnews_tech==科技\nnews_sports==体育竞技\n"
    assert read_label_words(path) == label_words


def test_labels_without_words_are_written_bare(tmp_path):
    path = tmp_path / "label.txt"
    write_label_words(path, {"b": [], "a": None})
    assert path.read_text(encoding="utf-8") == "b\na\n"
    assert read_label_words(path) == {"b": [], "a": []}
