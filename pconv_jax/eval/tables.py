"""The paper's Table 1 from per-pair results: rows = metrics, columns = hole-ratio bucket x N/B.

Metrics that need many images (FID, IS) get a second, pooled table: columns = hole-ratio bucket
(N and B pooled) and "all", with the pair count of each column beside them.

Pure functions, no I/O: `build_table` turns the per-pair rows of an evaluation (as written to
results.jsonl) into cell means; `to_markdown`, `to_csv` and `to_json` lay the table out. Columns
are the twelve cells "0N", "0B", ..., "5B" (bucket index 0..5 of masks.HOLE_RATIO_BUCKETS, N =
holes away from the border, B = holes may touch it) in the paper's order, then "all".
"""

from __future__ import annotations

import csv
import dataclasses
import io
import math

from pconv_jax.masks.protocol import CELLS, HOLE_RATIO_BUCKETS

COLUMNS = CELLS + ("all",)
BUCKET_COLUMNS = tuple(str(b) for b in range(len(HOLE_RATIO_BUCKETS))) + ("all",)
# (key in the per-pair rows, row title, Markdown number format); the paper's rows first.
PER_PAIR_METRICS = (
    ("l1", "l1 (%)", "{:.2f}"),
    ("psnr", "PSNR (dB)", "{:.2f}"),
    ("ssim", "SSIM", "{:.3f}"),
    ("hole_l1", "hole-only l1 (%), not the paper's", "{:.2f}"),
    ("lpips", "LPIPS (AlexNet), lower is better", "{:.3f}"),
)
MISSING = "n/a"


def column_title(column: str) -> str:
    """'3B' -> '(0.3,0.4] B'; '3' (a pooled bucket) -> '(0.3,0.4]'; 'all' -> 'all'."""
    if column == "all":
        return column
    side = column[-1] if column[-1] in "NB" else ""
    lo, hi = HOLE_RATIO_BUCKETS[int(column.rstrip("NB"))]
    return f"({lo},{hi}] {side}".rstrip()


def cell_of(row: dict) -> str:
    """The cell label of a per-pair row with int `bucket` and bool `border`."""
    return f"{row['bucket']}{'B' if row['border'] else 'N'}"


@dataclasses.dataclass(frozen=True)
class TableRow:
    key: str
    title: str
    fmt: str
    values: dict[str, float | None]  # column -> value; None = no value (shown as n/a)


@dataclasses.dataclass(frozen=True)
class Table:
    counts: dict[str, int]  # column -> number of pairs
    rows: tuple[TableRow, ...]
    notes: tuple[str, ...] = ()
    # The pooled table: rows over BUCKET_COLUMNS, and the pairs of each of those columns.
    bucket_rows: tuple[TableRow, ...] = ()
    bucket_counts: dict[str, int] = dataclasses.field(default_factory=dict)


def _mean(values: list) -> float | None:
    finite = [float(v) for v in values if v is not None and not math.isnan(float(v))]
    return sum(finite) / len(finite) if finite else None


def build_table(rows: list[dict], extra_rows=(), notes=(), bucket_rows=()) -> Table:
    """Cell means of the per-pair metrics.

    Args:
      rows: per-pair dicts with `bucket` (0..5), `border` (bool) and the keys of
        PER_PAIR_METRICS (floats; a value may be None or NaN, e.g. `hole_l1` of a pair without
        hole, or absent, e.g. `lpips` of results written before it existed: such values are
        left out of that mean).
      extra_rows: further TableRows over COLUMNS computed elsewhere.
      notes: lines printed under the table.
      bucket_rows: TableRows over BUCKET_COLUMNS (N and B pooled) computed elsewhere (FID, IS).

    Returns:
      A Table whose values are arithmetic means over the pairs of each cell (and of all
      pairs for "all"); None where a cell has no pairs.
    """
    by_column: dict[str, list[dict]] = {c: [] for c in COLUMNS}
    for row in rows:
        cell = cell_of(row)
        if cell not in by_column or cell == "all":
            raise ValueError(f"pair row has bucket {row['bucket']}, expected 0..5: {row}")
        by_column[cell].append(row)
        by_column["all"].append(row)
    table_rows = tuple(
        TableRow(key, title, fmt, {c: _mean([r.get(key) for r in by_column[c]]) for c in COLUMNS})
        for key, title, fmt in PER_PAIR_METRICS
    )
    counts = {c: len(by_column[c]) for c in COLUMNS}
    bucket_counts = {b: counts[f"{b}N"] + counts[f"{b}B"] for b in BUCKET_COLUMNS[:-1]}
    bucket_counts["all"] = counts["all"]
    return Table(
        counts, table_rows + tuple(extra_rows), tuple(notes), tuple(bucket_rows), bucket_counts
    )


