"""Tables from per-pair results: rows = metrics, columns = the groups of a `grouping.Grouping`.

With the paper's grouping (the default) this is the paper's Table 1: the twelve cells "0N",
"0B", ..., "5B" (bucket index 0..5 of masks.HOLE_RATIO_BUCKETS, N = holes away from the border,
B = holes may touch it), then "all"; with LaMa's, its 10 area bins "0-10%", ..., then "all".
Metrics that need many images (FID, IS, P-/U-IDS) get a second, pooled table (paper: N and B
pooled per bucket), with the pair count of each column beside them.

Pure functions, no I/O: `build_table` turns the per-pair rows of an evaluation (as written to
results.jsonl) into column means; `to_markdown`, `to_csv` and `to_json` lay the table out.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import math

from pconv_jax.eval.grouping import PAPER, Grouping

# (key in the per-pair rows, row title, Markdown number format); the paper's rows first.
PER_PAIR_METRICS = (
    ("l1", "l1 (%)", "{:.2f}"),
    ("psnr", "PSNR (dB)", "{:.2f}"),
    ("ssim", "SSIM", "{:.3f}"),
    ("hole_l1", "hole-only l1 (%), not the paper's", "{:.2f}"),
    ("lpips", "LPIPS (AlexNet), lower is better", "{:.3f}"),
)
LPIPS_TITLES = {"alex": "LPIPS (AlexNet), lower is better", "vgg": "LPIPS (VGG), lower is better"}
MISSING = "n/a"


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
    # The pooled table: rows over the grouping's pooled columns, and the pairs of each.
    bucket_rows: tuple[TableRow, ...] = ()
    bucket_counts: dict[str, int] = dataclasses.field(default_factory=dict)
    grouping: Grouping = PAPER


def _mean(values: list) -> float | None:
    finite = [float(v) for v in values if v is not None and not math.isnan(float(v))]
    return sum(finite) / len(finite) if finite else None


def build_table(
    rows: list[dict],
    extra_rows=(),
    notes=(),
    bucket_rows=(),
    grouping: Grouping = PAPER,
    lpips_net: str = "alex",
) -> Table:
    """Column means of the per-pair metrics.

    Args:
      rows: per-pair dicts with what `grouping` reads (paper: `bucket` 0..5 and `border`
        bool; lama: `hole_ratio`) and the keys of PER_PAIR_METRICS (floats; a value may be
        None or NaN, e.g. `hole_l1` of a pair without hole, or absent, e.g. `lpips` of results
        written before it existed: such values are left out of that mean).
      extra_rows: further TableRows over grouping.columns computed elsewhere.
      notes: lines printed under the table.
      bucket_rows: TableRows over grouping.pooled computed elsewhere (FID, IS, P-/U-IDS).
      grouping: the columns (grouping.PAPER or grouping.LAMA).
      lpips_net: the LPIPS network named in its row title ("alex" or "vgg").

    Returns:
      A Table whose values are arithmetic means over the pairs of each column (and of all
      pairs for "all"); None where a column has no pairs.
    """
    columns = grouping.columns
    by_column: dict[str, list[dict]] = {c: [] for c in columns}
    pooled_counts = dict.fromkeys(grouping.pooled, 0)
    for row in rows:
        by_column[grouping.column_of(row)].append(row)
        by_column["all"].append(row)
        pooled_counts[grouping.pooled_of(row)] += 1
    pooled_counts["all"] = len(rows)
    titles = {"lpips": LPIPS_TITLES[lpips_net]}
    table_rows = tuple(
        TableRow(
            key,
            titles.get(key, title),
            fmt,
            {c: _mean([r.get(key) for r in by_column[c]]) for c in columns},
        )  # fmt: skip
        for key, title, fmt in PER_PAIR_METRICS
    )
    counts = {c: len(by_column[c]) for c in columns}
    return Table(
        counts,
        table_rows + tuple(extra_rows),
        tuple(notes),
        tuple(bucket_rows),
        pooled_counts,
        grouping,
    )


def _cells(row: TableRow, columns) -> list[str]:
    return [MISSING if row.values[c] is None else row.fmt.format(row.values[c]) for c in columns]


def _markdown_block(rows, counts: dict, columns, titles: dict) -> list[str]:
    lines = [
        "| metric | " + " | ".join(titles[c] for c in columns) + " |",
        "|---|" + "---:|" * len(columns),
    ]
    lines += [f"| {row.title} | " + " | ".join(_cells(row, columns)) + " |" for row in rows]
    lines.append("| pairs | " + " | ".join(str(counts[c]) for c in columns) + " |")
    return lines


def _pooled_heading(table: Table) -> str:
    if table.grouping.pooled == table.grouping.columns:
        return "Metrics of whole sets, per column:"
    return "Per hole-ratio bucket, N and B pooled:"


def to_markdown(table: Table) -> str:
    """A Markdown table (one line per metric, then `pairs`), the pooled table if any, then the
    notes."""
    g = table.grouping
    lines = _markdown_block(table.rows, table.counts, g.columns, g.titles)
    if table.bucket_rows:
        lines += ["", _pooled_heading(table), ""]
        lines += _markdown_block(table.bucket_rows, table.bucket_counts, g.pooled, g.titles)
    if table.notes:
        lines.append("")
        lines += [f"- {note}" for note in table.notes]
    return "\n".join(lines) + "\n"


def to_csv(table: Table) -> str:
    """CSV: header `metric,<columns>` (paper: 0N,0B,...,5B,all), one line per metric key (full
    precision, empty where there is no value), then `pairs`; with a pooled table, an empty
    line, then the same layout over the pooled columns (paper: 0,1,...,5,all)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    blocks = [(table.rows, table.counts, table.grouping.columns)]
    if table.bucket_rows:
        blocks.append((table.bucket_rows, table.bucket_counts, table.grouping.pooled))
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
    """A JSON-ready dict: grouping, columns, their titles, pair counts, metrics {key: {title,
    values}}, notes, and `buckets` (the pooled table in the same layout, or None)."""
    g = table.grouping

    def block(rows, counts, columns):
        return {
            "columns": list(columns),
            "column_titles": {c: g.titles[c] for c in columns},
            "pairs": dict(counts),
            "metrics": {r.key: {"title": r.title, "values": dict(r.values)} for r in rows},
        }

    pooled = table.bucket_rows and block(table.bucket_rows, table.bucket_counts, g.pooled)
    return {
        "grouping": g.name,
        **block(table.rows, table.counts, g.columns),
        "notes": list(table.notes),
        "buckets": pooled or None,
    }


