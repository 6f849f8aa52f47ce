"""`pconv convert`: PConv U-Nets trained by other projects, read from their PyTorch files.

SOURCES names the projects `pconv convert --from` reads, each a module with its key map; it
lives here, away from convert.py's JAX imports, so that the CLI's parser is cheap to build.
"""

from pconv_jax.store.converters import crai, mmagic, naoto0804

SOURCES = {mmagic.NAME: mmagic, naoto0804.NAME: naoto0804, crai.NAME: crai}
