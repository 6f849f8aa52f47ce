"""One writer per run directory: `workdir/train.lock`, held with `flock` while a run trains.

The kernel drops an `flock` when its holder dies, however it dies (SIGKILL, out of memory), so
a lock file left behind by a dead trainer is stale by construction: the next trainer takes it
over and says whose it was. The file names the holder (host, pid, start time, command) so that
a refused trainer can say who holds the run. On a network filesystem `flock` relies on the
server's lock manager (NFSv4, Lustre and GPFS provide one; NFSv3 needs lockd).
In a multi-process run only process 0 takes the lock (train.py).
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import pathlib
import socket
import sys
import time

from pconv_jax.errors import UserError

log = logging.getLogger("pconv_jax.train.workdir_lock")

LOCK_NAME = "train.lock"


class WorkdirLocked(UserError):
    """Another live process holds the run directory's lock."""


def describe(holder: dict) -> str:
    """'pid 123 on host h since 2026-01-01 12:00:00 UTC (pconv train ...)' from a lock's JSON."""
    if not holder:
        return "an unknown process (the lock file is empty)"
    since = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(holder.get("started", 0)))
    return (
        f"pid {holder.get('pid')} on host {holder.get('host')} since {since} "
        f"({holder.get('command', '?')})"
    )


def _read(fd: int) -> dict:
    os.lseek(fd, 0, os.SEEK_SET)
    text = os.read(fd, 65536).decode("utf-8", "replace").strip()
    try:
        return json.loads(text) if text else {}
    except json.JSONDecodeError:
        return {"pid": "?", "host": "?", "command": f"unparsable lock file: {text[:80]!r}"}


class WorkdirLock:
    """Context manager holding `workdir/train.lock`; raises WorkdirLocked naming the holder."""

    def __init__(self, workdir: str | os.PathLike):
        self.path = pathlib.Path(workdir) / LOCK_NAME
        self._fd: int | None = None

    def acquire(self) -> None:
        while True:
            fd = self._open()
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _read(fd)
                os.close(fd)
                raise WorkdirLocked(
                    f"{self.path.parent} is being trained by {describe(holder)}; one run "
                    f"directory takes one trainer (stop it first, or use another --workdir)"
                ) from None
            # A holder that released (and removed) the file between our open and flock left
            # us locking an unlinked file: start again on the current one.
            try:
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        previous = _read(fd)
        if previous:
            log.warning(
                "taking over the stale lock of %s: that process is gone", describe(previous)
            )
        holder = {
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "started": time.time(),
            "command": " ".join(sys.argv)[:500],
        }
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, json.dumps(holder).encode("utf-8"))
        os.fsync(fd)
        self._fd = fd

    def _open(self) -> int:
        """The lock file's descriptor, the run directory made if missing; UserError naming the
        directory when it cannot be (a file, a read-only folder, no permission)."""
        workdir = self.path.parent
        try:
            workdir.mkdir(parents=True, exist_ok=True)
            return os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except FileExistsError:
            raise UserError(f"--workdir {workdir} is a file, not a run directory") from None
        except OSError as e:  # PermissionError, a read-only filesystem, a parent that is a file
            raise UserError(
                f"--workdir {workdir} cannot be used as a run directory: {e.strerror}"
            ) from None

    def release(self) -> None:
        if self._fd is None:
            return
        try:
            self.path.unlink()
        except FileNotFoundError:
            pass
        fcntl.flock(self._fd, fcntl.LOCK_UN)
        os.close(self._fd)
        self._fd = None

    def __enter__(self) -> WorkdirLock:
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()
