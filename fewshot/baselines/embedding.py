"""The baselines users compare against: sentence embeddings of the same PLM + logistic regression.

- ``embed-lr``: mean-pooled last-layer states of the frozen PLM, then scikit-learn's logistic regression
  (the C-MTEB classification protocol);
- ``setfit``: the same, after a SetFit-style contrastive fine-tuning of the PLM on pairs of training
  texts (cosine similarity pushed to 1 for pairs of one label, to 0 for pairs of two).

>>> clf = EmbeddingClassifier("ernie-3.0-base-zh", labels=["news_car", "news_sports"], contrastive_steps=0)
>>> clf.fit([("这辆车很省油", "news_car"), ("球队赢了", "news_sports")])["train_rows"]
2
>>> clf.predict(["新车上市"])
['news_car']
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple, Union

import numpy as np
import paddle
from safetensors.numpy import load_file as load_safetensors
from safetensors.numpy import save_file as save_safetensors
from sklearn.linear_model import LogisticRegression

from ..atomic import atomic_directory, recover
from ..data import Example, read_examples, to_examples
from ..data.inputs import TextInputs, prediction_pairs
from ..documents import json_text, read_json_document
from ..errors import DataError, FewshotError
from ..numbers import check_number
from ..prompt.pretrained import load_checked_pretrained, load_pretrained
from ..tasks import LabelsArg, build_task
from ..tasks.single_label import SingleLabelTask
from ..training.rng import seeded

CONFIG_NAME = "fewshot_baseline.json"
HEAD_NAME = "logistic_regression.safetensors"
PLM_DIR = "plm"
FORMAT_VERSION = 1
SETTINGS = ("max_seq_length", "contrastive_steps", "pairs_per_step", "learning_rate", "regularization", "batch_size",
            "seed")
"""The constructor's settings, saved and restored as they were given."""
DataArg = Union[str, "os.PathLike[str]", Iterable[Any]]


