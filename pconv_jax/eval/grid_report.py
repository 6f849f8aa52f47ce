"""Tables (Markdown, CSV, JSON) and figures (error maps, global-mean series) of a gridded
evaluation. Every file is written under a temporary name and renamed, into a new folder.

Figures per coverage, named after it: `error_map_<coverage>.png`, the RMSE over time of each
method on each missing cell (observed cells grey) beside the coverage itself, and
`global_mean_<coverage>.png`, the area-weighted global-mean anomaly of the truth against the
infilled field of each method.
"""

from __future__ import annotations

import csv
import io
import json
import pathlib
import re

import matplotlib.colors
import matplotlib.figure
import numpy as np

from pconv_jax.errors import UserError
from pconv_jax.metrics import grid_scores

COLUMNS = (
    ("coverage", "coverage", "{}"),
    ("observed_cells", "observed cells", "{:.1%}"),
    ("observed_area", "observed area", "{:.1%}"),
    ("method", "method", "{}"),
    ("rmse", "RMSE", "{:.3f}"),
    ("bias", "bias", "{:+.3f}"),
    ("pattern_correlation", "pattern corr.", "{:.3f}"),
    ("global_mean_rmse", "global-mean RMSE", "{:.3f}"),
    ("global_mean_correlation", "global-mean corr.", "{:.3f}"),
    ("seconds", "seconds", "{:.1f}"),
)
TABLES = ("table.md", "table.csv", "table.json")


def check_new(out: pathlib.Path) -> None:
    """Refuses a folder that already holds results (nothing the user has is overwritten)."""
    if any((out / name).exists() for name in TABLES):
        raise UserError(f"{out} already holds evaluation results; choose a new --out")
    out.mkdir(parents=True, exist_ok=True)


def _write(path: pathlib.Path, data: str | bytes) -> None:
    temporary = path.with_name(path.name + ".tmp")
    if isinstance(data, str):
        temporary.write_text(data, encoding="utf-8")
    else:
        temporary.write_bytes(data)
    temporary.replace(path)


