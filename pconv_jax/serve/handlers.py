"""`pconv serve`: a page to paint a hole over a photo and get it filled, a REST API beside it.

One server (uvicorn) carries the FastAPI app with the REST API (`rest`: /api/v1/inpaint,
/api/v1/models, /api/v1/health, the OpenAPI page at /docs) and the Gradio page (`page`) mounted
at /, with its Gradio `inpaint` endpoint (see README for a `gradio_client` example). This module
holds the request handlers (`App`), which tests call without a server.

Behaviour: known pixels come back exactly (the PNG is lossless); images up to `max_side` px on
the long side (default 4096; beyond it a one-line error, nothing crashes); a mask without hole
returns the image with a note; one inference at a time (page and API share a lock; at most
`max_queue` API requests wait), on models loaded once each (compiled once per shape bucket);
the server binds 127.0.0.1 unless told otherwise. Gradio is an optional dependency:
`pip install 'pconv_jax[serve]'`.
"""

from __future__ import annotations

import io
import pathlib
import tempfile
import uuid
import warnings

import numpy as np
from PIL import Image

from pconv_jax.cli import page, rest
from pconv_jax.errors import UserError
from pconv_jax.images import DECODE_ERRORS, read_image, save_png
from pconv_jax.inference import edit
from pconv_jax.inference.files import read_known
from pconv_jax.inference.inpainter import Inpainter, NoHoleWarning
from pconv_jax.inference.mask_ops import Extension, MaskOps

DEFAULT_MAX_SIDE = 4096
NO_HOLE_NOTE = "The mask has no hole: the image is returned unchanged. Paint over what to remove."


def check_size(image: np.ndarray, max_side: int) -> None:
    """ValueError naming the size and the limit when the long side exceeds `max_side`."""
    height, width = image.shape[:2]
    if max(height, width) > max_side:
        raise ValueError(
            f"the image is {width}x{height} px; this server accepts at most {max_side} px on the "
            f"long side (pconv serve --max-side)"
        )


def painted_hole(editor_value: dict) -> tuple[np.ndarray, np.ndarray]:
    """(background uint8 [H,W,3], hole bool [H,W]) from a gr.ImageEditor value (numpy type).

    Every pixel that any layer painted (alpha > 0) is hole; erased strokes have alpha 0.
    """
    background = editor_value.get("background") if editor_value else None
    if background is None:
        raise ValueError("upload a photo or pick an example first")
    background = np.asarray(background)
    if background.ndim == 2:
        background = np.repeat(background[..., None], 3, axis=-1)
    height, width = background.shape[:2]
    hole = np.zeros((height, width), bool)
    for layer in editor_value.get("layers") or []:
        layer = np.asarray(layer)
        if layer.shape[:2] != (height, width):
            raise ValueError(f"a painted layer is {layer.shape[:2]}, the photo {(height, width)}")
        hole |= layer[..., 3] > 0 if layer.ndim == 3 and layer.shape[-1] == 4 else layer.any(-1)
    return background[..., :3].astype(np.uint8), hole


def uploaded_hole(mask: np.ndarray, size_hw: tuple[int, int]) -> np.ndarray:
    """An uploaded mask image (white = hole) as bool [H,W] hole at the photo's size."""
    with tempfile.TemporaryDirectory() as tmp:
        path = pathlib.Path(tmp) / "mask.png"
        save_png(np.asarray(mask, np.uint8), path)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # same aspect, other size: resized (nearest)
            return ~read_known(path, size_hw)


def fill(inpainter: Inpainter, image: np.ndarray, hole: np.ndarray, strategy: str):
    """(filled uint8 [H,W,3], note or '') for one photo and its hole (bool [H,W])."""
    if not hole.any():
        return image.copy(), NO_HOLE_NOTE
    if hole.all():
        raise ValueError("the whole image is marked as hole: nothing is left to inpaint from")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NoHoleWarning)
        return inpainter(image, ~hole, strategy=strategy), ""


def find_models(checkpoint=None, models_dir=None) -> dict[str, str]:
    """{name: path} of `checkpoint` and of every export (.npz, .onnx) and run directory (holding
    config.json) directly in `models_dir`; names are file stems, the checkpoint's comes first."""
    found = {}
    if checkpoint:
        found[pathlib.Path(checkpoint).stem or "default"] = str(checkpoint)
    if models_dir:
        folder = pathlib.Path(models_dir)
        if not folder.is_dir():
            raise UserError(f"--models must be a folder of exports or run directories: {folder}")
        for path in sorted(folder.iterdir()):
            is_export = path.is_file() and path.suffix.lower() in (".npz", ".onnx")
            if is_export or (path.is_dir() and (path / "config.json").is_file()):
                found.setdefault(path.stem, str(path))
        if not found:
            raise UserError(f"no .npz/.onnx export or run directory in {folder}")
    if not found:
        raise UserError("give --checkpoint PATH or --models DIR")
    return found