class EmbeddingClassifier:
    """Mean-pooled PLM embeddings + logistic regression; ``contrastive_steps > 0`` fine-tunes the PLM
    contrastively first (SetFit). Single-label; rows may be pairs (``text_a``, ``text_b``)."""

    def __init__(self, model: str, labels: LabelsArg, max_seq_length: int = 128, contrastive_steps: int = 0,
                 pairs_per_step: int = 16, learning_rate: float = 2e-5, regularization: float = 1.0,
                 batch_size: int = 32, seed: int = 0, plm: Any = None, tokenizer: Any = None):
        self.model_name = str(model)
        _, self.task = build_task(labels)
        if not isinstance(self.task, SingleLabelTask):
            raise FewshotError("the embedding baselines are single-label only")
        self.max_seq_length = int(check_number("max_seq_length", max_seq_length, low=8, high=4096))
        self.contrastive_steps = int(check_number("contrastive_steps", contrastive_steps, low=0))
        self.pairs_per_step = int(check_number("pairs_per_step", pairs_per_step, low=2))
        self.learning_rate = float(check_number("learning_rate", learning_rate, low=0, low_open=True, high=1))
        self.regularization = float(check_number("regularization", regularization, low=0, low_open=True))
        self.batch_size = int(check_number("batch_size", batch_size, low=1))
        self.seed = int(seed)
        self.uses_text_b = False
        self.head_: Optional[LogisticRegression] = None
        self.train_metrics: Dict[str, Any] = {}
        if plm is None:
            plm, tokenizer = load_pretrained(self.model_name)
        self.plm = plm
        self.encoder = plm.ernie
        self.tokenizer = tokenizer

    @property
    def method(self) -> str:
        return "setfit" if self.contrastive_steps else "embed-lr"

    @property
    def classes_(self) -> np.ndarray:
        return np.asarray(self.task.labels)

    def _examples(self, data: DataArg) -> List[Example]:
        if isinstance(data, (str, os.PathLike)):
            return read_examples(data, labels=self.task.check)
        return to_examples(data, labels=self.task.check)

    def _pooled(self, pairs: Sequence[Tuple[str, Optional[str]]]) -> paddle.Tensor:
        """Mean of the last layer's states over each input's tokens: ``[len(pairs), hidden]``."""
        a = [p[0] for p in pairs]
        b = [p[1] for p in pairs] if any(p[1] is not None for p in pairs) else None
        batch = self.tokenizer(a, text_pair=b, max_length=self.max_seq_length, truncation=True, padding=True,
                               return_attention_mask=True, return_tensors="pd")
        mask = batch["attention_mask"].astype("float32")
        states = self.encoder(batch["input_ids"], token_type_ids=batch["token_type_ids"],
                              attention_mask=batch["attention_mask"])[0]
        return (states * mask.unsqueeze(-1)).sum(axis=1) / mask.sum(axis=1, keepdim=True)

    def embed(self, inputs: TextInputs) -> np.ndarray:
        """Sentence embeddings ``[n, hidden]`` of texts or ``(text_a, text_b)`` pairs."""
        pairs = prediction_pairs(inputs, self.uses_text_b)
        self.encoder.eval()
        out = []
        with paddle.no_grad():
            for start in range(0, len(pairs), self.batch_size):
                out.append(self._pooled(pairs[start:start + self.batch_size]).numpy())
        return np.concatenate(out) if out else np.zeros((0, 0), dtype=np.float32)

    def _contrastive(self, examples: Sequence[Example]) -> List[float]:
        """SetFit's stage one: cosine similarity of random pairs regressed onto same-label (1) / other (0)."""
        by_label: Dict[str, List[int]] = {}
        for i, e in enumerate(examples):
            by_label.setdefault(e.label, []).append(i)
        if len(by_label) < 2:
            raise DataError("setfit needs training rows of at least two labels")
        rng = random.Random(self.seed)
        optimizer = paddle.optimizer.AdamW(learning_rate=self.learning_rate, parameters=self.encoder.parameters())
        self.encoder.train()
        losses = []
        for _ in range(self.contrastive_steps):
            left, right, same = [], [], []
            for k in range(self.pairs_per_step):
                i = rng.randrange(len(examples))
                pool = by_label[examples[i].label] if k % 2 == 0 else \
                    [j for lab, ids in by_label.items() if lab != examples[i].label for j in ids]
                j = rng.choice(pool)
                left.append((examples[i].text_a, examples[i].text_b))
                right.append((examples[j].text_a, examples[j].text_b))
                same.append(1.0 if k % 2 == 0 else 0.0)
            cosine = paddle.nn.functional.cosine_similarity(self._pooled(left), self._pooled(right), axis=-1)
            loss = paddle.nn.functional.mse_loss(cosine, paddle.to_tensor(same, dtype="float32"))
            loss.backward()
            optimizer.step()
            optimizer.clear_grad()
            losses.append(float(loss))
        return losses

    def fit(self, train: DataArg) -> Dict[str, Any]:
        """Train on labelled rows (a file path or rows); returns the metrics: ``{"train_rows": 48, ...}``."""
        examples = self._examples(train)
        self.uses_text_b = examples[0].text_b is not None
        with seeded(self.seed):
            losses = self._contrastive(examples) if self.contrastive_steps else []
        features = self.embed(examples)
        gold = [self.task.labels.index(e.label) for e in examples]
        if len(set(gold)) < 2:
            raise DataError("the logistic regression needs training rows of at least two labels")
        self.head_ = LogisticRegression(C=self.regularization, max_iter=1000, random_state=self.seed)
        self.head_.fit(features, gold)
        self.train_metrics = {"method": self.method, "train_rows": len(examples),
                              "contrastive_loss": losses[-1] if losses else None}
        return dict(self.train_metrics)

    def predict_proba(self, inputs: TextInputs) -> np.ndarray:
        """``[n, num_labels]`` probabilities, columns in ``classes_`` order (labels never seen in training: 0)."""
        if self.head_ is None:
            raise FewshotError("fit or load the classifier before predicting")
        probs = np.zeros((0, len(self.task.labels)), dtype=np.float32)
        features = self.embed(inputs)
        if len(features):
            probs = np.zeros((len(features), len(self.task.labels)), dtype=np.float32)
            probs[:, self.head_.classes_] = self.head_.predict_proba(features)
        return probs

    def predict(self, inputs: TextInputs) -> List[str]:
        return self.task.decode(self.predict_proba(inputs))

    def evaluate(self, data: DataArg, report: bool = False) -> Dict[str, Any]:
        """The task's metrics (accuracy, macro-F1), computed as ``PromptClassifier.evaluate`` does."""
        examples = self._examples(data)
        return self.task.metrics(self.predict_proba(examples), [e.label for e in examples], report=report)

    def score(self, data: DataArg) -> float:
        return float(self.evaluate(data)["accuracy"])

    def save(self, directory: Union[str, "os.PathLike[str]"]) -> Path:
        """Write the (fine-tuned) PLM as safetensors, the regression as safetensors, the settings as JSON."""
        if self.head_ is None:
            raise FewshotError("fit the classifier before saving it")
        config = {"format_version": FORMAT_VERSION, "method": self.method, "base_model": self.model_name,
                  "labels": self.task.labels, **{k: getattr(self, k) for k in SETTINGS},
                  "uses_text_b": self.uses_text_b, "classes": [int(c) for c in self.head_.classes_],
                  "train_metrics": self.train_metrics}
        with atomic_directory(directory, "the classifier", marker=CONFIG_NAME) as tmp:
            self.plm.save_pretrained(str(tmp / PLM_DIR), safe_serialization=True)
            self.tokenizer.save_pretrained(str(tmp / PLM_DIR))
            # safetensors writes raw buffers: scikit-learn's coef_ may be Fortran-ordered
            save_safetensors({"coef": np.ascontiguousarray(self.head_.coef_, dtype=np.float64),
                              "intercept": np.ascontiguousarray(self.head_.intercept_, dtype=np.float64)},
                             str(tmp / HEAD_NAME))
            (tmp / CONFIG_NAME).write_text(json_text(config), encoding="utf-8")
        return Path(directory)

    @classmethod
    def load(cls, directory: Union[str, "os.PathLike[str]"]) -> "EmbeddingClassifier":
        """Read what :meth:`save` wrote, under fewshot's loading policy (``fewshot.loading``): safetensors
        confined to the directory, every tensor checked, never a pickle."""
        directory = Path(directory)
        recover(directory)
        keys = ("method", "base_model", "labels", "classes", *SETTINGS)
        config = read_json_document(directory / CONFIG_NAME, keys, FORMAT_VERSION,
                                    missing_hint=f"not an embedding baseline saved by fewshot (no {CONFIG_NAME})")
        plm, tokenizer = load_checked_pretrained(directory / PLM_DIR)
        settings = {k: config[k] for k in SETTINGS}
        clf = cls(config["base_model"], labels=config["labels"], plm=plm, tokenizer=tokenizer, **settings)
        clf.uses_text_b = bool(config.get("uses_text_b", False))
        head = load_safetensors(str(directory / HEAD_NAME))
        clf.head_ = LogisticRegression(C=clf.regularization)
        clf.head_.classes_ = np.asarray(config["classes"])
        clf.head_.coef_, clf.head_.intercept_ = head["coef"], head["intercept"]
        clf.train_metrics = config.get("train_metrics", {})
        return clf
