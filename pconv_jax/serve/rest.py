"""The REST API of `pconv serve`, on the same server as the page (FastAPI, which Gradio runs on).

    POST /api/v1/inpaint   multipart form: `image` (file), `mask` (file, white = hole) and/or
                           `mask_from_alpha`, `mask_color` + `tolerance`; the mask operations
                           `invert`, `dilate`, `erode`, `feather`; `extend` (L,T,R,B in px or %);
                           `strategy`; `model`; `format` (png, jpg, jpeg, webp) and `quality`.
                           Answers the image (image/png by default: known pixels exact, 16-bit
                           stays 16-bit, metadata kept), or JSON {"error": "..."} with 400 (bad
                           input; the CLI's messages), 413 (larger than --max-side), 422 (a form
                           field missing or of the wrong type), 429 (queue full).
    GET  /api/v1/models    the models this server holds, and the default.
    GET  /api/v1/health    {"status": "ok", "waiting": n, "max_queue": m}.
    GET  /docs             the OpenAPI page (schema at /openapi.json).

    curl -F image=@photo.png -F mask=@mask.png http://127.0.0.1:7860/api/v1/inpaint -o out.png

Requests share the page's queue discipline: one inference at a time on the server's models (a
lock the page's handler takes too), at most `max_queue` requests waiting, the rest refused with
429; images beyond `max_side` px (before or after --extend) are refused before inference. Every
error of /api/v1, a wrong method or path included, is JSON {"error": "..."}.
"""

from __future__ import annotations

import dataclasses
import threading
from typing import Annotated

import fastapi
from fastapi import File, Form, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from PIL import Image

from pconv_jax.errors import UserError
from pconv_jax.inference import fill, output
from pconv_jax.inference.edit import TooLarge
from pconv_jax.inference.mask_ops import MaskOps, parse_color

# The formats `output` writes, by the name a request gives (its file suffix without the dot).
FORMATS = {suffix.lstrip("."): pillow for suffix, pillow in output.FORMATS.items()}


def media_type(pillow_format: str) -> str:
    """The MIME type of a Pillow format name ('PNG' -> 'image/png')."""
    Image.init()  # Pillow fills Image.MIME as its plugins register
    return Image.MIME[pillow_format]


HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


class Busy(Exception):
    """More requests waiting than the queue holds (HTTP 429)."""


@dataclasses.dataclass
class Queue:
    """At most `max_waiting` requests in line (the running one included) for the `lock`."""

    max_waiting: int = 16
    lock: threading.Lock = dataclasses.field(default_factory=threading.Lock)
    waiting: int = 0
    _count_lock: threading.Lock = dataclasses.field(default_factory=threading.Lock)

    def run(self, fn, *args, **kw):
        with self._count_lock:
            if self.waiting >= self.max_waiting:
                raise Busy(f"the server is busy ({self.waiting} requests waiting); try again later")
            self.waiting += 1
        try:
            with self.lock:
                return fn(*args, **kw)
        finally:
            with self._count_lock:
                self.waiting -= 1


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def add_routes(api: fastapi.FastAPI, app) -> None:
    """Adds the /api/v1 routes to `api` for `app` (a `handlers.App`: models, queue, max_side)."""
    _add_status_routes(api, app)
    _add_inpaint_route(api, app)
    _add_fallback_route(api)  # last: it answers what the routes above do not


def _add_status_routes(api: fastapi.FastAPI, app) -> None:
    @api.exception_handler(RequestValidationError)
    def _invalid(request, exc: RequestValidationError):
        fields = "; ".join(f"{e['loc'][-1]}: {e['msg']}" for e in exc.errors())
        return _error(422, f"bad form fields: {fields}")

    @api.get("/api/v1/health")
    def health() -> dict:
        """The server is up; how many requests wait for the model."""
        return {"status": "ok", "waiting": app.queue.waiting, "max_queue": app.queue.max_waiting}

    @api.get("/api/v1/models")
    def models() -> dict:
        """The models a request may name in `model`, and the default one."""
        return {"default": app.default_model, "models": app.describe_models()}


