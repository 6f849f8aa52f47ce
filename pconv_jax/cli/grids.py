"""`pconv infill`: a gridded model fills the gaps of NetCDF/Zarr variables (docs/gridded.md)."""

from __future__ import annotations

import pathlib
import shlex
import sys

from pconv_jax.store.named import NAMED_MODELS


def _names(values: list[str]) -> tuple[str, ...]:
    """--var a --var b,c -> ("a", "b", "c")."""
    return tuple(name.strip() for value in values for name in value.split(",") if name.strip())


def cmd_infill(args) -> int:
    """Infills every time step of --var (default: the file's one gridded variable) of INPUT.

    Exit status: 0 done, 2 bad input (nothing written).
    """
    # Imported here: xarray and netCDF4 are the extra pconv_jax[grids]; JAX only to run
    from pconv_jax.cli import compile_cache
    from pconv_jax.inference.grid_files import check_output
    from pconv_jax.inference.infiller import Infiller

    source, output = pathlib.Path(args.input), pathlib.Path(args.output)
    check_output(source, output, args.overwrite)  # before the model loads
    if not source.exists():
        raise FileNotFoundError(f"no NetCDF or Zarr file at {source}")
    compile_cache.enable(None if args.no_compile_cache else compile_cache.default_dir())
    infiller = Infiller.load(args.checkpoint or args.model)
    names = _names(args.var)
    model_flag = ["--checkpoint", args.checkpoint] if args.checkpoint else ["--model", args.model]
    command = ["pconv", "infill", args.input, *model_flag, "-o", args.output]
    command += [f"--var={','.join(names)}"] if names else []
    command += ["--mask", args.mask] if args.mask else []
    report = infiller.infill_file(
        source,
        output,
        names,
        mask_file=args.mask,
        batch_size=args.batch_size,
        write_mask=args.write_mask,
        overwrite=args.overwrite,
        progress=not args.no_progress,
        history=shlex.join(command),
    )
    cells = ", ".join(f"{name} {n}" for name, n in report.infilled_cells.items())
    print(f"wrote {output}: {report.num_steps} time steps, cells infilled: {cells}")
    for name, steps in report.empty_steps.items():
        if steps:
            print(
                f"  note {name}: {len(steps)} step(s) had no observation (filled from the model "
                "alone; listed in its attribute steps_without_observation)",
                file=sys.stderr,
            )
    return 0


def register(sub) -> None:
    infill = sub.add_parser(
        "infill",
        help="fill the missing cells of gridded data (NetCDF/Zarr) with a gridded model",
        description="Every time step of the variables is infilled; observed cells are kept bit "
        "for bit; the output keeps the input's coordinates, attributes and encoding. See "
        "docs/gridded.md.",
    )
    infill.add_argument("input", help="NetCDF file (or Zarr store) with NaN/_FillValue gaps")
    model = infill.add_mutually_exclusive_group(required=True)
    model.add_argument(
        "--checkpoint",
        help="`pconv convert --from crai` or `pconv export` .npz, or a run directory",
    )
    model.add_argument(
        "--model",
        choices=sorted(NAMED_MODELS),
        help="a model shipped in the package, no download (ccsm-t42: CCSM 2 m temperature "
        "anomalies in K on the T42 grid; card in pconv_jax/store/pretrained/)",
    )
    infill.add_argument("-o", "--output", required=True, help="NetCDF file to write (.nc)")
    infill.add_argument(
        "--var",
        action="append",
        default=[],
        metavar="NAME",
        help="variable(s) to use as the model's channels, in its order (repeatable or a comma "
        "list; default: the file's one gridded variable)",
    )
    infill.add_argument(
        "--mask",
        metavar="FILE",
        help="mask file, 1 = observed, 0 = fill: one mask per time step, or one steady mask "
        "(default: the gaps of the data)",
    )
    infill.add_argument(
        "--batch-size", type=int, default=8, help="time steps per forward pass (default 8)"
    )
    infill.add_argument(
        "--write-mask",
        action="store_true",
        help="also write NAME_mask (1 = observed, 0 = infilled) beside each variable",
    )
    infill.add_argument(
        "--overwrite", action="store_true", help="replace an existing output (even the input)"
    )
    infill.add_argument("--no-progress", action="store_true", help="no progress bar")
    infill.add_argument(
        "--no-compile-cache",
        action="store_true",
        help="do not use the persistent JAX compilation cache",
    )
    infill.set_defaults(func=cmd_infill)
