"""The package's boundaries: the runtime side never imports Paddle; no module imports one above it."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "fewshot"
PADDLE_FREE = ("errors", "numbers", "cpu_env", "atomic", "documents", "inference", "data", "tasks", "template", "runtime", "integrations", "analysis", "cli/predict", "cli/serve", "cli/common")
"""Modules and subpackages a deployment image imports: they must not need Paddle or PaddleNLP."""
FORBIDDEN = ("paddle", "paddlenlp", "paddle2onnx")
LAYERS = ["errors", "numbers", "cpu_env", "atomic", "documents", "data", "tasks", "template", "runtime", "inference", "integrations", "analysis", "prompt",
          "training", "export", "classifier", "unlabeled", "pretraining", "testing", "cli"]
"""The flow, bottom to top: a module may import its own layer and the ones before it, never one after."""


def _modules(prefix: str):
    path = PACKAGE / prefix
    return sorted(path.rglob("*.py")) if path.is_dir() else [path.with_suffix(".py")]


def _imports(path: Path):
    """(imported module, line) of every import in a file, relative imports resolved to ``fewshot.…``."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = ["fewshot", *path.relative_to(PACKAGE).parent.parts]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join(base + ([node.module] if node.module else []))
            yield module, node.lineno


def _layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


@pytest.mark.parametrize("prefix", PADDLE_FREE)
def test_paddle_free_modules_import_nothing_of_paddle(prefix):
    for path in _modules(prefix):
        for module, line in _imports(path):
            top = module.split(".")[0]
            assert top not in FORBIDDEN, f"{path.relative_to(PACKAGE.parent)}:{line} imports {module}"
            if top == "fewshot":
                assert _layer(module) in [p.split("/")[0] for p in PADDLE_FREE] + ["__init__"], (
                    f"{path.relative_to(PACKAGE.parent)}:{line} imports {module}, which is not Paddle-free"
                )


def test_importing_the_runtime_loads_no_paddle_even_indirectly():
    code = (
        "import sys, fewshot, fewshot.runtime, fewshot.inference, fewshot.cli.predict, fewshot.data, fewshot.tasks, "
        "fewshot.template; bad = [m for m in sys.modules if m.split('.')[0] in ('paddle', 'paddlenlp')]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_no_module_imports_a_module_above_it_in_the_flow():
    for path in sorted(PACKAGE.rglob("*.py")):
        own = path.relative_to(PACKAGE).parts[0].removesuffix(".py")
        if own == "__init__":
            continue
        for module, line in _imports(path):
            if not module.startswith("fewshot.") and module != "fewshot":
                continue
            other = _layer(module)
            if other in ("__init__", own):
                continue
            assert LAYERS.index(other) < LAYERS.index(own), (
                f"{path.relative_to(PACKAGE.parent)}:{line}: {own} imports {module}, which comes after it in the flow"
            )


def test_nothing_branches_on_whether_there_is_a_task():
    offending = [f"{p.relative_to(PACKAGE.parent)}:{n}" for p in PACKAGE.rglob("*.py")
                 for n, text in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
                 if "task is None" in text or "task is not None" in text]
    assert not offending