def _add_inpaint_route(api: fastapi.FastAPI, app) -> None:
    @api.post(
        "/api/v1/inpaint",
        response_class=Response,
        responses={
            200: {
                "content": {media_type(f): {} for f in FORMATS.values()},
                "description": "the result",
            },
            400: {"description": "bad input: {'error': message}"},
            413: {"description": "image larger than --max-side"},
            429: {"description": "queue full"},
        },
    )
    def inpaint(
        image: Annotated[UploadFile, File(description="the photo (PNG, JPEG, WebP, ...)")],
        mask: Annotated[UploadFile | None, File(description="mask file, white = hole")] = None,
        mask_from_alpha: Annotated[bool, Form(description="transparent = hole")] = False,
        mask_color: Annotated[str | None, Form(description="R,G,B: this colour = hole")] = None,
        tolerance: Annotated[int, Form(description="mask_color: max difference/channel")] = 0,
        hole_color: Annotated[str, Form(description="hole colour of the mask file")] = "white",
        invert: Annotated[bool, Form(description="swap hole and known")] = False,
        dilate: Annotated[int, Form(description="grow the hole by N px")] = 0,
        erode: Annotated[int, Form(description="shrink the hole by N px")] = 0,
        feather: Annotated[int, Form(description="blend over N px outside the hole")] = 0,
        extend: Annotated[str | None, Form(description="L,T,R,B in px or %: outpaint")] = None,
        strategy: Annotated[str | None, Form(description="full, downscale or crop")] = None,
        model: Annotated[str | None, Form(description="a name from /api/v1/models")] = None,
        format: Annotated[str, Form(description="png, jpg, jpeg or webp")] = "png",
        quality: Annotated[int, Form(description="jpg/webp quality 1..100")] = 95,
    ):
        """Fills the hole of one photo; the mask operations apply in the CLI's order."""
        try:
            if format not in FORMATS:
                raise UserError(f"format must be one of {', '.join(FORMATS)}, got {format!r}")
            if hole_color not in ("white", "black"):
                raise UserError(f"hole_color must be white or black, got {hole_color!r}")
            mask_file = mask if mask is not None and mask.filename else None
            if not (mask_file or mask_from_alpha or mask_color or extend):
                raise UserError("no hole: send a mask file, mask_from_alpha, mask_color or extend")
            source = fill.MaskSource(
                file=mask_file.file.read() if mask_file else None,
                from_alpha=mask_from_alpha,
                color=parse_color(mask_color) if mask_color else None,
                tolerance=tolerance,
                hole_is_white=hole_color == "white",
                file_name=mask_file.filename if mask_file else None,
            )
            options = dict(
                ops=MaskOps(invert, dilate, erode, feather),
                extend=extend,
                max_side=app.max_side,
                name=image.filename or "image",
            )
            done = app.queue.run(
                lambda: fill.fill(
                    app.inpainter_for(model),
                    image.file.read(),
                    source,
                    strategy=strategy,
                    **options,
                )
            )
            body = output.encode(done.result, FORMATS[format], done.photo, quality)
            return Response(body, media_type=media_type(FORMATS[format]))
        except TooLarge as e:
            return _error(413, str(e))
        except Busy as e:
            return _error(429, str(e))
        except (UserError, FileNotFoundError) as e:
            return _error(400, str(e))


def _add_fallback_route(api: fastapi.FastAPI) -> None:
    # What no route answers under /api/v1 gets {"error": ...} too, not FastAPI's {"detail": ...}
    # (nor the Gradio page mounted at /, which takes every other path).
    @api.api_route("/api/v1/{other:path}", methods=list(HTTP_METHODS), include_in_schema=False)
    def elsewhere(request: fastapi.Request, other: str) -> JSONResponse:
        path = request.url.path
        routes = [r for r in api.routes if isinstance(r, APIRoute) and r.endpoint is not elsewhere]
        allowed = sorted({m for r in routes if r.path == path for m in r.methods or ()})
        if allowed:
            message = f"{request.method} is not allowed on {path}; use {', '.join(allowed)}"
            return JSONResponse({"error": message}, 405, headers={"Allow": ", ".join(allowed)})
        paths = sorted({r.path for r in routes if r.path.startswith("/api/v1/")})
        return _error(404, f"no {path} here; the API has {', '.join(paths)} (schema: /docs)")
