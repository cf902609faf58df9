"""``DistillationConfig``: the one source of the defaults of learning from unlabelled text.

``fewshot-train --unlabeled FILE`` generates its options from these fields (``fewshot.cli.options``);
``fewshot.unlabeled.distill`` takes the dataclass.

>>> DistillationConfig(patterns=["{'text': 'text_a'}主题是{'mask'}{'mask'}", "{'mask'}{'mask'}：{'text': 'text_a'}"]).temperature
2.0
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Dict, List, Optional

from ..numbers import check_fields


@dataclass
class DistillationConfig:
    """Members, soft labels, generations and the distilled student (PET / iPET, Schick & Schütze 2021)."""

    patterns: List[str] = field(default_factory=list, metadata={
        "help": "template of a member; members are every pattern x label-word set x seed (default: --template)"})
    member_labels: List[str] = field(default_factory=list, metadata={
        "help": "label file of a member label-word set, same labels as --labels (default: --labels)"})
    seeds_per_member: int = field(default=1, metadata={
        "help": "members per pattern and label-word set, each trained with its own seed", "range": {"low": 1}})
    temperature: float = field(default=2.0, metadata={
        "help": "soft labels are the members' mean of softmax(logits / temperature)", "range": {"low": 0, "low_open": True}})
    generations: int = field(default=1, metadata={
        "help": "iPET generations: each after the first trains its members on the labelled rows plus "
                "pseudo-labels of the previous generation's other members", "range": {"low": 1}})
    ipet_growth: float = field(default=5.0, metadata={
        "help": "iPET: generation g adds growth**g times as many pseudo-labelled rows as labelled ones", "range": {"low": 0, "low_open": True}})
    student_model: Optional[str] = field(default=None, metadata={
        "help": "PLM of the distilled classifier, e.g. a smaller one (default: --model)"})
    student_template: Optional[str] = field(default=None, metadata={
        "help": "template of the distilled classifier (default: the first pattern)"})
    student_steps: int = field(default=1000, metadata={
        "help": "training steps of the distilled classifier over the unlabelled texts", "range": {"low": 1}})
    student_learning_rate: Optional[float] = field(default=None, metadata={
        "help": "learning rate of the distilled classifier (default: the members')", "range": {"low": 0, "low_open": True}})
    student_rdrop: Optional[bool] = field(default=None, metadata={
        "help": "R-Drop for the distilled classifier (default: as the members)"})
    labeled_repeats: int = field(default=1, metadata={
        "help": "times each labelled row appears among the soft-labelled ones when distilling", "range": {"low": 1}})
    pseudo_labels: int = field(default=0, metadata={
        "help": "self-training: distil on this many most confident texts with hard labels, class-balanced, "
                "instead of all texts with soft labels (0: soft labels)", "range": {"low": 0}})
    max_unlabeled: Optional[int] = field(default=None, metadata={
        "help": "use only the first N unlabelled texts", "range": {"low": 1}})
    keep_members: bool = field(default=True, metadata={
        "help": "keep the members' classifiers in OUTPUT/members (their predictions are kept either way)"})

    def __post_init__(self) -> None:
        check_fields(self)

    def config(self) -> Dict[str, Any]:
        return asdict(self)


OPTIONS = tuple(name for name in DistillationConfig.__dataclass_fields__)
"""Every field, in order: what ``fewshot-train --unlabeled`` offers."""
