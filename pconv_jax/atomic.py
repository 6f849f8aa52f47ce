"""Writing a file whole or not at all: a temporary name beside it, then one rename.

Every file pconv_jax writes (images, exports, model cards, reports, tables, settings) goes
through `replacing` (or its two shortcuts): the content is written to a hidden temporary file in
the target's folder and `os.replace`d onto the target, which POSIX makes atomic within one
filesystem. An interrupted write (Ctrl-C, a full disk, a crash) leaves the old file, or none,
never half a file; the temporary file is removed on any exception. The temporary name keeps the
target's suffix, so writers that pick a format from the suffix (Pillow, OpenCV, onnx) see the
right one. Appended logs (metrics.jsonl, results.jsonl) are written line by line instead and
their readers skip a torn last line; Orbax writes checkpoints to a temporary folder itself.
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import secrets
from collections.abc import Iterator


@contextlib.contextmanager
def replacing(path: str | os.PathLike) -> Iterator[pathlib.Path]:
    """Yields a temporary path beside `path` (same suffix); renames it onto `path` on success.

    The folder of `path` is created if missing. On an exception inside the block the temporary
    file is deleted and `path` is left as it was.
    """
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Not tempfile.mkstemp: its files are private (mode 0600); the writer creates this one with
    # the user's usual permissions. The pid and random part keep concurrent writers apart.
    temporary = path.with_name(
        f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp{path.suffix}"
    )
    try:
        yield temporary
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def write_bytes(path: str | os.PathLike, data: bytes) -> pathlib.Path:
    """Writes `data` to `path` whole (see `replacing`); returns `path` as a Path."""
    with replacing(path) as temporary:
        temporary.write_bytes(data)
    return pathlib.Path(path)


def write_text(path: str | os.PathLike, text: str) -> pathlib.Path:
    """Writes `text` (UTF-8) to `path` whole (see `replacing`); returns `path` as a Path."""
    return write_bytes(path, text.encode("utf-8"))


def cut_torn_line(path: str | os.PathLike) -> str:
    """The complete lines of the appended log `path` (JSON lines); a last line without its
    newline, cut off by an interrupted append, is removed from the file (before appending to it
    again, so the next line does not join it). A missing file reads as ""."""
    path = pathlib.Path(path)
    if not path.is_file():
        return ""
    text = path.read_text(encoding="utf-8")
    complete = text[: text.rfind("\n") + 1]
    if complete != text:
        write_text(path, complete)
    return complete


def complete_lines(text: str) -> list[str]:
    """The non-empty lines of an appended log's `text` that end in a newline (read-only: a log
    still being written may end in half a line)."""
    return [line for line in text[: text.rfind("\n") + 1].splitlines() if line]