def slug(name: str) -> str:
    """A file-name-safe form of a coverage name."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_")


def _cell(row: dict, key: str, template: str) -> str:
    value = row[key]
    return "n/a" if isinstance(value, float) and np.isnan(value) else template.format(value)


def to_markdown(rows: list[dict], settings: dict) -> str:
    """One table per coverage (all scores), then the RMSE of every method at every coverage."""
    lines = [
        f"# Infilling {settings['var']} of {settings['truth']}",
        "",
        f"{settings['time_steps']} time steps; anomalies against {settings['climatology']}; "
        "scores over the missing cells, area-weighted (cos latitude); global-mean scores over "
        "the time series of the infilled field's global mean. Units of the field (K).",
        "",
    ]
    for coverage in dict.fromkeys(r["coverage"] for r in rows):
        selected = [r for r in rows if r["coverage"] == coverage]
        lines += [f"## {coverage}", "", "| " + " | ".join(t for _, t, _ in COLUMNS[3:]) + " |"]
        lines.append("|" + "---|" * len(COLUMNS[3:]))
        for row in selected:
            lines.append("| " + " | ".join(_cell(row, k, f) for k, _, f in COLUMNS[3:]) + " |")
        first = selected[0]
        lines += ["", f"Observed: {first['observed_cells']:.1%} of cells, "
                  f"{first['observed_area']:.1%} of the area.", ""]  # fmt: skip
    methods = list(dict.fromkeys(r["method"] for r in rows))
    lines += ["## Area-weighted RMSE over the missing cells", ""]
    lines += ["| coverage | observed cells | " + " | ".join(methods) + " |"]
    lines.append("|" + "---|" * (len(methods) + 2))
    for coverage in dict.fromkeys(r["coverage"] for r in rows):
        by_method = {r["method"]: r for r in rows if r["coverage"] == coverage}
        cells = [_cell(by_method[m], "rmse", "{:.3f}") for m in methods]
        share = next(iter(by_method.values()))["observed_cells"]
        lines.append(f"| {coverage} | {share:.1%} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def to_csv(rows: list[dict]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=[k for k, _, _ in COLUMNS], lineterminator="\n")
    writer.writeheader()
    writer.writerows({k: row[k] for k, _, _ in COLUMNS} for row in rows)
    return buffer.getvalue()


def write_tables(out: pathlib.Path, rows: list[dict], settings: dict) -> None:
    """table.md, table.csv and table.json (NaN as null) in `out`."""
    clean = [{k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in r.items()}
             for r in rows]  # fmt: skip
    _write(out / "table.md", to_markdown(rows, settings))
    _write(out / "table.csv", to_csv(rows))
    _write(out / "table.json", json.dumps({"settings": settings, "rows": clean}, indent=1) + "\n")


def _edges(centres: np.ndarray, low: float, high: float) -> np.ndarray:
    middle = (centres[1:] + centres[:-1]) / 2
    return np.concatenate([[max(low, 2 * centres[0] - middle[0])], middle,
                           [min(high, 2 * centres[-1] - middle[-1])]])  # fmt: skip


def _save(figure, path: pathlib.Path) -> None:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110)
    _write(path, buffer.getvalue())


def write_figures(out, coverage, truth, mask, lat, lon, years, fills: dict) -> None:
    """The error maps and the global-mean series of one coverage (see the module docstring).

    Args:
      truth: anomaly [T, H, W]; mask: [H, W], 1 = observed; lat [H], lon [W] in degrees;
      years: [T] time axis; fills: {method: anomaly [T, H, W]}.
    """
    lat_edges = _edges(lat, -90.0, 90.0)
    lon_edges = _edges(lon, lon[0] - 180.0, lon[-1] + 180.0)
    columns = min(3, len(fills) + 1)
    rows = -(-(len(fills) + 1) // columns)
    # A bare Figure (no pyplot): no global backend or window state, nothing to close.
    figure = matplotlib.figure.Figure(figsize=(5 * columns, 2.8 * rows))
    axes = figure.subplots(rows, columns, squeeze=False)
    two_tone = matplotlib.colors.ListedColormap(["white", "0.35"])
    shown = axes[0, 0].pcolormesh(lon_edges, lat_edges, mask, cmap=two_tone, vmin=-0.5, vmax=1.5)
    legend = figure.colorbar(shown, ax=axes[0, 0], ticks=(0, 1), fraction=0.04)
    legend.ax.set_yticklabels(["missing", "observed"])
    axes[0, 0].set_title(f"coverage: {mask.mean():.1%} of cells observed", fontsize=9)
    maps = {m: np.sqrt(((f - truth) ** 2).mean(axis=0)) for m, f in fills.items()}
    top = max(float(np.percentile(e[mask == 0], 99)) for e in maps.values()) or 1.0
    cmap = matplotlib.colormaps["viridis"].with_extremes(bad="0.8")
    for axis, (method, error) in zip(axes.reshape(-1)[1:], maps.items()):
        image = axis.pcolormesh(lon_edges, lat_edges, np.ma.masked_where(mask != 0, error),
                                cmap=cmap, vmin=0, vmax=top)  # fmt: skip
        axis.set_title(f"{method}: RMSE over time (observed grey)", fontsize=9)
        figure.colorbar(image, ax=axis, label="K", fraction=0.04)
    for axis in axes.reshape(-1):
        axis.set_xlim(lon_edges[0], lon_edges[-1])
        axis.set_ylim(-90, 90)
        axis.set_xlabel("longitude (deg E)", fontsize=8)
        axis.set_ylabel("latitude", fontsize=8)
    for axis in axes.reshape(-1)[len(fills) + 1 :]:
        axis.set_visible(False)
    figure.suptitle(f"Infilling error per cell, coverage {coverage}")
    figure.tight_layout()
    _save(figure, pathlib.Path(out) / f"error_map_{slug(coverage)}.png")

    figure = matplotlib.figure.Figure(figsize=(10, 4))
    axis = figure.subplots()
    axis.plot(years, grid_scores.global_means(truth, lat), color="black", lw=2.5, label="truth")
    for method, fill in fills.items():
        series = grid_scores.global_means(grid_scores.composite(truth, fill, mask), lat)
        axis.plot(years, series, lw=1, label=method)
    axis.set_xlabel("year")
    axis.set_ylabel("global-mean anomaly (K)")
    axis.set_title(f"Area-weighted global mean, truth against the infilled fields ({coverage})")
    axis.legend(fontsize=8, ncol=3)
    figure.tight_layout()
    _save(figure, pathlib.Path(out) / f"global_mean_{slug(coverage)}.png")
