"""Training-input cost of the grain pipeline against the previous hand-written one, in one run.

    python experiments/bench_data.py [--previous dea41b2] [--rounds 3] [--workers 2]

`--previous` names a commit whose `pconv_jax` (the pipeline before grain: a process pool with
shared-memory slots) is extracted with `git archive` into a temporary folder; each measurement
runs in a fresh subprocess with PYTHONPATH pointing at that folder or at this checkout, and the
two alternate (rounds x sizes x modes), so both see the same load on a shared machine. Both
build `pconv_jax.data.pipeline.train_batches` (generated masks, inpainting, batch 32, prefetch 4)
over the ImageNet JPEGs of ../shared/data/imagenet_sample (or `--dir`), and consume each batch as
a trainer does (copied once into preallocated host buffers, like a device transfer).

Columns (median over rounds): img/CPU-s = images per CPU-second of the trainer process plus its
worker processes (robust to other jobs, unlike wall time); trainer ms/img = CPU milliseconds of
the trainer's process per image (the part that does not spread over workers); start CPU-s = CPU
of all processes from building the pipeline through N + 2 warm-up batches; worker MB = private
memory of each worker process at the end (/proc smaps_rollup Anonymous). Modes: in the caller
(num_workers=0) and N worker processes.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import pathlib
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time

import numpy as np

REPO = pathlib.Path(__file__).resolve().parents[1]
IMAGES = REPO.parent.parent / "shared" / "data" / "imagenet_sample"
if not IMAGES.is_dir():  # a worktree under /work/wt: shared data beside the main checkout
    IMAGES = pathlib.Path("/work/shared/data/imagenet_sample")


def cpu_seconds(pids) -> float:
    """User + system CPU seconds of live processes (Linux /proc)."""
    tick, total = os.sysconf("SC_CLK_TCK"), 0.0
    for pid in pids:
        try:
            fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / tick  # utime, stime
    return total


def private_mb(pid: int) -> float:
    for line in pathlib.Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Anonymous:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def measure(directory: str, size: int, workers: int, batch: int, batches: int) -> dict:
    """One measurement in this process, with whichever pconv_jax PYTHONPATH selects."""
    import cv2

    from pconv_jax.config import DataConfig
    from pconv_jax.data import pipeline

    cv2.setNumThreads(1)  # as in the workers: OpenCV's own threads would blur the per-core cost
    prefetch = 4 if workers else 0
    cfg = DataConfig(
        source="folder", dir=directory, image_size=size, num_workers=workers, prefetch=prefetch
    )
    sinks = {}
    start = time.process_time()
    with pipeline.train_batches(cfg, batch, seed=0, process_count=1) as stream:
        for _ in range(workers + 2):  # every worker started (grain: on its first batch), warm
            first = next(stream)
        pids = [p.pid for p in multiprocessing.active_children()]
        start_cpu = time.process_time() - start + cpu_seconds(pids)
        sinks = {key: np.empty_like(value) for key, value in first.items()}
        del first
        parent, children = time.process_time(), cpu_seconds(pids)
        for _ in range(batches):
            for key, value in next(stream).items():
                np.copyto(sinks[key], value)  # what a host-to-device copy reads
        parent = time.process_time() - parent
        children = cpu_seconds(pids) - children
        memory = [private_mb(pid) for pid in pids]
    count = batches * batch
    return {
        "img_per_cpu_s": count / (parent + children),
        "trainer_ms_per_img": 1000 * parent / count,
        "start_cpu_s": start_cpu,
        "worker_mb": statistics.mean(memory) if memory else 0.0,
    }


def extract(commit: str, into: str) -> None:
    """Writes `pconv_jax` as of `commit` under `into` (git archive)."""
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", "--format=tar", commit, "pconv_jax"],
        capture_output=True,
        check=True,
    ).stdout
    with tempfile.TemporaryFile() as file:
        file.write(archive)
        file.seek(0)
        with tarfile.open(fileobj=file) as tar:
            tar.extractall(into, filter="data")


def run_one(path: str, args, size: int, workers: int) -> dict:
    command = [sys.executable, __file__, "--measure", str(size), str(workers)]
    command += ["--dir", args.dir, "--batch", str(args.batch), "--batches", str(args.batches)]
    env = {**os.environ, "PYTHONPATH": path}
    out = subprocess.run(command, env=env, capture_output=True, text=True, cwd=path)
    if out.returncode:
        raise RuntimeError(f"measurement failed ({path}):\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--previous", default="dea41b2", help="commit of the previous pipeline")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds")
    parser.add_argument("--workers", type=int, default=os.cpu_count(), help="N (default: cores)")
    parser.add_argument("--batch", type=int, default=32, help="local batch size")
    parser.add_argument("--batches", type=int, default=12, help="measured batches per run")
    parser.add_argument("--dir", default=str(IMAGES), help="folder of training images")
    parser.add_argument("--measure", nargs=2, type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        size, workers = args.measure
        print(json.dumps(measure(args.dir, size, workers, args.batch, args.batches)))
        return
    results: dict = {}
    with tempfile.TemporaryDirectory() as previous:
        extract(args.previous, previous)
        for _ in range(args.rounds):
            for size in (256, 512):
                for workers in (0, args.workers):
                    for name, path in ((args.previous, previous), ("grain", str(REPO))):
                        one = run_one(path, args, size, workers)
                        results.setdefault((size, workers, name), []).append(one)
                        print(size, workers, name, one, file=sys.stderr, flush=True)
    keys = ("img_per_cpu_s", "trainer_ms_per_img", "start_cpu_s", "worker_mb")
    print(f"{os.cpu_count()} CPU cores, batch {args.batch}, {args.rounds} rounds (medians)")
    print("| size | mode | pipeline | img/CPU-s | trainer ms/img | start CPU-s | worker MB |")
    print("|---|---|---|---|---|---|---|")
    for (size, workers, name), runs in results.items():
        mode = f"{workers} processes" if workers else "in the caller"
        label = "grain" if name == "grain" else f"previous ({name})"
        cells = [statistics.median(run[key] for run in runs) for key in keys]
        print(
            f"| {size} | {mode} | {label} | {cells[0]:.0f} | {cells[1]:.2f} | {cells[2]:.2f} "
            f"| {cells[3]:.0f} |"
        )


if __name__ == "__main__":
    main()
