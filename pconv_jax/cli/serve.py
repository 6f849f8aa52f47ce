"""`pconv serve`: a Gradio page to paint a hole over a photo and get it filled, plus an API.

The page: an image editor (upload, or pick one of the bundled Kodak examples; brush with a size
slider, eraser and undo), an optional mask upload (white = hole, as everywhere in pconv_jax),
the strategy (full, downscale, crop), an optional Telea fill for comparison; the result appears
in a before/after slider and as a PNG file to download. The API endpoint `inpaint` takes an
image file and a mask file (white = hole) and returns the filled PNG (see README for a
`gradio_client` example).

Behaviour: known pixels come back exactly (the PNG is lossless); images up to `max_side` px on
the long side (default 4096; beyond it a one-line error, nothing crashes); a mask without hole
returns the image with a note; requests are queued and run one at a time on one `Inpainter`
loaded once (it compiles once per shape bucket); the server binds 127.0.0.1 unless told
otherwise. Gradio is an optional dependency: `pip install 'pconv_jax[serve]'`.
"""

from __future__ import annotations

import os
import pathlib
import tempfile
import uuid
import warnings

import numpy as np

from pconv_jax.images import read_image, save_png
from pconv_jax.inference.files import read_known
from pconv_jax.inference.inpainter import STRATEGIES, Inpainter, NoHoleWarning

EXAMPLES_DIR = pathlib.Path(__file__).with_name("serve_examples")
DEFAULT_MAX_SIDE = 4096
NO_HOLE_NOTE = "The mask has no hole: the image is returned unchanged. Paint over what to remove."


def import_gradio():
    """The gradio module (usage analytics off unless the user turned them on), or ImportError
    saying how to install it."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    try:
        import gradio
    except ImportError as e:
        raise ImportError(
            f"pconv serve needs Gradio ({e}); install it with: pip install 'pconv_jax[serve]'"
        ) from e
    return gradio


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


class App:
    """The request handlers around one Inpainter (kept apart from Gradio so tests can call them)."""

    def __init__(self, inpainter: Inpainter, *, max_side: int = DEFAULT_MAX_SIDE, out_dir=None):
        self.inpainter = inpainter
        self.max_side = max_side
        self.out_dir = pathlib.Path(out_dir or tempfile.mkdtemp(prefix="pconv_serve_"))
        self.out_dir.mkdir(parents=True, exist_ok=True)

    def _save(self, image: np.ndarray) -> str:
        path = self.out_dir / f"inpainted_{uuid.uuid4().hex[:12]}.png"
        save_png(image, path)
        return str(path)

    def inpaint_files(self, image_path: str, mask_path: str) -> str:
        """The `inpaint` API: image file + mask file (white = hole) -> path of the filled PNG."""
        image = read_image(image_path)
        check_size(image, self.max_side)
        hole = ~read_known(mask_path, image.shape[:2])
        result, _ = fill(self.inpainter, image, hole, self.inpainter.strategy)
        return self._save(result)

    def inpaint_page(self, editor_value, mask_upload, strategy: str, telea: bool):
        """The page's Inpaint button: (before/after pair, PNG path, Telea fill or None, note)."""
        image, hole = painted_hole(editor_value)
        check_size(image, self.max_side)
        if mask_upload is not None:
            hole |= uploaded_hole(mask_upload, image.shape[:2])
        result, note = fill(self.inpainter, image, hole, strategy)
        telea_fill = None
        if telea and hole.any():
            from pconv_jax.eval.baselines import opencv_inpaint

            telea_fill = opencv_inpaint(image, (~hole)[..., None].astype(np.uint8), "telea")
        pixels = int(hole.sum())
        status = note or f"Filled {pixels} hole pixels ({100 * pixels / hole.size:.1f}%)."
        return (image, result), self._save(result), telea_fill, status


def build_app(app: App):
    """The Gradio Blocks of the page and the `inpaint` API endpoint (not launched)."""
    gr = import_gradio()

    def guarded(fn):
        def run(*args):
            try:
                return fn(*args)
            except ValueError as e:  # the user's input: shown in the page, no traceback
                raise gr.Error(str(e)) from None

        return run

    examples = sorted(str(p) for p in EXAMPLES_DIR.glob("*.jpg"))
    with gr.Blocks(title="pconv_jax inpainting") as blocks:
        gr.Markdown(
            "## Partial-convolution inpainting\nUpload a photo or pick an example, paint over "
            "what should go, press **Inpaint**. Known pixels are kept exactly."
        )
        with gr.Row():
            with gr.Column():
                editor = gr.ImageEditor(
                    type="numpy",
                    image_mode="RGB",
                    sources=["upload", "clipboard"],
                    brush=gr.Brush(colors=["#ff00ff"], color_mode="fixed", default_size=24),
                    eraser=gr.Eraser(default_size=24),
                    transforms=[],
                    layers=False,
                    label="Photo: paint the hole",
                    elem_id="editor",
                )
                gr.Examples(examples, inputs=editor, label="Examples (Kodak)")
                mask_upload = gr.Image(
                    type="numpy", image_mode="L", label="Or upload a mask (white = hole)"
                )
                strategy = gr.Radio(
                    list(STRATEGIES), value=app.inpainter.strategy, label="Strategy"
                )
                telea = gr.Checkbox(
                    False, label="Also fill with Telea (OpenCV) to compare", elem_id="use-telea"
                )
                button = gr.Button("Inpaint", variant="primary", elem_id="inpaint-button")
            with gr.Column():
                compare = gr.ImageSlider(
                    label="Before / after (drag the slider)", format="png", elem_id="compare"
                )
                download = gr.File(label="Result (PNG)", elem_id="result-file")
                note = gr.Markdown(elem_id="note")
                telea_out = gr.Image(label="Telea", format="png", elem_id="telea")
        button.click(
            guarded(app.inpaint_page),
            [editor, mask_upload, strategy, telea],
            [compare, download, telea_out, note],
            api_visibility="private",
        )
        with gr.Row(visible=False):
            api_image = gr.File(type="filepath")
            api_mask = gr.File(type="filepath")
            api_out = gr.File()
        api_button = gr.Button(visible=False)
        api_button.click(
            guarded(app.inpaint_files), [api_image, api_mask], api_out, api_name="inpaint"
        )
    blocks.queue(default_concurrency_limit=1)  # one Inpainter: requests wait their turn
    return blocks


def serve(
    checkpoint: str,
    *,
    host: str = "127.0.0.1",
    port: int = 7860,
    max_side: int = DEFAULT_MAX_SIDE,
    strategy: str = "full",
    block: bool = True,
):
    """Loads the model once and launches the page; returns the Blocks when `block` is False."""
    import_gradio()
    app = App(Inpainter.load(checkpoint, strategy=strategy), max_side=max_side)
    blocks = build_app(app)
    blocks.launch(
        server_name=host,
        server_port=port,
        prevent_thread_lock=not block,
        allowed_paths=[str(app.out_dir)],
        show_error=True,
    )
    return blocks
