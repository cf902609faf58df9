"""``fewshot-serve``: an HTTP server with dynamic batching over an exported bundle (no Paddle import).

    fewshot-serve bundles/tnews --port 8000 --threads 2 --max-batch 32 --max-wait-ms 5
    curl -s localhost:8000/v1/predict -d '{"texts": ["文登区这些公路及危桥将进入封闭施工"], "top_k": 2}'

Needs ``pip install "fewshot[serve]"`` (Starlette, uvicorn, prometheus_client).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from typing import List, Optional

from ..errors import FewshotError
from ..runtime import OnnxPredictor
from .common import run

def _settings_fields() -> List[str]:
    from ..runtime.serve.settings import ServeSettings

    return [f.name for f in dataclasses.fields(ServeSettings)]


def build_parser() -> argparse.ArgumentParser:
    from ..runtime.serve.settings import ServeSettings
    from .options import add_dataclass_options, add_engine_options

    p = argparse.ArgumentParser(prog="fewshot-serve", description="Serve an exported bundle over HTTP with dynamic batching.")
    p.add_argument("bundle", help="directory written by fewshot-export")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8000, help="port to listen on (default 8000)")
    p.add_argument("--threads", type=int, default=None, help="onnxruntime CPU threads (default: all cores available)")
    add_engine_options(p)
    p.add_argument("--spin", action="store_true",
                   help="let onnxruntime's idle threads spin between batches (they then take CPU from the HTTP loop)")
    p.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    add_dataclass_options(p, ServeSettings, _settings_fields())
    return p


def main(argv: Optional[List[str]] = None) -> int:
    """``fewshot-serve``: exit status 0 after a drained shutdown, 2 with one error line for bad input."""
    return run(lambda: _serve(argv), "fewshot-serve")


def _serve(argv: Optional[List[str]]) -> int:
    try:
        parser = build_parser()
        from ..runtime.serve import ServeSettings, create_app, serve
    except ImportError as exc:
        missing = (exc.name or "a [serve] package").split(".")[0]
        raise FewshotError(f"fewshot-serve needs {missing}, which is not installed: pip install 'fewshot[serve]'") from None
    args = parser.parse_args(argv)
    # A request brings a few texts: tokenizing them on the event loop's thread is cheaper than waking
    # the tokenizers library's thread pool, whose threads would compete with onnxruntime's for the cores.
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    settings = ServeSettings(**{name: getattr(args, name) for name in _settings_fields()})
    predictor = OnnxPredictor(args.bundle, threads=args.threads, batch_size=settings.max_batch, precision=args.precision,
                              spin=args.spin, engine=args.engine, throughput=False)
    running = f"{predictor.engine.name} {predictor.precision.name}"
    print(f"fewshot-serve: {args.bundle} ({predictor.task.kind}, {len(predictor.labels)} labels, {running}) "
          f"on http://{args.host}:{args.port}; max batch {settings.max_batch} texts, max wait {settings.max_wait_ms} ms, "
          f"queue {settings.max_queue} texts", file=sys.stderr, flush=True)
    return serve(create_app(predictor, settings), args.host, args.port, settings.drain_timeout, args.log_level)


if __name__ == "__main__":
    sys.exit(main())
