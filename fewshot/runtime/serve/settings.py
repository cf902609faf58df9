"""``ServeSettings``: the one source of ``fewshot-serve``'s batching, queue and request-limit defaults.

>>> ServeSettings(max_batch=64).max_wait_ms
5.0
>>> ServeSettings(max_queue=10, max_texts=64)
Traceback (most recent call last):
FewshotError: --max-queue 10 is smaller than --max-texts 64: a request of 64 texts could never be queued
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ...errors import FewshotError
from ...cpu_env import usable_cores
from ...numbers import check_number


def _option(default: object, help_text: str) -> object:
    return field(default=default, metadata={"help": help_text})


@dataclass(frozen=True)
class ServeSettings:
    """How requests are gathered into batches, how many may wait, and how large one may be."""

    max_batch: int = _option(32, "texts gathered into one onnxruntime batch at most")
    max_wait_ms: float = _option(5.0, "how long the oldest queued request waits for its batch to fill (ms)")
    parallel_batches: int = _option(1, "batches run at the same time, each on its own thread with --threads "
                                       "onnxruntime threads (on CPU: one per core with --threads 1 is fastest)")
    max_queue: int = _option(1024, "texts waiting for a batch at most; beyond it requests get 503 with Retry-After")
    max_texts: int = _option(128, "texts in one request at most (more: 413)")
    max_chars: int = _option(2000, "characters in one text at most (more: 422)")
    drain_timeout: float = _option(30.0, "on SIGTERM, seconds to finish queued and running requests before exiting")
    read_timeout: float = _option(30.0, "seconds a client has to send a request's headers, and then its body (more: "
                                        "the connection is closed / 408)")
    keep_alive_timeout: float = _option(5.0, "seconds an idle keep-alive connection stays open")
    max_connections: int = _option(2048, "open connections and requests in progress at most; beyond it new "
                                         "requests get 503 at once")

    def __post_init__(self) -> None:
        for name in ("max_batch", "parallel_batches", "max_queue", "max_texts", "max_chars", "max_connections"):
            check_number(f"--{name.replace('_', '-')}", getattr(self, name), low=1)
        for name in ("max_wait_ms", "drain_timeout"):
            check_number(f"--{name.replace('_', '-')}", getattr(self, name), low=0)
        for name in ("read_timeout", "keep_alive_timeout"):
            check_number(f"--{name.replace('_', '-')}", getattr(self, name), low=0, low_open=True)
        check_number("--parallel-batches", self.parallel_batches, high=usable_cores())  # more only compete for cores
        if self.max_queue < self.max_texts:
            raise FewshotError(f"--max-queue {self.max_queue} is smaller than --max-texts {self.max_texts}: "
                               f"a request of {self.max_texts} texts could never be queued")

    @property
    def max_body_bytes(self) -> int:
        """The largest request body that can hold ``max_texts`` pairs of ``max_chars`` characters
        (12 bytes a character covers JSON's ``\\ud83d\\ude00`` escapes), plus room for the keys."""
        return self.max_texts * (2 * 12 * self.max_chars + 64) + 1024
