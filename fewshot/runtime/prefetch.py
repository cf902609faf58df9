"""``prefetched``: the items of an iterator computed one ahead on a background thread.

The next batch is tokenised (the ``tokenizers`` library and numpy release the GIL) while the engine
runs the current one::

>>> list(prefetched(encode(chunk) for chunk in chunks))    # the same items, in order
[rows1, rows2, rows3]

At most one item waits; an exception raised while producing an item is raised where that item
would have been taken; leaving the loop early stops after the item in progress.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Iterable, Iterator, TypeVar

T = TypeVar("T")
_END = object()


def prefetched(items: Iterable[T]) -> Iterator[T]:
    """The items of ``items`` in order, each produced on a helper thread while the previous one is used."""
    source = iter(items)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="fewshot-prefetch") as pool:
        pending = pool.submit(next, source, _END)
        while True:
            item = pending.result()
            if item is _END:
                return
            pending = pool.submit(next, source, _END)
            yield item
