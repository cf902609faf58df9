"""See and fix your data: likely label errors, what to label next, explanations, one HTML report.

- ``label_issues``: k-fold out-of-fold probabilities ranked by confident learning (cleanlab);
- ``selection``: uncertainty and diversity sampling of unlabelled texts;
- ``explain``: occlusion attributions through the template (``PromptClassifier.explain``);
- ``report``: a self-contained HTML report (matplotlib pictures embedded).

Temperature scaling and the calibration error are the task's (``fewshot.tasks.calibration``).
cleanlab and matplotlib come with ``pip install "fewshot[analysis]"``.
"""
