"""A list of prepared rows as a Paddle ``Dataset`` (encoded prompt examples, masked held-out sequences)."""

from __future__ import annotations

from typing import Any, Sequence

from paddle.io import Dataset


class ListDataset(Dataset):
    """``ListDataset([{"input_ids": [...]}, ...])[0]`` → the first row, unchanged."""

    def __init__(self, rows: Sequence[Any]):
        self.rows = list(rows)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> Any:
        return self.rows[index]
