"""Training and evaluation input: image sources, example construction, the batch pipeline and
the super-resolution canvases. Imports no JAX at module level (worker processes need none)."""