def protocol_notes(settings: dict) -> list[str]:
    """What was evaluated and how (protocol, sample size, seeds), from an evaluation's settings
    (eval.plan); evaluations written before a setting existed get its old default."""
    protocol = settings.get("protocol", "paper")
    size, seed, per_image = settings["size"], settings["seed"], settings["masks_per_image"]
    pairs = settings["num_images"] * per_image
    if protocol == "paper":
        masks = (
            f"{per_image} distinct mask(s) each from {settings['masks']} (nearest-resized; "
            f"paired without replacement, stratified over the 12 cells), pairing seed {seed}"
        )
    else:
        kind = protocol.split("-", 1)[1]
        masks = (
            f"{per_image} mask(s) each from LaMa's {kind} generator at {size} px (our "
            f"pconv_jax.masks.lama with the parameters of LaMa's configs/data_gen/"
            f"random_{kind}_{size}.yaml, drawn on the square crop), mask seed {seed}"
        )
    known = settings.get("known", "composited")
    fills = (
        "metrics on the composite truth*mask + clip(fill)*(1-mask) ('composited': known "
        "pixels from the truth)"
        if known == "composited"
        else "metrics on the fills as written ('raw': known pixels as the tool returned them)"
    )
    net = {"alex": "AlexNet", "vgg": "VGG16"}[settings.get("lpips_net", "alex")]
    return [
        f"protocol: {protocol}; sample: {pairs} pairs = {settings['num_images']} images of "
        f"{settings['images']} at {size} px (short side resized, centre crop) x {masks}",
        fills + "; l1/PSNR/SSIM over the whole image as the paper; hole-only l1 = mean over "
        "hole pixels (mmagic's 'l1 error'); PSNR capped at 100 dB per image",
        f"LPIPS: v0.1 {net}-lin distance (Zhang et al. 2018) vs the truth, inputs mapped to "
        "[-1, 1]; n/a below 32 px",
    ]
