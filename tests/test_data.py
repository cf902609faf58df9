import json
import re
from pathlib import Path

import pytest

from fewshot.data import Example, read_examples, read_jsonl, read_lines, read_tsv, to_examples
from fewshot.errors import DataError, FewshotError

FEWCLUE_TNEWS = Path(__file__).resolve().parents[2] / "shared" / "fewclue" / "tnews"

LABELS = ["news_car", "news_tech", "news_sports"]


def write_bytes(tmp_path, name, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def write_text(tmp_path, name, text: str) -> Path:
    return write_bytes(tmp_path, name, text.encode("utf-8"))


def where(path, line):
    return re.escape(f"{path} line {line}: ")


# --- read_tsv -------------------------------------------------------------------------


def test_tsv_reads_text_label_rows(tmp_path):
    path = write_text(tmp_path, "train.txt", "文登区公路将封闭施工\tnews_car\n新款手机发布\tnews_tech\n")
    assert read_tsv(path) == [
        Example("文登区公路将封闭施工", label="news_car"),
        Example("新款手机发布", label="news_tech"),
    ]


def test_tsv_reads_text_pair_rows(tmp_path):
    path = write_text(tmp_path, "train.txt", "今天天气好\t明天下雨吗\t不相关\n")
    assert read_tsv(path) == [Example("今天天气好", "明天下雨吗", "不相关")]


def test_tsv_with_bom_crlf_blank_lines_and_padding(tmp_path):
    data = "\ufeff 汽车降价 \t news_car \r\n\r\n   \r\n手机\tnews_tech\r\n".encode("utf-8")
    path = write_bytes(tmp_path, "train.txt", data)
    assert read_tsv(path) == [Example("汽车降价", label="news_car"), Example("手机", label="news_tech")]


def test_tsv_text_may_contain_unicode_line_separator(tmp_path):
    path = write_text(tmp_path, "train.txt", "上半句\u2028下半句\tnews_car\n")
    assert read_tsv(path) == [Example("上半句\u2028下半句", label="news_car")]


def test_tsv_unlabeled_one_text_per_line(tmp_path):
    path = write_text(tmp_path, "data.txt", "第一条\n\n第二条\n")
    assert read_tsv(path, labeled=False) == [Example("第一条"), Example("第二条")]


def test_tsv_unlabeled_text_pairs(tmp_path):
    path = write_text(tmp_path, "data.txt", "甲\t乙\n丙\t丁\n")
    assert read_tsv(path, labeled=False) == [Example("甲", "乙"), Example("丙", "丁")]


def test_tsv_row_with_wrong_column_count_names_file_and_line(tmp_path):
    lines = ["一\tnews_car"] * 6 + ["二\t三\tnews_car"]
    path = write_text(tmp_path, "train.txt", "\n".join(lines) + "\n")
    with pytest.raises(DataError, match=where(path, 7) + re.escape(
        "expected 2 tab-separated columns (text, label), found 3 (line 1 has 2)"
    )):
        read_tsv(path)


def test_tsv_first_line_with_one_column_is_rejected_when_labeled(tmp_path):
    path = write_text(tmp_path, "train.txt", "\n只有文本\n")
    with pytest.raises(DataError, match=where(path, 2) + "expected 2 or 3 tab-separated columns .* found 1"):
        read_tsv(path)


def test_tsv_unlabeled_pair_file_rejects_single_text_row(tmp_path):
    path = write_text(tmp_path, "data.txt", "甲\t乙\n丙\n")
    with pytest.raises(DataError, match=where(path, 2) + re.escape(
        "expected 2 tab-separated columns (text_a, text_b), found 1"
    )):
        read_tsv(path, labeled=False)


def test_tsv_empty_text_names_file_and_line(tmp_path):
    path = write_text(tmp_path, "dev.txt", "一\tnews_car\n二\tnews_car\n  \tnews_car\n")
    with pytest.raises(DataError, match=where(path, 3) + "empty text$"):
        read_tsv(path)


def test_tsv_empty_text_b_names_the_field(tmp_path):
    path = write_text(tmp_path, "dev.txt", "甲\t \tx\n")
    with pytest.raises(DataError, match=where(path, 1) + "empty text_b$"):
        read_tsv(path)


def test_tsv_empty_label_names_file_and_line(tmp_path):
    path = write_text(tmp_path, "train.txt", "一\tnews_car\n二\t \n")
    with pytest.raises(DataError, match=where(path, 2) + "empty label$"):
        read_tsv(path)


def test_tsv_unknown_label_lists_known_labels(tmp_path):
    lines = ["一\tnews_car"] * 8 + ["二\tnews_carr"]
    path = write_text(tmp_path, "train.txt", "\n".join(lines))
    with pytest.raises(DataError, match=where(path, 9) + re.escape(
        "unknown label 'news_carr' (known: news_car, news_tech, news_sports)"
    )):
        read_tsv(path, labels=LABELS)


def test_tsv_unknown_label_message_lists_at_most_ten_labels(tmp_path):
    labels = [f"label_{i:02d}" for i in range(15)]
    path = write_text(tmp_path, "train.txt", "一\tother\n")
    with pytest.raises(DataError) as info:
        read_tsv(path, labels=labels)
    message = str(info.value)
    assert message.endswith("(known: " + ", ".join(labels[:10]) + ", ...)")
    assert "label_10" not in message


def test_tsv_labels_are_not_checked_without_label_list(tmp_path):
    path = write_text(tmp_path, "train.txt", "一\tanything\n")
    assert read_tsv(path)[0].label == "anything"


def test_tsv_invalid_utf8_names_line(tmp_path):
    path = write_bytes(tmp_path, "train.txt", "一\tnews_car\n".encode("utf-8") + "二\tnews_car\n".encode("gbk"))
    with pytest.raises(DataError, match=where(path, 2) + "not valid UTF-8"):
        read_tsv(path)


@pytest.mark.parametrize("content", ["", "\n\n  \r\n"])
def test_tsv_empty_file_is_an_error(tmp_path, content):
    path = write_text(tmp_path, "train.txt", content)
    with pytest.raises(DataError, match=re.escape(f"{path}: no examples")):
        read_tsv(path)


def test_tsv_missing_file_names_path(tmp_path):
    path = tmp_path / "nope.txt"
    with pytest.raises(DataError, match=re.escape(f"{path}: file does not exist")):
        read_tsv(path)


def test_data_error_is_a_value_error(tmp_path):
    with pytest.raises(ValueError):
        read_tsv(tmp_path / "nope.txt")
    assert issubclass(DataError, FewshotError)


def test_read_lines_numbers_lines_across_line_endings(tmp_path):
    path = write_bytes(tmp_path, "x.txt", b"\xef\xbb\xbfa\r\nb\rc\n\nd")
    assert list(read_lines(path)) == [(1, "a"), (2, "b"), (3, "c"), (4, ""), (5, "d")]


# --- read_jsonl ------------------------------------------------------------------------

TNEWS_ROW = {"label": "107", "label_desc": "news_car", "sentence": " 文登区这些公路将封闭施工 ", "keywords": "", "id": 3301}


def write_jsonl(tmp_path, rows, name="train.json"):
    lines = [row if isinstance(row, str) else json.dumps(row, ensure_ascii=False) for row in rows]
    return write_text(tmp_path, name, "\n".join(lines) + "\n")


def test_jsonl_reads_fewclue_layout_by_default(tmp_path):
    path = write_jsonl(tmp_path, [TNEWS_ROW, "", {**TNEWS_ROW, "label_desc": "news_tech", "sentence": "手机"}])
    assert read_jsonl(path) == [Example("文登区这些公路将封闭施工", label="news_car"), Example("手机", label="news_tech")]


def test_jsonl_field_mapping_and_numbers_become_strings(tmp_path):
    path = write_jsonl(tmp_path, [{"q": "问题", "a": 42, "y": 1}])
    fields = {"text_a": "q", "text_b": "a", "label": "y"}
    assert read_jsonl(path, fields=fields) == [Example("问题", "42", "1")]


def test_jsonl_unlabeled_ignores_missing_label_key(tmp_path):
    path = write_jsonl(tmp_path, [{"id": 0, "sentence": "没有标签"}])
    assert read_jsonl(path, labeled=False) == [Example("没有标签")]


def test_jsonl_invalid_json_names_file_and_line(tmp_path):
    path = write_jsonl(tmp_path, [TNEWS_ROW, '{"sentence": "x", '])
    with pytest.raises(DataError, match=where(path, 2) + "invalid JSON"):
        read_jsonl(path)


def test_jsonl_line_that_is_not_an_object_is_rejected(tmp_path):
    path = write_jsonl(tmp_path, [TNEWS_ROW, "[1, 2]"])
    with pytest.raises(DataError, match=where(path, 2) + "expected a JSON object, found array"):
        read_jsonl(path)


def test_jsonl_missing_key_names_key_and_field(tmp_path):
    path = write_jsonl(tmp_path, [{"sentence": "x"}])
    with pytest.raises(DataError, match=where(path, 1) + re.escape("missing key 'label_desc' (for label)")):
        read_jsonl(path)


def test_jsonl_empty_text_names_line(tmp_path):
    path = write_jsonl(tmp_path, [TNEWS_ROW, TNEWS_ROW, {**TNEWS_ROW, "sentence": "  "}])
    with pytest.raises(DataError, match=where(path, 3) + "empty text$"):
        read_jsonl(path)


def test_jsonl_unknown_label_names_line(tmp_path):
    path = write_jsonl(tmp_path, [{**TNEWS_ROW, "label_desc": "news_carr"}])
    with pytest.raises(DataError, match=where(path, 1) + "unknown label 'news_carr'"):
        read_jsonl(path, labels=LABELS)


def test_jsonl_null_text_is_rejected(tmp_path):
    path = write_jsonl(tmp_path, [{**TNEWS_ROW, "sentence": None}])
    with pytest.raises(DataError, match=where(path, 1) + "key 'sentence' must be a string or number, found null"):
        read_jsonl(path)


def test_jsonl_empty_file_is_an_error(tmp_path):
    path = write_text(tmp_path, "train.json", "\n")
    with pytest.raises(DataError, match="no examples"):
        read_jsonl(path)


def test_fewclue_tnews_train_split_reads_240_examples_with_15_labels():
    path = FEWCLUE_TNEWS / "train_0.json"
    if not path.exists():
        pytest.skip(f"FewCLUE data not found at {FEWCLUE_TNEWS}")
    examples = read_jsonl(path)
    assert len(examples) == 240
    assert len({example.label for example in examples}) == 15
    assert all(example.text_a and example.text_b is None for example in examples)


# --- read_examples ---------------------------------------------------------------------


def test_read_examples_dispatches_on_extension(tmp_path):
    tsv = write_text(tmp_path, "train.txt", "一\tnews_car\n")
    jsonl = write_jsonl(tmp_path, [TNEWS_ROW], name="train.jsonl")
    assert read_examples(tsv) == [Example("一", label="news_car")]
    assert read_examples(jsonl, labels=LABELS) == [Example("文登区这些公路将封闭施工", label="news_car")]


def test_read_examples_missing_file_names_path(tmp_path):
    path = tmp_path / "train.json"
    with pytest.raises(DataError, match=re.escape(f"{path}: file does not exist")):
        read_examples(path)


# --- to_examples -----------------------------------------------------------------------


def test_to_examples_reads_an_existing_path(tmp_path):
    path = write_text(tmp_path, "train.txt", "一\tnews_car\n")
    assert to_examples(str(path)) == to_examples(path) == [Example("一", label="news_car")]


def test_to_examples_string_that_is_not_a_file_is_an_error():
    with pytest.raises(DataError, match="这不是文件.txt: file does not exist"):
        to_examples("这不是文件.txt")


def test_to_examples_accepts_unlabeled_strings():
    assert to_examples([" 一 ", "二"], labeled=False) == [Example("一"), Example("二")]


def test_to_examples_labeled_two_tuple_is_text_and_label():
    assert to_examples([("一", "news_car"), ["二", "news_tech"]]) == [
        Example("一", label="news_car"),
        Example("二", label="news_tech"),
    ]


def test_to_examples_unlabeled_two_tuple_is_text_pair():
    assert to_examples([("甲", "乙")], labeled=False) == [Example("甲", "乙")]
    assert to_examples([("甲",)], labeled=False) == [Example("甲")]


def test_to_examples_three_tuples_dicts_and_examples():
    rows = [("甲", "乙", "x"), {"text_a": "丙", "text_b": "丁", "label": "y", "id": 7}, Example("戊", "己", "x")]
    assert to_examples(rows) == [Example("甲", "乙", "x"), Example("丙", "丁", "y"), Example("戊", "己", "x")]


def test_to_examples_errors_name_the_row_index():
    with pytest.raises(DataError, match=r"^row 3: empty text$"):
        to_examples([("一", "a"), ("二", "a"), ("三", "a"), (" ", "a")])


def test_to_examples_unknown_label_names_row():
    with pytest.raises(DataError, match=re.escape("row 1: unknown label 'news_carr' (known: news_car,")):
        to_examples([("一", "news_car"), ("二", "news_carr")], labels=LABELS)


def test_to_examples_bare_string_needs_labeled_false():
    with pytest.raises(DataError, match="row 0: a bare string has no label"):
        to_examples(["一"])


def test_to_examples_missing_label_names_row():
    with pytest.raises(DataError, match="^row 1: missing label$"):
        to_examples([Example("一", label="a"), Example("二")])


def test_to_examples_wrong_tuple_length_names_row():
    with pytest.raises(DataError, match=re.escape("row 0: expected (text,) or (text_a, text_b), found 3 items")):
        to_examples([("甲", "乙", "x")], labeled=False)


def test_to_examples_rows_must_agree_on_text_b():
    with pytest.raises(DataError, match="^row 1: has no text_b but row 0 does"):
        to_examples([("甲", "乙", "x"), ("丙", "x")])


def test_to_examples_non_string_text_names_row():
    with pytest.raises(DataError, match="row 0: text must be a string, found int"):
        to_examples([(5, "x")])


def test_to_examples_empty_list_is_an_error():
    with pytest.raises(DataError, match="no examples"):
        to_examples([])
