"""Data-parallel scaling of the train step: 1 process x 4 devices vs 2 processes x 2 devices.

CPU mode (default): the same global batch on the same 4-device mesh, once in one process with 4
fake CPU devices, once in two processes of 2 (jax.distributed on 127.0.0.1, gloo collectives
between them). Reports images/s of `train_step.train_step` (jitted, synthetic batches, after two
warm-up steps) and the collective volume per step, read from the compiled step's HLO (the bytes
of every all-reduce, reduce-scatter and all-gather result: gradients, batch-norm statistics,
loss terms). The 1-process run uses XLA's in-process collectives (no distributed runtime). On this
machine's CPU the devices share the same cores, so the numbers measure the cost of the
cross-process collectives, not a speed-up.

GPU mode (--gpu): one process on all its local devices (what one host of a multi-host run does).

    python experiments/bench_scaling.py                       # ~5 min on 2 cores
    python experiments/bench_scaling.py --gpu --num-layers 7 --size 256 --batch 8
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import pathlib
import re
import socket
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
BYTES = {"f32": 4, "bf16": 2, "f16": 2, "s32": 4, "u32": 4, "pred": 1}


COLLECTIVES = ("all-reduce", "reduce-scatter", "all-gather")


def collective_bytes(hlo_text: str) -> dict[str, tuple[int, int]]:
    """{kind: (number of ops, bytes of their results)} in compiled HLO text, for all-reduce,
    reduce-scatter and all-gather (XLA may turn a gradient all-reduce into the latter two)."""
    found = {kind: [0, 0] for kind in COLLECTIVES}
    # One instruction a line: "%name = <shape or tuple of shapes> all-reduce(...". Tuples carry
    # /*index=N*/ comments, so the shape part is everything between the first "= " and the op.
    pattern = r"^\s*(?:ROOT\s+)?%?\S+\s*=\s*(.*?)\s(" + "|".join(COLLECTIVES) + r")(?:-start)?\("
    for match in re.finditer(pattern, hlo_text, flags=re.MULTILINE):
        entry = found[match.group(2)]
        entry[0] += 1
        for dtype, dims in re.findall(r"(\w+)\[([\d,]*)\]", match.group(1)):
            size = 1
            for d in filter(None, dims.split(",")):
                size *= int(d)
            entry[1] += size * BYTES.get(dtype, 4)
    return {kind: tuple(v) for kind, v in found.items()}


def worker(args) -> None:
    """One process of a measurement: prints a JSON line on process 0."""
    import jax
    import numpy as np

    sys.path.insert(0, str(ROOT))
    from pconv_jax import config
    from pconv_jax.nn import vgg
    from pconv_jax.nn.model import build_model
    from pconv_jax.parallel import distributed, sharding
    from pconv_jax.train import step as train_step

    if args.coordinator:
        launch = distributed.Launch(args.coordinator, args.num_processes, args.process_id)
        distributed.initialize(launch)
    cfg = config.Config(
        model=config.ModelConfig(num_layers=args.num_layers),
        data=config.DataConfig(image_size=args.size),
    )
    mesh = sharding.make_mesh()
    repl, split = sharding.replicated(mesh), sharding.batch_sharded(mesh)
    model = build_model(cfg.model)
    params = jax.eval_shape(lambda: train_step.init_variables(model, args.size, 0))["params"]
    tx = train_step.make_optimizer(cfg, params)
    state = jax.jit(
        functools.partial(train_step.create_train_state, model, tx, args.size, 0),
        out_shardings=repl,
    )()
    vgg_params = jax.device_put(vgg.load_vgg16_params(""), repl)
    step = jax.jit(
        functools.partial(train_step.train_step, model=model, cfg=cfg),
        in_shardings=(repl, split, repl),
        out_shardings=(repl, repl),
        donate_argnums=0,
    )
    local = args.batch // jax.process_count()
    rng = np.random.default_rng(jax.process_index())
    side = args.size
    batch = {
        "image": rng.uniform(size=(local, side, side, 3)).astype(np.float32),
        "mask": (rng.uniform(size=(local, side, side, 1)) > 0.3).astype(np.float32),
    }
    data = sharding.shard_batch(batch, mesh)
    compiled = step.lower(state, data, vgg_params).compile()
    collectives = collective_bytes(compiled.as_text())
    for _ in range(2):
        state, metrics = compiled(state, data, vgg_params)
    jax.block_until_ready(metrics)
    start = time.perf_counter()
    for _ in range(args.steps):
        state, metrics = compiled(state, data, vgg_params)
    jax.block_until_ready(metrics)
    seconds = time.perf_counter() - start
    if jax.process_index() == 0:
        row = {
            "processes": jax.process_count(),
            "devices": jax.device_count(),
            "platform": jax.devices()[0].platform,
            "global_batch": args.batch,
            "images_per_s": args.steps * args.batch / seconds,
            "ms_per_step": 1000 * seconds / args.steps,
            **{f"{k}_ops": v[0] for k, v in collectives.items()},
            **{f"{k}_mb": v[1] / 1e6 for k, v in collectives.items()},
            "param_mb": sum(x.size * 4 for x in jax.tree_util.tree_leaves(params)) / 1e6,
        }
        print("RESULT " + json.dumps(row), flush=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def measure(args, processes: int, devices: int) -> dict:
    env = dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}")
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    base = [sys.executable, __file__, "--worker", "--steps", str(args.steps)]
    base += ["--num-layers", str(args.num_layers), "--size", str(args.size)]
    base += ["--batch", str(args.batch)]
    port = _free_port()
    procs = []
    for i in range(processes):
        launch = []
        if processes > 1:
            launch = ["--coordinator", f"127.0.0.1:{port}", "--num-processes", str(processes)]
            launch += ["--process-id", str(i)]
        procs.append(
            subprocess.Popen(
                base + launch, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
            )
        )
    outputs = [p.communicate()[0] for p in procs]
    for p, out in zip(procs, outputs):
        if p.returncode:
            raise RuntimeError(f"worker failed:\n{out[-3000:]}")
    line = next(x for x in outputs[0].splitlines() if x.startswith("RESULT "))
    return json.loads(line[len("RESULT ") :])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=5, help="timed steps")
    parser.add_argument("--num-layers", type=int, default=4)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--batch", type=int, default=8, help="global batch")
    parser.add_argument("--gpu", action="store_true", help="one process on its local GPUs")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--coordinator", help=argparse.SUPPRESS)
    parser.add_argument("--num-processes", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--process-id", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker or args.gpu:
        worker(args)
        return
    print(
        f"train step, {args.num_layers}-layer U-Net, {args.size}x{args.size}, global batch "
        f"{args.batch}, float32, {os.cpu_count()} CPU cores"
    )
    print(
        "| layout | images/s | ms/step | all-reduce ops, MB | reduce-scatter ops, MB | "
        "all-gather ops, MB | params MB |"
    )
    print("|---|---|---|---|---|---|---|")
    for processes, devices in ((1, 4), (2, 2)):
        r = measure(args, processes, devices)
        print(
            f"| {processes} process x {devices} devices | {r['images_per_s']:.2f} | "
            f"{r['ms_per_step']:.0f} | "
            + " | ".join(f"{r[k + '_ops']}, {r[k + '_mb']:.2f}" for k in COLLECTIVES)
            + f" | {r['param_mb']:.2f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
