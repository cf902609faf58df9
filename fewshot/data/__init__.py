"""Text rows and label files → ``Example`` objects and label words (no Paddle).

>>> read_examples("train.txt")[0]
Example(text_a='文登区这些公路将封闭施工', text_b=None, label='news_car')
>>> read_label_words("label.txt")
{'news_car': ['汽车'], 'news_tech': ['科技']}
"""

from .examples import Example, KnownLabels, LabelSpec, make_example, read_examples, read_jsonl, read_tsv, to_examples
from .folder import FOLDER_FILES, PREDICTIONS_NAME, TaskFolder, write_predictions
from .fields import DEFAULT_JSON_FIELDS, clean_string, delimiter_hint, format_fields, parse_fields
from .labels import label_lines, label_words_from_mapping, read_label_words, write_label_words
from .lines import PathLike, is_json_lines, iter_lines, open_input, parse_json_object, read_lines

__all__ = [
    "DEFAULT_JSON_FIELDS", "Example", "FOLDER_FILES", "PREDICTIONS_NAME", "KnownLabels", "LabelSpec", "PathLike", "clean_string", "delimiter_hint",
    "format_fields", "is_json_lines", "iter_lines", "label_lines", "label_words_from_mapping", "make_example",
    "open_input", "parse_fields", "parse_json_object", "read_examples", "read_jsonl", "read_label_words",
    "read_lines", "read_tsv", "TaskFolder", "to_examples", "write_predictions", "write_label_words",
]
