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


def test_label_file_mixing_bare_and_mapped_lines_reads_as_paddlenlp_does(tmp_path, tiny_tokenizer):
    """PaddleNLP reads a bare line as the label standing for itself; so does the verbalizer."""
    from fewshot.prompt.verbalizers import tokenize_label_words

    path = write_text(tmp_path, "news_car==汽车\n体育\nnews_car==车\n")
    words = read_label_words(path)
    assert words == {"news_car": ["汽车", "车"], "体育": []}
    ids = tokenize_label_words(words, tiny_tokenizer, 1)
    assert ids["体育"] == [tiny_tokenizer.convert_tokens_to_ids(["体", "育"])]


def test_paddlenlp_verbalizer_config_is_read_as_a_mapping(tmp_path):
    path = write_text(tmp_path, '{"news_car": ["汽车", "车辆"], "news_edu": "教育"}\n', "verbalizer_config.json")
    assert read_label_words(path) == {"news_car": ["汽车", "车辆"], "news_edu": ["教育"]}


def test_paddlenlp_template_config_given_as_labels_says_what_it_is(tmp_path):
    path = write_text(tmp_path, '[{"text": "text_a"}, {"mask": null}]\n{"class": "ManualTemplate"}\n', "template_config.json")
    with pytest.raises(LabelFileError, match=re.escape(f"{path}: this is PaddleNLP's template_config.json "
                                                       "(a ManualTemplate template), not a label file")):
        read_label_words(path)


@pytest.mark.parametrize("content, message", [
    ('{"a": ["甲"]\n', "starts like JSON but is not valid JSON"),
    ('{"a": "甲"}\n{"b": "乙"}\n', "a JSON label file must be one object"),
    ('{"a": [1]}\n', "label 'a': word must be a string, found int"),
])
def test_bad_json_label_files_name_the_file(tmp_path, content, message):
    path = write_text(tmp_path, content, "verbalizer_config.json")
    with pytest.raises(LabelFileError, match=re.escape(f"{path}: ") + ".*" + re.escape(message)):
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


def test_mapping_mixing_labels_with_and_without_words():
    assert label_words_from_mapping({"a": "甲", "b": []}) == {"a": ["甲"], "b": []}


def test_mapping_with_integer_label_keys():
    assert label_words_from_mapping({0: "差", 1: ["好", "棒"]}) == {"0": ["差"], "1": ["好", "棒"]}
    with pytest.raises(LabelFileError, match="must be a string"):
        label_words_from_mapping({True: "是"})


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
