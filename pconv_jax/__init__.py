"""pconv_jax: partial-convolution image inpainting (Liu et al., ECCV 2018) in JAX/Flax."""

from pconv_jax.config import Config
from pconv_jax.inpaint import Inpainter
from pconv_jax.layers import PartialConv
from pconv_jax.model import PConvUNet, count_kernel_weights

__version__ = "0.1.0"

__all__ = ["Config", "Inpainter", "PConvUNet", "PartialConv", "count_kernel_weights", "__version__"]
