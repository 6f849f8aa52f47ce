"""PyTorch reference implementations, used to cross-check pconv_jax in tests and benchmarks.

Written independently of pconv_jax, following the official NVIDIA layer's semantics
(see ../shared/ANCHORS.md section A.1). torch is a test/benchmark-only dependency.
"""
