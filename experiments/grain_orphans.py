"""Do grain's mp_prefetch workers outlive a trainer killed outright? With and without ours.

    python experiments/grain_orphans.py

For each variant, a child process builds a grain pipeline with two mp_prefetch workers (grain's
own, or with `pconv_jax.data.examples.init_worker` as worker_init_fn), reads one element and
reports its workers' pids; it is then SIGKILLed (no close(), like a trainer killed by the
out-of-memory killer) and the script prints which workers are still running 10 s later (and
kills those). The workers also carry jax: grain imports it in every process where it is
installed; their private memory is printed with and without it.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import pathlib
import signal
import subprocess
import sys
import time

import numpy as np


def element(index: int) -> np.ndarray:
    return np.full(4, index, np.float32)


def private_mb(pid: int) -> float:
    for line in pathlib.Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Anonymous:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def child(variant: str) -> None:
    """The victim: a pipeline whose workers are running, then sleep until killed."""
    import absl.flags
    import grain

    from pconv_jax.data import examples

    absl.flags.FLAGS.mark_as_parsed()  # google/grain#1355 (see pconv_jax.data.pipeline)
    init = examples.init_worker if variant == "with init_worker" else None
    dataset = grain.MapDataset.range(0, 10**9).map(element)
    dataset = dataset.to_iter_dataset(grain.ReadOptions(num_threads=0))
    iterator = iter(dataset.mp_prefetch(grain.MultiprocessingOptions(2), worker_init_fn=init))
    for _ in range(3):  # both workers started
        next(iterator)
    pids = [p.pid for p in multiprocessing.active_children()]
    print(json.dumps({"pids": pids, "mb": [private_mb(pid) for pid in pids]}), flush=True)
    time.sleep(600)


def running(pid: int) -> bool:
    try:
        state = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        child(sys.argv[2])
        return
    for variant in ("grain alone", "with init_worker"):
        victim = subprocess.Popen(
            [sys.executable, __file__, "--child", variant],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        report = json.loads(victim.stdout.readline())
        victim.kill()
        victim.wait()
        time.sleep(10)
        alive = [pid for pid in report["pids"] if running(pid)]
        print(
            f"{variant}: workers {report['pids']} ({', '.join(f'{m:.0f}' for m in report['mb'])} "
            f"MB private each), still running 10 s after the trainer's SIGKILL: {alive or 'none'}"
        )
        for pid in alive:
            os.kill(pid, signal.SIGKILL)
    code = "import sys, numpy, cv2, PIL.Image; {}import grain; print(open('/proc/self/smaps_rollup'"
    code += ").read())"
    for label, block in (("with jax", ""), ("jax blocked", "sys.modules['jax'] = None; ")):
        text = subprocess.run(
            [sys.executable, "-c", code.format(block)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        anonymous = next(line for line in text.splitlines() if line.startswith("Anonymous:"))
        megabytes = int(anonymous.split()[1]) / 1024
        print(f"a process after `import grain` ({label}): {megabytes:.0f} MB private")


if __name__ == "__main__":
    main()
