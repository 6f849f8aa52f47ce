"""The request handlers of `pconv serve` (`App`), apart from Gradio and FastAPI so tests call them.

Behaviour: known pixels come back exactly (the PNG is lossless); images up to `max_side` px on
the long side (default `edit.MAX_SIDE_PX`, as `pconv inpaint`; beyond it a one-line error,
nothing crashes); a mask without hole returns the image with a note; one inference at a time
(page and API share a lock; at most `max_queue` API requests wait), on models loaded once each
(compiled once per shape bucket). Every fill goes through `inference.fill`, as `pconv inpaint`.
"""

from __future__ import annotations

import pathlib
import tempfile
import uuid
from collections.abc import Callable

import numpy as np

from pconv_jax.errors import UserError
from pconv_jax.images import save_png
from pconv_jax.inference import fill
from pconv_jax.inference.edit import MAX_SIDE_PX
from pconv_jax.inference.inpainter import Inpainter
from pconv_jax.inference.mask_ops import Extension, MaskOps
from pconv_jax.serve.rest import Queue
from pconv_jax.store import trained

NO_HOLE_NOTE = "The mask has no hole: the image is returned unchanged. Paint over what to remove."


def painted_hole(editor_value: dict) -> tuple[np.ndarray, np.ndarray]:
    """(background uint8 [H,W,3], hole bool [H,W]) from a gr.ImageEditor value (numpy type).

    Every pixel that any layer painted (alpha > 0) is hole; erased strokes have alpha 0.
    """
    background = editor_value.get("background") if editor_value else None
    if background is None:
        raise UserError("upload a photo or pick an example first")
    background = np.asarray(background)
    if background.ndim == 2:
        background = np.repeat(background[..., None], 3, axis=-1)
    height, width = background.shape[:2]
    hole = np.zeros((height, width), bool)
    for layer in editor_value.get("layers") or []:
        layer = np.asarray(layer)
        if layer.shape[:2] != (height, width):
            raise UserError(f"a painted layer is {layer.shape[:2]}, the photo {(height, width)}")
        hole |= layer[..., 3] > 0 if layer.ndim == 3 and layer.shape[-1] == 4 else layer.any(-1)
    return background[..., :3].astype(np.uint8), hole


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
            kind = trained.model_kind(path)  # the loader's rule; here only what it names
            named = path.suffix.lower() == f".{kind}" or (path / "config.json").is_file()
            if named:
                found.setdefault(path.stem, str(path))
        if not found:
            raise UserError(f"no .npz/.onnx export or run directory in {folder}")
    if not found:
        raise UserError("give --checkpoint PATH or --models DIR")
    return found


class App:
    """The request handlers around the server's models.

    Models load on first use and stay loaded (each compiles once per shape bucket); one
    inference runs at a time (`queue.lock`, shared by the page and the REST API).

    Args:
      inpainter: a loaded default model, or None (then `models`).
      models: {name: run directory or export path}, loaded on first use.
      telea: a classical fill to compare with on the page, (uint8 [H,W,3], known uint8
        [H,W,1]) -> uint8 [H,W,3] (`eval.baselines.opencv_inpaint`), or None: no checkbox.
    """

    def __init__(
        self,
        inpainter: Inpainter | None = None,
        *,
        models: dict[str, str] | None = None,
        strategy: str = "full",
        max_side: int = MAX_SIDE_PX,
        max_queue: int = 16,
        out_dir=None,
        telea: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None,
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
        self.telea = telea
        self.queue = Queue(max_queue)
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

    def _save(self, image: np.ndarray, prefix: str = "inpainted") -> str:
        path = self.out_dir / f"{prefix}_{uuid.uuid4().hex[:12]}.png"
        save_png(image, path)
        return str(path)

    def inpaint_files(self, image_path: str, mask_path: str) -> str:
        """The Gradio `inpaint` API: image + mask file (white = hole) -> path of the filled PNG."""
        with self.queue.lock:
            done = fill.fill(
                self.inpainter,
                image_path,
                fill.MaskSource(file=mask_path),
                strategy=self.strategy,
                max_side=self.max_side,
            )
        return self._save(done.result)

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
        uploaded = fill.NO_SOURCE if mask_upload is None else fill.MaskSource(file=mask_upload)
        options = dict(
            ops=MaskOps(bool(invert), int(dilate), 0, int(feather)),
            extend=Extension(*(int(v or 0) for v in extend)),
            max_side=self.max_side,
        )
        with self.queue.lock:
            done = fill.fill(
                self.inpainter_for(model), image, uploaded, hole, strategy=strategy, **options
            )
        prepared, result = done.prepared, done.result
        telea_fill = None
        if telea and self.telea is not None and prepared.hole.any():
            telea_fill = self.telea(prepared.image, (~prepared.hole)[..., None].astype(np.uint8))
        pixels = int(prepared.net_hole.sum())
        status = f"Filled {pixels} hole pixels ({100 * pixels / result[..., 0].size:.1f}%)."
        if not done.had_hole:
            status = NO_HOLE_NOTE
        mask_png = self._save(np.where(prepared.hole, 255, 0).astype(np.uint8), "mask")
        pair = (prepared.image, result)
        return pair, self._save(result), telea_fill, status, mask_png, result
