"""pconv_jax: partial-convolution image inpainting (Liu et al., ECCV 2018) in JAX/Flax."""

import importlib

__version__ = "0.1.0"

__all__ = ["Config", "Inpainter", "PConvUNet", "PartialConv", "count_kernel_weights", "__version__"]

# The public names are imported on first use (PEP 562), so that importing a submodule such as
# pconv_jax.data.examples does not import jax: the data pipeline's worker processes need only
# numpy, OpenCV and Pillow.
_LAZY = {
    "Config": "pconv_jax.config",
    "Inpainter": "pconv_jax.inference.inpainter",
    "PartialConv": "pconv_jax.nn.layers",
    "PConvUNet": "pconv_jax.nn.model",
    "count_kernel_weights": "pconv_jax.nn.model",
}


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module 'pconv_jax' has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
