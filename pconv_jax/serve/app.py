"""The `pconv serve` server: one uvicorn process, FastAPI with the REST API (`rest`: /api/v1, the
OpenAPI page at /docs) and the Gradio page (`page`) mounted at /, with its Gradio `inpaint`
endpoint (see README for a `gradio_client` example); the handlers behind both are `handlers.App`.

The port is bound before anything is announced (a busy port is a one-line error, not a banner
then a traceback); SIGTERM and Ctrl-C end the server within `SHUTDOWN_S` seconds even while
clients hold connections open (Gradio's event streams never close on their own). The server binds
127.0.0.1 unless told otherwise. Gradio is an optional dependency: `pip install 'pconv_jax[serve]'`.
"""

from __future__ import annotations

import socket

from pconv_jax.errors import UserError
from pconv_jax.inference.edit import MAX_SIDE_PX
from pconv_jax.serve import handlers, page, rest

# Seconds uvicorn waits for open connections after SIGTERM/Ctrl-C before closing them.
SHUTDOWN_S = 3


def build(app: handlers.App):
    """The FastAPI application: the REST routes, then the Gradio page mounted at /."""
    gr = page.import_gradio()
    import fastapi  # with Gradio, which needs it: optional like it

    api = fastapi.FastAPI(
        title="pconv_jax inpainting",
        description="Partial-convolution inpainting (Liu et al. 2018). The page is at /.",
        version="1",
    )
    rest.add_routes(api, app)
    blocks = page.build_app(app)
    return gr.mount_gradio_app(
        api, blocks, path="/", allowed_paths=[str(app.out_dir)], show_error=True
    )


def end_gradio_streams(api) -> None:
    """Ends the session streams of the Gradio apps mounted on `api` (each client's heartbeat
    connection stays open until the app's `stop_event` is set; Gradio's own `launch` sets it on
    close, a mounted app needs it from us)."""
    for route in api.routes:
        stop_event = getattr(getattr(route, "app", None), "stop_event", None)
        if stop_event is not None:
            stop_event.set()


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on host:port; UserError naming the port when it is taken."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # TIME_WAIT is no conflict
    try:
        sock.bind((host, port))
    except OSError as e:
        sock.close()
        raise UserError(f"cannot listen on {host}:{port} ({e.strerror}); choose --port") from e
    sock.listen(128)
    return sock


def serve(
    checkpoint: str | None = None,
    *,
    models_dir: str | None = None,
    host: str = "127.0.0.1",
    port: int = 7860,
    max_side: int = MAX_SIDE_PX,
    max_queue: int = 16,
    strategy: str = "full",
    telea=None,
) -> None:
    """Binds the port, loads the default model, then serves the page at / and the REST API at
    /api/v1 until SIGTERM or Ctrl-C (`telea`: see `handlers.App`)."""
    import uvicorn  # with Gradio

    models = handlers.find_models(checkpoint, models_dir)
    sock = bind(host, port)
    try:
        app = handlers.App(
            models=models, strategy=strategy, max_side=max_side, max_queue=max_queue, telea=telea
        )
        app.inpainter_for(None)  # load (and fail on a bad path) before serving
        api = build(app)
        config = uvicorn.Config(api, log_level="warning", timeout_graceful_shutdown=SHUTDOWN_S)

        class Server(uvicorn.Server):
            def handle_exit(self, sig, frame) -> None:  # SIGTERM, SIGINT: on the loop's thread
                end_gradio_streams(api)
                super().handle_exit(sig, frame)

        print(f"pconv serve: http://{host}:{port}/ (REST API: /api/v1, schema: /docs)", flush=True)
        Server(config).run(sockets=[sock])
    finally:
        sock.close()