def _cells(row: TableRow, columns=COLUMNS) -> list[str]:
    return [MISSING if row.values[c] is None else row.fmt.format(row.values[c]) for c in columns]


def _markdown_block(rows, counts: dict, columns) -> list[str]:
    lines = [
        "| metric | " + " | ".join(column_title(c) for c in columns) + " |",
        "|---|" + "---:|" * len(columns),
    ]
    lines += [f"| {row.title} | " + " | ".join(_cells(row, columns)) + " |" for row in rows]
    lines.append("| pairs | " + " | ".join(str(counts[c]) for c in columns) + " |")
    return lines


def to_markdown(table: Table) -> str:
    """A Markdown table (one line per metric, then `pairs`), the pooled per-bucket table if
    any, then the notes."""
    lines = _markdown_block(table.rows, table.counts, COLUMNS)
    if table.bucket_rows:
        lines += ["", "Per hole-ratio bucket, N and B pooled:", ""]
        lines += _markdown_block(table.bucket_rows, table.bucket_counts, BUCKET_COLUMNS)
    if table.notes:
        lines.append("")
        lines += [f"- {note}" for note in table.notes]
    return "\n".join(lines) + "\n"


def to_csv(table: Table) -> str:
    """CSV: header `metric,0N,0B,...,5B,all`, one line per metric key (full precision, empty
    where there is no value), then `pairs`; with a pooled table, an empty line, then the same
    layout with header `metric,0,1,...,5,all`."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    blocks = [(table.rows, table.counts, COLUMNS)]
    if table.bucket_rows:
        blocks.append((table.bucket_rows, table.bucket_counts, BUCKET_COLUMNS))
    for n, (rows, counts, columns) in enumerate(blocks):
        if n:
            buffer.write("\n")
        writer.writerow(["metric", *columns])
        for row in rows:
            writer.writerow(
                [row.key, *("" if row.values[c] is None else row.values[c] for c in columns)]
            )
        writer.writerow(["pairs", *(counts[c] for c in columns)])
    return buffer.getvalue()


def to_json(table: Table) -> dict:
    """A JSON-ready dict: columns, their titles, pair counts, metrics {key: {title, values}},
    notes, and `buckets` (the pooled table in the same layout, or None)."""

    def block(rows, counts, columns):
        return {
            "columns": list(columns),
            "column_titles": {c: column_title(c) for c in columns},
            "pairs": dict(counts),
            "metrics": {r.key: {"title": r.title, "values": dict(r.values)} for r in rows},
        }

    pooled = table.bucket_rows and block(table.bucket_rows, table.bucket_counts, BUCKET_COLUMNS)
    return {
        **block(table.rows, table.counts, COLUMNS),
        "notes": list(table.notes),
        "buckets": pooled or None,
    }


def protocol_notes(settings: dict) -> list[str]:
    """What was evaluated and how, from the settings of an evaluation (evaluate._settings)."""
    return [
        f"{settings['num_images']} images of {settings['images']} at {settings['size']} px "
        f"(short side resized, centre crop), {settings['masks_per_image']} distinct mask(s) "
        f"each from {settings['masks']} (nearest-resized), pairing seed {settings['seed']}",
        "metrics on the composite truth*mask + clip(output)*(1-mask); l1/PSNR/SSIM over the "
        "whole image as the paper; hole-only l1 = mean over hole pixels (mmagic's 'l1 error')",
        "PSNR capped at 100 dB per image",
        "LPIPS: v0.1 AlexNet-lin distance (Zhang et al. 2018) of composite vs truth, inputs "
        "mapped to [-1, 1]; n/a below 32 px",
    ]
