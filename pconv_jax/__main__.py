"""`python -m pconv_jax ...` is the same as the `pconv` command."""

from pconv_jax.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
