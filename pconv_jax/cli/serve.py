"""`pconv serve`: the inpainting page and the REST API (`pconv_jax.serve`; Gradio is optional)."""

from __future__ import annotations

import functools
import sys

from pconv_jax.cli.common import add_max_side_arg
from pconv_jax.errors import UserError
from pconv_jax.inference.crop_strategy import STRATEGIES


def cmd_serve(args) -> int:
    """Serves the inpainting page and the REST API (one or several models) until SIGTERM or
    Ctrl-C (exit status 0)."""
    from pconv_jax.cli import compile_cache
    from pconv_jax.serve import page  # Gradio is optional: only this command needs it

    try:
        page.import_gradio()
    except ImportError as e:
        raise UserError(str(e)) from e
    from pconv_jax.eval.baselines import opencv_inpaint
    from pconv_jax.serve import app  # imports FastAPI, which comes with Gradio

    compile_cache.enable(None if args.no_compile_cache else compile_cache.default_dir())
    try:
        app.serve(
            args.checkpoint,
            models_dir=args.models,
            host=args.host,
            port=args.port,
            max_side=args.max_side,
            max_queue=args.max_queue,
            strategy=args.strategy,
            telea=functools.partial(opencv_inpaint, method="telea"),
        )
    except KeyboardInterrupt:  # Ctrl-C: uvicorn has closed the server already
        print("pconv serve: stopped", file=sys.stderr)
    return 0


def register(sub) -> None:
    serve = sub.add_parser(
        "serve", help="web page to paint holes and fill them (Gradio), and a REST API"
    )
    serve.add_argument(
        "--checkpoint",
        help="training run directory, or a `pconv export` .npz or .onnx (the default model)",
    )
    serve.add_argument(
        "--models", metavar="DIR", help="a folder of exports/run directories: a model picker"
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=7860, help="port (default 7860)")
    add_max_side_arg(serve)
    serve.add_argument(
        "--no-compile-cache", action="store_true", help="no persistent JAX compilation cache"
    )
    serve.add_argument(
        "--max-queue", type=int, default=16, help="API requests that may wait (16; more: 429)"
    )
    serve.add_argument(
        "--strategy",
        choices=STRATEGIES,
        default="full",
        help="default strategy of the page and of the `inpaint` API (default full)",
    )
    serve.set_defaults(func=cmd_serve)
