"""``fewshot-serve``: an HTTP server with dynamic batching over an exported bundle (no Paddle import).

    fewshot-serve bundles/tnews --port 8000 --threads 2 --max-batch 32 --max-wait-ms 5
    curl -s localhost:8000/v1/predict -d '{"texts": ["文登区这些公路及危桥将进入封闭施工"], "top_k": 2}'
    FEWSHOT_API_KEY=s3cret fewshot-serve bundles/tnews --host 0.0.0.0 --ssl-certfile cert.pem --ssl-keyfile key.pem

Serves fewshot's ``/v1`` routes, the Open Inference Protocol (``/v2``, tritonclient) and TEI's
``/predict`` side by side. Needs ``pip install "fewshot[serve]"`` (Starlette, uvicorn, prometheus_client).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from pathlib import Path
from typing import List, Optional

from ..cpu_env import usable_cores
from ..errors import FewshotError
from ..numbers import int_option
from ..runtime import OnnxPredictor
from .common import run

API_KEY_ENV = "FEWSHOT_API_KEY"


def _settings_fields() -> List[str]:
    from ..runtime.serve.settings import ServeSettings

    return [f.name for f in dataclasses.fields(ServeSettings)]


def build_parser() -> argparse.ArgumentParser:
    from ..runtime.serve.settings import ServeSettings
    from .options import add_dataclass_options, add_engine_options

    p = argparse.ArgumentParser(prog="fewshot-serve", description="Serve an exported bundle over HTTP with dynamic batching.")
    p.add_argument("bundle", help="directory written by fewshot-export")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int_option(0, 65535), default=8000, help="port to listen on (default 8000; 0: any free one)")
    p.add_argument("--threads", type=int_option(1, usable_cores()), default=None,
                   help="CPU threads per batch (default: all usable cores)")
    add_engine_options(p)
    p.add_argument("--spin", action="store_true",
                   help="let onnxruntime's idle threads spin between batches (they then take CPU from the HTTP loop)")
    p.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    p.add_argument("--model-name", default=None, help="the bundle's name in the /v2 routes (default: its directory's name)")
    backend = p.add_argument_group("where the work runs")
    backend.add_argument("--backend", choices=["local", "ray"], default="local",
                         help="local: this process (default); ray: Ray Serve replicas behind Ray's HTTP proxy "
                              "(pip install 'fewshot[ray]')")
    backend.add_argument("--replicas", type=int_option(1, 1024), default=1,
                         help="--backend ray: replicas, each loading the bundle with --threads CPUs (default 1)")
    backend.add_argument("--ray-address", default=None, help="--backend ray: join this Ray cluster (default: start a local one)")
    auth = p.add_argument_group("authentication and TLS")
    keys = auth.add_mutually_exclusive_group()
    keys.add_argument("--api-key", default=None,
                      help=f"require 'Authorization: Bearer KEY' (default: ${API_KEY_ENV} when set; prefer the file or "
                           "the variable: a command line is visible to other users)")
    keys.add_argument("--api-key-file", type=Path, default=None, help="read the API key from this file (its first line)")
    auth.add_argument("--protect-health", action="store_true",
                      help="with an API key, require it on the health, readiness and metrics routes too")
    auth.add_argument("--ssl-certfile", default=None, help="serve HTTPS with this certificate (PEM)")
    auth.add_argument("--ssl-keyfile", default=None, help="the certificate's private key (PEM)")
    add_dataclass_options(p, ServeSettings, _settings_fields())
    return p


def api_key(args: argparse.Namespace, environ: Optional[dict] = None) -> Optional[str]:
    """The key from ``--api-key``, ``--api-key-file`` or ``$FEWSHOT_API_KEY`` (in that order), or None."""
    environ = os.environ if environ is None else environ
    if args.api_key is not None:
        key = args.api_key
        where = "--api-key"
    elif args.api_key_file is not None:
        try:
            lines = args.api_key_file.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise FewshotError(f"--api-key-file {args.api_key_file}: cannot read it ({exc})") from None
        key = lines[0] if lines else ""
        where = f"--api-key-file {args.api_key_file}"
    elif environ.get(API_KEY_ENV):
        key, where = environ[API_KEY_ENV], f"${API_KEY_ENV}"
    else:
        return None
    key = key.strip()
    if len(key) < 8 or any(c.isspace() or not c.isprintable() for c in key):
        raise FewshotError(f"{where}: an API key must be at least 8 printable characters without spaces")
    return key


def main(argv: Optional[List[str]] = None) -> int:
    """``fewshot-serve``: exit status 0 after a drained shutdown, 2 with one error line for bad input."""
    return run(lambda: _serve(argv), "fewshot-serve")


def _serve(argv: Optional[List[str]]) -> int:
    try:
        parser = build_parser()
        from ..runtime.serve import ServeSettings, bind, create_app, serve
    except ImportError as exc:
        missing = (exc.name or "a [serve] package").split(".")[0]
        raise FewshotError(f"fewshot-serve needs {missing}, which is not installed: pip install 'fewshot[serve]'") from None
    args = parser.parse_args(argv)
    if (args.ssl_certfile is None) != (args.ssl_keyfile is None):
        raise FewshotError("--ssl-certfile and --ssl-keyfile go together")
    for path in (args.ssl_certfile, args.ssl_keyfile):
        if path is not None and not os.path.isfile(path):
            raise FewshotError(f"{path}: no such file (TLS certificate or key)")
    key = api_key(args)
    if args.protect_health and key is None:
        raise FewshotError(f"--protect-health needs an API key (--api-key, --api-key-file or ${API_KEY_ENV})")
    if args.backend == "ray":
        return _serve_on_ray(args, key)
    # A request brings a few texts: tokenizing them on the event loop's thread is cheaper than waking
    # the tokenizers library's thread pool, whose threads would compete with onnxruntime's for the cores.
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    settings = ServeSettings(**{name: getattr(args, name) for name in _settings_fields()})
    sock = bind(args.host, args.port)  # before the bundle loads: a port in use is reported at once
    try:
        predictor = OnnxPredictor(args.bundle, threads=args.threads, batch_size=settings.max_batch,
                                  precision=args.precision, spin=args.spin, engine=args.engine, throughput=False)
        app = create_app(predictor, settings, api_key=key, protect_health=args.protect_health,
                         model_name=args.model_name)
    except BaseException:
        sock.close()
        raise
    scheme = "https" if args.ssl_certfile else "http"
    port = sock.getsockname()[1]
    print(f"fewshot-serve: {args.bundle} ({predictor.task.kind}, {len(predictor.labels)} labels, "
          f"{predictor.engine.name} {predictor.precision.name}) "
          f"as model {app.state.core.model_name!r} on {scheme}://{args.host}:{port}; max batch {settings.max_batch} "
          f"texts, max wait {settings.max_wait_ms} ms, queue {settings.max_queue} texts; "
          f"{'API key required' if key else 'no API key'}", file=sys.stderr, flush=True)
    return serve(app, sock, settings, args.log_level, args.ssl_certfile, args.ssl_keyfile)


def _serve_on_ray(args: argparse.Namespace, key: Optional[str]) -> int:
    """``--backend ray``: the bundle on ``--replicas`` Ray Serve replicas, until SIGTERM/SIGINT."""
    from ..runtime.serve import ServeSettings, bind

    if args.ssl_certfile is not None:
        raise FewshotError("--backend ray: Ray Serve's proxy serves plain HTTP; terminate TLS in front of it "
                           "(or use --backend local)")
    settings = ServeSettings(**{name: getattr(args, name) for name in _settings_fields()})
    bind(args.host, args.port).close()  # a port in use is reported before Ray starts
    OnnxPredictor(args.bundle, threads=1, precision=args.precision, engine=args.engine)  # a bad bundle is one line here, not in a replica
    try:
        from ..integrations.ray_serve import bundle_application, run_ray_serve
    except ImportError as exc:
        raise FewshotError(f"--backend ray needs {(exc.name or 'ray').split('.')[0]}, which is not installed: "
                           "pip install 'fewshot[ray]'") from None
    application = bundle_application(args.bundle, settings, replicas=args.replicas, threads=args.threads or 1,
                                     precision=args.precision, engine=args.engine, api_key=key, protect_health=args.protect_health,
                                     model_name=args.model_name)
    print(f"fewshot-serve: {args.bundle} on {args.replicas} Ray Serve replica(s) at http://{args.host}:{args.port}; "
          f"max batch {settings.max_batch} texts, max wait {settings.max_wait_ms} ms; "
          f"{'API key required' if key else 'no API key'}", file=sys.stderr, flush=True)
    return run_ray_serve(application, args.host, args.port, args.ray_address)


if __name__ == "__main__":
    sys.exit(main())
