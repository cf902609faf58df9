"""What every fewshot command shares: bad input is one ``prog: error: …`` line and exit status 2.

>>> run(lambda: 0, "fewshot-predict")
0
"""

from __future__ import annotations

import logging
import sys
from typing import Callable

from ..errors import FewshotError


def run(main: Callable[[], int], prog: str) -> int:
    """Run ``main``; a ``FewshotError`` or a write failure becomes one line on stderr and status 2,
    Ctrl-C status 130 — never a traceback for the user's input."""
    try:
        return main()
    except FewshotError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"{prog}: error: {exc.filename or ''}: {exc.strerror or exc}".replace(": : ", ": "), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{prog}: interrupted; nothing was replaced", file=sys.stderr)
        return 130


def show_fewshot_logs() -> None:
    """fewshot's own INFO messages (``model_320 seed 0: accuracy 0.4512``) on stderr, nobody else's."""
    logger = logging.getLogger("fewshot")
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
    logger.setLevel(logging.INFO)
