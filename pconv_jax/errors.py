"""`UserError`: bad input from the user, as opposed to a bug.

Raised where pconv_jax checks what a user supplied: a file (image, mask, checkpoint, export,
weights), a command-line flag or a config value. The `pconv` command prints its message on one
line and exits 2; any other exception is a bug and keeps its traceback (exit 1). It subclasses
ValueError, so library callers that catch ValueError keep working.
"""


class UserError(ValueError):
    """Bad input (file, flag or config value); the message names it and what is allowed."""
