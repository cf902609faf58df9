"""Time ``PromptClassifier.explain`` on 300 TNEWS test titles: is it cheap enough for a report?

    flock /tmp/fewshot-heavy.lock python benchmarks/explain_speed.py output/analysis/tnews-clf

Needs a saved TNEWS classifier (e.g. ``fewshot-train ... --output output/analysis/tnews-clf``).
Prints the CPU, cores and thread settings, then wall and CPU seconds at two batch sizes.
"""

import sys
import time

from _paths import ROOT, TNEWS

TEST = TNEWS / "test_public.json"


def main() -> None:
    sys.path.insert(0, str(ROOT))
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from _machine import machine_line

    from fewshot.classifier import PromptClassifier
    from fewshot.data import read_examples

    print(machine_line())
    clf = PromptClassifier.load(sys.argv[1])
    rows = read_examples(TEST, labels=clf.task.check, fields={"text_a": "sentence", "label": "label_desc"})[:300]
    chars = sum(len(e.text_a) for e in rows)
    for batch in (32, 64):
        began, cpu = time.perf_counter(), time.process_time()
        clf.explain(rows, batch_size=batch)
        print(f"explain 300 titles ({chars} characters, {chars + 300} model rows), batch {batch}: "
              f"wall {time.perf_counter() - began:.1f} s, CPU {time.process_time() - cpu:.1f} s")


if __name__ == "__main__":
    main()
