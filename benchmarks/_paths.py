"""Where every benchmark finds the project, ``../shared`` and its data, and the TNEWS prompt they share.

>>> TNEWS / "train_0.json"
PosixPath('/work/shared/fewclue/tnews/train_0.json')
"""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
TNEWS = SHARED / "fewclue" / "tnews"
TINY_ERNIE = SHARED / "models" / "zh-ernie-tiny"
TNEWS_LABELS = ROOT / "data" / "tnews" / "label.txt"
HIERARCHY = ROOT / "data" / "hierarchical"
TNEWS_TEMPLATE = "{'text': 'text_a'}这条新闻的主题是{'mask'}{'mask'}"
"""The hard prompt of the TNEWS runs: two masks for the two-character words of ``TNEWS_LABELS``."""