class App:
    """The request handlers around the server's models (apart from Gradio so tests call them).

    Models load on first use and stay loaded (each compiles once per shape bucket); one
    inference runs at a time (`queue.lock`, shared by the page and the REST API).
    """

    def __init__(
        self,
        inpainter: Inpainter | None = None,
        *,
        models: dict[str, str] | None = None,
        strategy: str = "full",
        max_side: int = DEFAULT_MAX_SIDE,
        max_queue: int = 16,
        out_dir=None,
    ):
        self.models = dict(models or {})
        self._loaded: dict[str, Inpainter] = {}
        if inpainter is not None:
            self.models = {"default": "(given)", **self.models}
            self._loaded["default"] = inpainter
        if not self.models:
            raise UserError("an App needs an Inpainter or models")
        self.default_model = next(iter(self.models))
        self.strategy = strategy
        self.max_side = max_side
        self.queue = rest.Queue(max_queue)
        self.out_dir = pathlib.Path(out_dir or tempfile.mkdtemp(prefix="pconv_serve_"))
        self.out_dir.mkdir(parents=True, exist_ok=True)

    @property
    def inpainter(self) -> Inpainter:
        return self.inpainter_for(None)

    def inpainter_for(self, name: str | None) -> Inpainter:
        """The loaded Inpainter of model `name` (None: the default); UserError for other names."""
        name = name or self.default_model
        if name not in self.models:
            raise UserError(f"no model {name!r} on this server; it has {', '.join(self.models)}")
        if name not in self._loaded:
            self._loaded[name] = Inpainter.load(self.models[name], strategy=self.strategy)
        return self._loaded[name]

    def describe_models(self) -> list[dict]:
        """[{name, source, loaded}] for GET /api/v1/models."""
        return [
            {"name": n, "source": p, "loaded": n in self._loaded} for n, p in self.models.items()
        ]

    @staticmethod
    def peek_size(data: bytes, name: str) -> tuple[int, int]:
        """(height, width) from an image file's header, without decoding its pixels."""
        try:
            with Image.open(io.BytesIO(data)) as image:
                width, height = image.size
        except DECODE_ERRORS as e:
            raise UserError(f"cannot read image {name}: {e}") from e
        return height, width

    def _save(self, image: np.ndarray, prefix: str = "inpainted") -> str:
        path = self.out_dir / f"{prefix}_{uuid.uuid4().hex[:12]}.png"
        save_png(image, path)
        return str(path)

    def inpaint_files(self, image_path: str, mask_path: str) -> str:
        """The Gradio `inpaint` API: image + mask file (white = hole) -> path of the filled PNG."""
        image = read_image(image_path)
        check_size(image, self.max_side)
        hole = ~read_known(mask_path, image.shape[:2])
        with self.queue.lock:
            result, _ = fill(self.inpainter, image, hole, self.strategy)
        return self._save(result)

    def inpaint_page(
        self,
        editor_value,
        mask_upload,
        strategy: str,
        telea: bool,
        invert: bool = False,
        dilate: int = 0,
        feather: int = 0,
        extend: tuple = (0, 0, 0, 0),
        model: str | None = None,
    ):
        """The page's Inpaint button: (before/after pair, PNG path, Telea fill or None, note,
        mask PNG path (white = the hole that was filled), result uint8 [H,W,3])."""
        image, hole = painted_hole(editor_value)
        check_size(image, self.max_side)
        if mask_upload is not None:
            hole |= uploaded_hole(mask_upload, image.shape[:2])
        ops = MaskOps(bool(invert), int(dilate), 0, int(feather))
        extension = Extension(*(int(v or 0) for v in extend))
        prepared = edit.prepare(image, hole, ops, extension)
        check_size(prepared.image, self.max_side)
        if not prepared.net_hole.any():
            result, note = prepared.image.copy(), NO_HOLE_NOTE
        else:
            edit.check_known(prepared)
            with self.queue.lock:
                inpainter = self.inpainter_for(model)
                result, note = edit.run(inpainter, [prepared], strategy)[0], ""
        telea_fill = None
        if telea and prepared.hole.any():
            from pconv_jax.eval.baselines import opencv_inpaint

            known = (~prepared.hole)[..., None].astype(np.uint8)
            telea_fill = opencv_inpaint(prepared.image, known, "telea")
        pixels = int(prepared.net_hole.sum())
        status = note or f"Filled {pixels} hole pixels ({100 * pixels / result[..., 0].size:.1f}%)."
        mask_png = self._save(np.where(prepared.hole, 255, 0).astype(np.uint8), "mask")
        pair = (prepared.image, result)
        return pair, self._save(result), telea_fill, status, mask_png, result


def serve(
    checkpoint: str | None = None,
    *,
    models_dir: str | None = None,
    host: str = "127.0.0.1",
    port: int = 7860,
    max_side: int = DEFAULT_MAX_SIDE,
    max_queue: int = 16,
    strategy: str = "full",
) -> None:
    """Loads the default model, then serves the page at / and the REST API at /api/v1 (until
    interrupted)."""
    gr = page.import_gradio()
    import fastapi  # with Gradio, which needs them: optional like it
    import uvicorn

    models = find_models(checkpoint, models_dir)
    app = App(models=models, strategy=strategy, max_side=max_side, max_queue=max_queue)
    app.inpainter_for(None)  # load (and fail on a bad path) before serving
    api = fastapi.FastAPI(
        title="pconv_jax inpainting",
        description="Partial-convolution inpainting (Liu et al. 2018). The page is at /.",
        version="1",
    )
    rest.add_routes(api, app)
    blocks = page.build_app(app)
    api = gr.mount_gradio_app(
        api, blocks, path="/", allowed_paths=[str(app.out_dir)], show_error=True
    )
    print(f"pconv serve: http://{host}:{port}/ (REST API: /api/v1, schema: /docs)", flush=True)
    uvicorn.run(api, host=host, port=port, log_level="warning")
