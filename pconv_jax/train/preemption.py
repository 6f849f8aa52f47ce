"""Preemption: SIGTERM (what SLURM, Kubernetes and spot VMs send before killing a job) makes a
training run finish its current step, write a checkpoint and exit with status 75.

The handler only records the signal; the training loop asks all processes each step whether
any of them received one (distributed.any_processes) and stops them together.
"""

from __future__ import annotations

import logging
import signal
import threading

log = logging.getLogger("pconv_jax.train.preemption")

SIGNALS = (signal.SIGTERM,)
EXIT_STATUS = 75  # EX_TEMPFAIL: try again, i.e. rerun the same command to resume


class Preempted(Exception):
    """The run stopped on a signal after checkpointing `step`; rerunning resumes it."""

    def __init__(self, step: int, signal_name: str):
        super().__init__(
            f"{signal_name} received: checkpointed step {step}; rerun the same command to resume"
        )
        self.step = step


class SignalFlag:
    """Context manager recording the preemption signals received while active (`name`).

    Handlers can only be installed in the main thread; elsewhere (a training run started from
    a thread) signals keep their default action.
    """

    def __init__(self):
        self.name: str | None = None
        self._previous = {}

    def __enter__(self) -> SignalFlag:
        if threading.current_thread() is threading.main_thread():
            for sig in SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame) -> None:
        self.name = signal.Signals(signum).name
        log.warning("%s received: stopping after this step with a checkpoint", self.name)

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()
