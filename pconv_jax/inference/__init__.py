"""Inference: the Inpainter (pre/post-processing around a JAX or onnxruntime forward pass),
loading any trained model, crops, files and super-resolution."""
