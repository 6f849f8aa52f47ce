"""A HadCRUT4 month before and after infilling with CRAI's demo model (docs/assets/ PNG).

    python experiments/plot_hadcrut_infill.py [--step 0] [--out docs/assets/hadcrut_infill.png]

CRAI's demo (its demo/demo_args.txt) reproduced with pconv_jax: `20crtasgn72.pth` (a PConv U-Net
trained by CRAI on 20th Century Reanalysis temperature, `--n-filters 18 --global-padding`) is
converted with `pconv convert --from crai ... --global-padding`, then fills the missing cells of
`tas_hadcrut_187709_189308.nc` (HadCRUT4 anomalies, K, 72 x 72 cells) with `pconv infill`. Both
files are in ../shared/data/climate/crai/. The map shows one month on a longitude-latitude grid,
the colour scale CRAI's for HadCRUT (-3..3 K, RdBu_r; its static/dataset_format.json); grey =
no observation. Takes about a minute on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import pathlib
import tempfile

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import xarray  # noqa: E402

from pconv_jax import cli  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[1]
CRAI = ROOT.parent / "shared" / "data" / "climate" / "crai"


def infill_demo(folder: pathlib.Path) -> pathlib.Path:
    """Runs the two commands of docs/gridded.md; returns the infilled file."""
    model = folder / "20crtasgn72.npz"
    convert = ["convert", "--from", "crai", str(CRAI / "20crtasgn72.pth"), str(model)]
    if cli.main([*convert, "--global-padding"]) != 0:
        raise SystemExit("pconv convert failed")
    out = folder / "hadcrut_infilled.nc"
    source = CRAI / "tas_hadcrut_187709_189308.nc"
    if cli.main(["infill", str(source), "--checkpoint", str(model), "-o", str(out)]) != 0:
        raise SystemExit("pconv infill failed")
    return out


def plot(before: xarray.DataArray, after: xarray.DataArray, out: pathlib.Path) -> None:
    """Two maps side by side, [lat, lon] each, observed cells identical in both."""
    figure, axes = plt.subplots(1, 2, figsize=(11, 3.4), constrained_layout=True)
    cmap = plt.get_cmap("RdBu_r").copy()
    cmap.set_bad("0.8")
    for axis, field, title in zip(axes, (before, after), ("HadCRUT4 (observed)", "infilled")):
        image = axis.pcolormesh(
            field["lon"], field["lat"], field.values, cmap=cmap, vmin=-3, vmax=3, shading="nearest"
        )
        axis.set_title(title)
        axis.set_xlabel("longitude (°E)")
        axis.set_aspect("equal")
    axes[0].set_ylabel("latitude (°N)")
    month = str(before["time"].values)[:7]
    figure.suptitle(f"Near-surface temperature anomaly, {month} (K)")
    figure.colorbar(image, ax=axes, shrink=0.9, label="K")
    figure.savefig(out, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--step", type=int, default=0, help="time index to show (0 or 1)")
    parser.add_argument("--out", type=pathlib.Path, default=ROOT / "docs/assets/hadcrut_infill.png")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        infilled = infill_demo(pathlib.Path(folder))
        with (
            xarray.open_dataset(CRAI / "tas_hadcrut_187709_189308.nc") as given,
            xarray.open_dataset(infilled) as result,
        ):
            before = given["tas"].isel(time=args.step).load()
            after = result["tas"].isel(time=args.step).load()
    observed = np.isfinite(before.values)
    assert np.array_equal(before.values[observed], after.values[observed])
    plot(before, after, args.out)
    print(
        f"wrote {args.out}: {observed.mean():.0%} of the cells observed, infilled range "
        f"{np.nanmin(after.values[~observed]):.2f}..{np.nanmax(after.values[~observed]):.2f} K"
    )


if __name__ == "__main__":
    main()
