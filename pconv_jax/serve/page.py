"""The Gradio page of `pconv serve` (the handlers are `handlers.App`'s; Gradio is optional).

Left: the photo editor (paint the hole), examples, an optional mask upload, the mask operations
(invert, grow, feather), extend-canvas margins, the strategy, the model picker (when the server
holds several models), Telea for comparison (when the app has it) and the Inpaint button.
Right: a before/after slider, the result and the mask (white = the hole that was filled) to
download, "Continue on the result" (the fill becomes the photo to edit next) and "Undo" (back to
the photo before).
"""

from __future__ import annotations

import os
import pathlib

import numpy as np

from pconv_jax.inference.inpainter import STRATEGIES

EXAMPLES_DIR = pathlib.Path(__file__).with_name("examples")  # Kodak photos, in package_data


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


def editor_value(photo: np.ndarray) -> dict:
    """A gr.ImageEditor value holding `photo` (uint8 [H,W,3]) with nothing painted."""
    return {"background": photo, "layers": [], "composite": photo}


def continue_on(result, history: list):
    """ "Continue on the result": the editor gets the last result; the photo before is kept."""
    if result is None:
        raise ValueError("inpaint first: there is no result to continue on")
    return editor_value(result), [*history, result], "Editing the result; Undo goes back."


def undo(history: list):
    """Back to the photo before the last "Continue on the result"."""
    if len(history) < 2:
        raise ValueError("nothing to undo")
    history = history[:-1]
    return editor_value(history[-1]), history, "Back to the photo before."


# Long: the page's layout is one nested Gradio Blocks context, read top to bottom like the page.
def build_app(app):
    """The Gradio Blocks of the page and the Gradio `inpaint` API endpoint (not launched).

    Args:
      app: a `handlers.App`.
    """
    gr = import_gradio()

    def guarded(fn):
        def run(*args):
            try:
                return fn(*args)
            except ValueError as e:  # the user's input: shown in the page, no traceback
                raise gr.Error(str(e)) from None

        return run

    def inpaint(editor, mask, strategy, telea, invert, grow, feather, *rest):
        *extend, model, history = rest  # extend: left, top, right, bottom
        pair, png, telea_fill, note, mask_png, result = app.inpaint_page(
            editor, mask, strategy, telea, invert, grow, feather, extend, model
        )
        # A new photo (not the last one continued on) starts the undo history afresh.
        photo = np.asarray(editor["background"])[..., :3]
        if not history or not np.array_equal(history[-1], photo):
            history = [photo]
        return pair, png, telea_fill, note, mask_png, result, history

    examples = sorted(str(p) for p in EXAMPLES_DIR.glob("*.jpg"))
    with gr.Blocks(title="pconv_jax inpainting") as blocks:
        gr.Markdown(
            "## Partial-convolution inpainting\nUpload a photo or pick an example, paint over "
            "what should go, press **Inpaint**. Known pixels are kept exactly. "
            "REST API: `/api/v1/inpaint` ([schema](/docs))."
        )
        last_result = gr.State(None)
        history = gr.State([])
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
                    format="png",  # lossless: "continue on the result" keeps its pixels
                    label="Photo: paint the hole",
                    elem_id="editor",
                )
                if examples:
                    gr.Examples(examples, inputs=editor, label="Examples (Kodak)")
                mask_upload = gr.Image(
                    type="numpy", image_mode="L", label="Or upload a mask (white = hole)"
                )
                with gr.Accordion("Mask and canvas", open=True):
                    with gr.Row():
                        invert = gr.Checkbox(False, label="Invert", elem_id="invert")
                        grow = gr.Slider(0, 64, 0, step=1, label="Grow (px)", elem_id="grow")
                        feather = gr.Slider(0, 64, 0, step=1, label="Feather (px)")
                    gr.Markdown("Extend the canvas (px; the new border is filled):")
                    with gr.Row():
                        sides = [
                            gr.Number(0, label=side, precision=0, minimum=0, min_width=60)
                            for side in ("Left", "Top", "Right", "Bottom")
                        ]
                with gr.Row():
                    strategy = gr.Radio(list(STRATEGIES), value=app.strategy, label="Strategy")
                    model = gr.Dropdown(
                        list(app.models),
                        value=app.default_model,
                        label="Model",
                        visible=len(app.models) > 1,
                        elem_id="model",
                    )
                telea = gr.Checkbox(
                    False,
                    label="Also fill with Telea (OpenCV) to compare",
                    elem_id="use-telea",
                    visible=app.telea is not None,
                )
                button = gr.Button("Inpaint", variant="primary", elem_id="inpaint-button")
            with gr.Column():
                compare = gr.ImageSlider(
                    label="Before / after (drag the slider)", format="png", elem_id="compare"
                )
                with gr.Row():
                    continue_button = gr.Button("Continue on the result", elem_id="continue")
                    undo_button = gr.Button("Undo", elem_id="undo")
                note = gr.Markdown(elem_id="note")
                with gr.Row():
                    download = gr.File(label="Result (PNG)", elem_id="result-file")
                    mask_file = gr.File(label="Mask (PNG, white = hole)", elem_id="mask-file")
                telea_out = gr.Image(label="Telea", format="png", elem_id="telea")
        button.click(
            guarded(inpaint),
            [editor, mask_upload, strategy, telea, invert, grow, feather, *sides, model, history],
            [compare, download, telea_out, note, mask_file, last_result, history],
            api_visibility="private",
        )
        continue_button.click(
            guarded(continue_on),
            [last_result, history],
            [editor, history, note],
            api_visibility="private",
        )
        undo_button.click(
            guarded(undo), [history], [editor, history, note], api_visibility="private"
        )
        with gr.Row(visible=False):
            api_image = gr.File(type="filepath")
            api_mask = gr.File(type="filepath")
            api_out = gr.File()
        api_button = gr.Button(visible=False)
        api_button.click(
            guarded(app.inpaint_files), [api_image, api_mask], api_out, api_name="inpaint"
        )
    blocks.queue(default_concurrency_limit=1)  # one inference at a time (and app.queue.lock)
    return blocks
