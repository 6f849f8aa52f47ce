"""`pconv evaluate --grid`: scoring infilling of gridded fields (NetCDF) against classical
baselines, in the same command as the image evaluation (`cli.evaluation` hands over here)."""

from __future__ import annotations

import argparse

from pconv_jax.errors import UserError

# The keys of pconv_jax.eval.grid_baselines.BASELINES, named here so that `pconv` starts without
# importing xarray, scikit-learn and matplotlib (a test keeps the two equal).
METHODS = ("climatology", "zonal", "nearest", "linear", "kriging")
MODEL = "pconv"  # the row of the --checkpoint model (the image evaluation's name for it)
GRID_FLAGS = ("var", "coverage", "climatology")  # meaningful only with --grid
IMAGE_FLAGS = ("images", "masks", "protocol_given", "export_pairs", "pairs", "predictions") + (
    "name", "step", "split", "fid_weights", "grouping", "batch_size")  # fmt: skip


def add_grid_args(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "gridded fields (--grid)",
        "score infilling of complete NetCDF fields under coverage masks, over the missing cells, "
        "area-weighted; --method (repeatable, default every grid baseline): "
        + ", ".join(METHODS)
        + f"; --checkpoint adds a trained gridded model (run or export) as the row {MODEL} "
        + f"(--method {MODEL} alone: the model only)",
    )
    group.add_argument("--grid", metavar="TRUTH.nc", help="complete fields [time, lat, lon]")
    group.add_argument("--var", help="--grid: the variable, e.g. TREFHT")
    group.add_argument(
        "--coverage",
        action="append",
        metavar="SPEC",
        help="--grid, repeatable: FILE.nc[:VAR] (each time step a pattern, 0/1 or NaN = missing, "
        "regridded by nearest cell on the sphere), stations:F or random:F (F = observed "
        "fraction, drawn with --seed)",
    )
    group.add_argument(
        "--climatology",
        metavar="FILE.nc",
        help="--grid: anomalies against this file's time mean per cell (default: the truth's own)",
    )


def wants_grid(args) -> bool:
    """Whether the command line asks for the gridded evaluation (--grid or any of its flags)."""
    return bool(args.grid) or any(getattr(args, name) for name in GRID_FLAGS)


def cmd_evaluate_grid(args) -> int:
    """Every method at every coverage: table.md/csv/json and figures in --out."""
    flag = lambda name: "--" + name.replace("_given", "").replace("_", "-")
    given = [flag(n) for n in IMAGE_FLAGS if getattr(args, n)]
    if given:
        raise UserError(f"pconv evaluate --grid does not take {', '.join(given)}")
    missing = [f"--{n}" for n in ("grid", "var", "coverage", "out") if not getattr(args, n)]
    if missing:
        raise UserError(f"pconv evaluate --grid needs {' and '.join(missing)}")
    # Imported here: xarray, scikit-learn, matplotlib and the model load only when used.
    from pconv_jax.eval import grid_baselines, grid_evaluate

    models: dict[str, grid_evaluate.Infill] = {}
    if args.checkpoint:
        from pconv_jax.inference.infiller import Infiller

        models[MODEL] = Infiller.load(args.checkpoint)
    elif MODEL in (args.method or ()):
        raise UserError(f"pconv evaluate --grid --method {MODEL} needs --checkpoint")
    methods = list(dict.fromkeys(args.method or METHODS))
    methods = [m for m in methods if m != MODEL] if methods != [MODEL] else []
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise UserError(f"--grid: unknown --method {', '.join(unknown)}; expected one of "
                        f"{', '.join(METHODS)}")  # fmt: skip
    rows = grid_evaluate.evaluate_grid(
        args.grid, args.var, args.coverage, args.out,
        methods={m: grid_baselines.BASELINES[m] for m in methods}, models=models,
        climatology_path=args.climatology, seed=args.seed, limit=args.limit,
    )  # fmt: skip
    with open(f"{args.out}/table.md", encoding="utf-8") as table:
        print(table.read(), end="")
    coverages = len({r["coverage"] for r in rows})
    print(f"wrote table.md, table.csv, table.json and {2 * coverages} figures to {args.out}")
    return 0
