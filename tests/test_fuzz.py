"""Fuzzing what fewshot reads from users' files: the template parser, the label-file reader and the bundle
manifest loader answer any input with a value or a ``FewshotError`` (one line for the CLIs), never another
exception. Derandomized and bounded, so a run takes a few seconds and fails the same way every time.
"""

import json
import shutil

import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from fewshot.data import read_label_words  # noqa: E402
from fewshot.errors import FewshotError  # noqa: E402
from fewshot.runtime.manifest import manifest_task, read_manifest  # noqa: E402
from fewshot.runtime.predictor import bundle_encoder  # noqa: E402
from fewshot.template import parse_template  # noqa: E402

FUZZ = settings(max_examples=300, derandomize=True, deadline=None, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

TEMPLATE_PIECES = st.sampled_from([
    "{", "}", "'", '"', ":", ",", "text", "text_a", "text_b", "mask", "soft", "hard", "sep", "length", "encoder",
    "lstm", "mlp", "position", "truncate", "True", "None", "-1", "1000000000", "[", "]", "(", ")", "__import__",
    "主题", "{'mask'}", "{'text': 'text_a'}", "{'soft': '体育', 'length': 2}", "\\", "\x00", "\ud800", " ",
])
JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats(allow_nan=True) | st.text(max_size=8),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3),
    max_leaves=8,
)


@FUZZ
@given(st.lists(TEMPLATE_PIECES, max_size=12).map("".join) | st.text(max_size=40))
def test_the_template_parser_raises_only_fewshot_errors(text):
    try:
        parse_template(text)
    except FewshotError:
        pass


@FUZZ
@given(st.binary(max_size=200) | st.lists(st.sampled_from(["a", "b", "==", "\t", "\n", "\r", " ", "汽车", "\ufeff",
                                                           "\x00", "=", "#"]), max_size=20).map(lambda x: "".join(x).encode()))
def test_the_label_file_reader_raises_only_fewshot_errors(tmp_path, data):
    path = tmp_path / "label.txt"
    path.write_bytes(data)
    try:
        read_label_words(path)
    except FewshotError:
        pass


def _paths(value, prefix=()):
    """Every (path of keys/indices) inside a JSON value."""
    yield prefix
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _paths(item, (*prefix, index))


def _replace(document, path, value):
    if not path:
        return value
    target = document
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return document


@pytest.fixture(scope="module")
def manifest_paths(tiny_bundle):
    manifest = json.loads((tiny_bundle / "fewshot.json").read_text(encoding="utf-8"))
    return manifest, sorted(_paths(manifest), key=repr)


@settings(max_examples=200, derandomize=True, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_the_manifest_loader_raises_only_fewshot_errors(tiny_bundle, manifest_paths, tmp_path_factory, data):
    manifest, paths = manifest_paths
    path = data.draw(st.sampled_from(paths))
    changed = _replace(json.loads(json.dumps(manifest)), path, data.draw(JSON))
    bundle = tmp_path_factory.mktemp("fuzz")
    for name in ("vocab.txt", "model.onnx"):
        shutil.copy(tiny_bundle / name, bundle / name)
    (bundle / "fewshot.json").write_text(json.dumps(changed), encoding="utf-8")
    try:
        loaded = read_manifest(bundle)
        manifest_task(bundle, loaded)
        bundle_encoder(bundle, loaded)
    except FewshotError:
        pass
