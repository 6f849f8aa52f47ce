"""Data parallelism: the 1-D device mesh and its shardings, multi-process launch and the flags
all processes agree on."""
