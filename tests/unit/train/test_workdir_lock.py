"""A workdir has one trainer (train/workdir_lock.py): a second one is refused naming the holder,
a dead holder's stale lock is taken over."""

import json
import logging
import os
import pathlib
import socket

from pconv_jax import cli
from pconv_jax.train import workdir_lock

ROOT = pathlib.Path(__file__).resolve().parents[3]
TINY = str(ROOT / "experiments" / "configs" / "tiny.py")


def test_second_trainer_refuses_naming_the_holder(tmp_path, capsys):
    with workdir_lock.WorkdirLock(tmp_path / "run"):  # a second open file: flock conflicts
        # A valid config (the lock is checked after the config): the tiny config's own folder.
        argv = ["train", "--config", TINY, "--set", f"data.dir={tmp_path}"]
        code = cli.main([*argv, "--workdir", str(tmp_path / "run")])
    assert code == 2
    err = capsys.readouterr().err
    assert f"is being trained by pid {os.getpid()} on host {socket.gethostname()}" in err
    assert not (tmp_path / "run" / "checkpoints").exists()
    assert not (tmp_path / "run" / workdir_lock.LOCK_NAME).exists()  # released and removed


def test_stale_lock_of_a_dead_process_is_taken_over(tmp_path, caplog):
    # The holder's flock died with it; its pid is only named. No process has this one: Linux
    # pids stay below pid_max <= 2**22.
    dead_pid = 2**22 + 1
    lock_file = tmp_path / workdir_lock.LOCK_NAME
    lock_file.write_text(json.dumps({"host": "h1", "pid": dead_pid, "started": 0, "command": "x"}))
    with caplog.at_level(logging.WARNING, logger="pconv_jax.train.workdir_lock"):
        with workdir_lock.WorkdirLock(tmp_path):
            holder = json.loads(lock_file.read_text())
            assert holder["pid"] == os.getpid()
    assert f"taking over the stale lock of pid {dead_pid} on host h1" in caplog.text
    assert not lock_file.exists()
