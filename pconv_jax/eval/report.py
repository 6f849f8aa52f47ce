"""`pconv report`: one Markdown page comparing evaluations and training runs, with figures.

Inputs are folders: `pconv evaluate` outputs (settings.json, results.jsonl, table.json,
examples/; any number, of `--method` runs and of fills scored with `--predictions`, all with
one grouping) and `pconv train` run directories (config.json, metrics.jsonl). The page has
- per metric, the evaluations' tables side by side (rows = methods, columns = the grouping's:
  bucket x N/B or LaMa's area bins), and the pooled FID/IS/U-IDS/P-IDS table with its pair
  counts;
- metrics_vs_hole_ratio.png: every metric per pooled column (paper: hole-ratio bucket, N and B
  pooled; LaMa: area bin), x = the mean measured hole ratio of the column's pairs, one line
  per method;
- grid_{bucket{b}|area{i}}.png: the same photo and mask across methods (masked input with
  holes in white, each method's image as scored, truth). The pairs are chosen by rule, not by
  looking: per pooled column, the first pair (in the evaluation's seeded order) of each of
  its columns (paper: N cell, B cell) whose output every evaluation saved;
- per training run, <run>_losses.png (each loss term against the step) and, when it was
  validated, <run>_validation.png (val/l1, PSNR, SSIM, LPIPS against the step).
"""

from __future__ import annotations

import json
import pathlib
from collections.abc import Callable

import matplotlib.pyplot as plt
import numpy as np
from PIL import Image

from pconv_jax import atomic
from pconv_jax.errors import UserError
from pconv_jax.eval import tables
from pconv_jax.eval.grouping import Grouping, get_grouping
from pconv_jax.eval.plan import rebuild

# (key, title, higher is better); per-pair metrics from results.jsonl, pooled ones from
# table.json (plotted when an evaluation has them).
PLOTTED = (
    ("l1", "l1 (%)", False),
    ("hole_l1", "hole-only l1 (%)", False),
    ("psnr", "PSNR (dB)", True),
    ("ssim", "SSIM", True),
    ("lpips", "LPIPS", False),
)
POOLED = (("fid", "FID", False), ("u_ids", "U-IDS (%)", True), ("p_ids", "P-IDS (%)", True))
VALIDATION = (("l1", "l1 (%)"), ("psnr", "PSNR (dB)"), ("ssim", "SSIM"), ("lpips", "LPIPS"))
# Settings that must agree for pictures of "the same photo and mask" across evaluations.
SAME_PAIRS = ("protocol", "images", "split", "limit", "masks", "size", "seed", "masks_per_image")


def _read_jsonl(path: pathlib.Path) -> list[dict]:
    # A run still training (or killed mid-append) may end in half a line: left out.
    return [json.loads(line) for line in atomic.complete_lines(path.read_text(encoding="utf-8"))]


def load_evaluation(folder: pathlib.Path) -> dict:
    """{name, folder, settings, table (table.json), rows (results.jsonl)} of an evaluation."""
    settings = json.loads((folder / "settings.json").read_text(encoding="utf-8"))
    if not (folder / "table.json").is_file():
        raise UserError(f"{folder} has no table.json: finish (resume) its `pconv evaluate`")
    return {
        "name": settings["method"],
        "folder": folder,
        "settings": settings,
        "table": json.loads((folder / "table.json").read_text(encoding="utf-8")),
        "rows": _read_jsonl(folder / "results.jsonl"),
    }


def classify(folders) -> tuple[list[dict], list[pathlib.Path]]:
    """(evaluations, training run folders); anything else is a ValueError naming it."""
    evals, runs = [], []
    for folder in map(pathlib.Path, folders):
        if (folder / "settings.json").is_file() and (folder / "results.jsonl").is_file():
            evals.append(load_evaluation(folder))
        elif (folder / "metrics.jsonl").is_file():
            runs.append(folder)
        else:
            raise UserError(
                f"{folder} is neither a `pconv evaluate` folder (settings.json, results.jsonl) "
                "nor a `pconv train` run (metrics.jsonl)"
            )
    groupings = {e["table"].get("grouping", "paper") for e in evals}
    if len(groupings) > 1:
        raise UserError(
            f"the evaluations use different groupings ({', '.join(sorted(groupings))}); "
            "rerun them with one --grouping to compare them side by side"
        )
    names = [e["name"] for e in evals]
    for e in evals:  # two evaluations of one method: tell them apart by folder
        if names.count(e["name"]) > 1:
            e["name"] = f"{e['name']} ({e['folder'].name})"
    return evals, runs


def grouping_of(evals: list[dict]) -> Grouping:
    return get_grouping(evals[0]["table"].get("grouping", "paper"))


def bucket_curves(rows: list[dict], key: str, grouping: Grouping | None = None):
    """(mean hole ratio, mean `key`) per non-empty pooled column of `grouping` (default: the
    paper's buckets, N and B pooled), in column order; two float arrays."""
    grouping = grouping or get_grouping("paper")
    xs, ys = [], []
    for column in grouping.pooled[:-1]:
        chosen = [r for r in rows if grouping.pooled_of(r) == column and r.get(key) is not None]
        if chosen:
            xs.append(np.mean([r["hole_ratio"] for r in chosen]))
            ys.append(np.mean([r[key] for r in chosen]))
    return np.array(xs), np.array(ys)


def pooled_curve(e: dict, key: str, grouping: Grouping):
    """(mean hole ratio, value) of a pooled metric (table.json's `buckets`) per column that
    has a value."""
    values = ((e["table"].get("buckets") or {}).get("metrics", {}).get(key) or {}).get("values")
    xs, ys = [], []
    for column in grouping.pooled[:-1]:
        if values and values.get(column) is not None:
            ratios = [r["hole_ratio"] for r in e["rows"] if grouping.pooled_of(r) == column]
            xs.append(np.mean(ratios))
            ys.append(values[column])
    return np.array(xs), np.array(ys)


def _side_by_side(evals: list[dict], block: str | None) -> list[str]:
    """Markdown: one table per metric, rows = evaluations, columns of the table (or pooled)."""
    lines = []
    for e in evals:
        if block and not e["table"].get(block):
            return []
    first = evals[0]["table"][block] if block else evals[0]["table"]
    columns = first["columns"]
    for key, metric in first["metrics"].items():
        lines += [f"**{metric['title']}**", ""]
        lines.append("| method | " + " | ".join(first["column_titles"][c] for c in columns) + " |")
        lines.append("|---|" + "---:|" * len(columns))
        for e in evals:
            part = e["table"][block] if block else e["table"]
            values = part["metrics"].get(key, {}).get("values", {})
            fmt = "{:.3f}" if key in ("ssim", "lpips", "is") else "{:.2f}"
            cells = [tables.MISSING if values.get(c) is None else fmt.format(values[c])
                     for c in columns]  # fmt: skip
            lines.append(f"| {e['name']} | " + " | ".join(cells) + " |")
        parts = [(e["name"], e["table"][block] if block else e["table"]) for e in evals]
        if _same_counts(evals, block):  # one pairs row when all agree, else one per method
            parts = [("", parts[0][1])]
        for name, part in parts:
            counts = " | ".join(str(part["pairs"][c]) for c in columns)
            lines.append(f"| pairs{' of ' + name if name else ''} | {counts} |")
        lines.append("")
    return lines


def _same_counts(evals: list[dict], block: str | None) -> bool:
    counts = [(e["table"][block] if block else e["table"])["pairs"] for e in evals]
    return all(c == counts[0] for c in counts)


def plot_metrics(evals: list[dict], path: pathlib.Path) -> None:
    """Every metric against the hole ratio, one line per evaluation (pooled metrics only when
    some evaluation has a value)."""
    grouping = grouping_of(evals)
    curves: list[tuple[str, str, bool, Callable | None]]
    curves = [(key, title, up, bucket_curves) for key, title, up in PLOTTED]
    for key, title, up in POOLED:
        if any(len(pooled_curve(e, key, grouping)[0]) for e in evals):
            curves.append((key, title, up, None))
    cols = min(4, len(curves))
    rows = -(-len(curves) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.4 * rows), squeeze=False)
    for ax, (key, title, up, per_pair) in zip(axes.ravel(), curves):
        for e in evals:
            if per_pair is not None:
                x, y = per_pair(e["rows"], key, grouping)
            else:
                x, y = pooled_curve(e, key, grouping)
            if len(x):
                ax.plot(x, y, marker="o", label=e["name"])
        ax.set_xlabel("hole ratio (column mean)")
        ax.set_title(title + (", higher is better" if up else ", lower is better"), fontsize=10)
        ax.grid(alpha=0.3)
    for ax in axes.ravel()[len(curves) :]:
        ax.axis("off")
    axes[0, 0].legend(fontsize=8)
    fig.tight_layout()
    _save(fig, path)


def _save(fig, path: pathlib.Path) -> None:
    with atomic.replacing(path) as temporary:  # same bytes on a rerun: no Software tag
        fig.savefig(temporary, format="png", dpi=100, metadata={"Software": None})
    plt.close(fig)


def grid_pairs(evals: list[dict]) -> dict[str, list[dict]]:
    """pooled column -> the rows (of the first evaluation) shown in its grid: per column (paper:
    N cell, then B cell), the first pair in the evaluation's order whose output every
    evaluation saved."""
    grouping = grouping_of(evals)
    saved = [{int(p.stem) for p in (e["folder"] / "examples").glob("*.png")} for e in evals]
    common = set.intersection(*saved) if saved else set()
    shown: dict[str, list[dict]] = {}
    for column in grouping.columns[:-1]:
        rows = [
            r for r in evals[0]["rows"] if grouping.column_of(r) == column and r["pair"] in common
        ]
        if rows:
            first = min(rows, key=lambda r: r["pair"])
            shown.setdefault(grouping.pooled_of(first), []).append(first)
    return shown


def _scored(e: dict, truth, mask, pair: int):
    """The image `e` scored for `pair`: its saved output, composited unless scored raw."""
    fill = np.asarray(Image.open(e["folder"] / "examples" / f"{pair:06d}.png"), np.float32) / 255
    if e["settings"].get("known", "composited") == "raw":
        return fill
    return truth * mask + fill * (1.0 - mask)


def plot_grids(evals: list[dict], out: pathlib.Path) -> list[str]:
    """grid_{tag}.png per pooled column; returns the file names written."""
    grouping = grouping_of(evals)
    plan = rebuild(evals[0]["settings"])
    size = evals[0]["settings"]["size"]
    written = []
    for column, rows in grid_pairs(evals).items():
        titles = ["input (holes white)"] + [e["name"] for e in evals] + ["truth"]
        # Inches at 100 dpi: panels near their native pixels, and room for titles when small.
        side = max(size / 100 + 0.3, 1.6)
        fig, axes = plt.subplots(
            len(rows),
            len(titles),
            figsize=(side * len(titles), (side + 0.15) * len(rows)),
            squeeze=False,
        )
        for i, row in enumerate(rows):
            truth_u8, mask = plan.load(plan.pairs[row["pair"]])
            truth = truth_u8.astype(np.float32) / 255.0
            shown = [truth * mask + (1.0 - mask)]
            shown += [_scored(e, truth, mask, row["pair"]) for e in evals]
            shown.append(truth)
            for j, picture in enumerate(shown):
                ax = axes[i, j]
                ax.imshow(np.clip(picture, 0.0, 1.0), interpolation="nearest")
                ax.set_xticks([])
                ax.set_yticks([])
                if i == 0:
                    ax.set_title(titles[j], fontsize=9)
            side_label = "" if row.get("border") is None else (", B" if row["border"] else ", N")
            axes[i, 0].set_ylabel(
                f"{row['image']}, mask {row['mask']}\nhole {row['hole_ratio']:.2f}{side_label}",
                fontsize=7,
            )
        fig.suptitle(f"hole ratio {grouping.titles[column]}: each method as scored", fontsize=10)
        fig.tight_layout()
        name = f"grid_{grouping.tags[column]}.png"
        _save(fig, out / name)
        written.append(name)
    return written


def plot_run(run: pathlib.Path, out: pathlib.Path) -> list[str]:
    """<run>_losses.png (train/* loss terms vs step) and <run>_validation.png (val/*)."""
    lines = _read_jsonl(run / "metrics.jsonl")
    skip = {"train/images_per_sec", "train/learning_rate", "train/grad_norm"}
    terms = sorted({k for x in lines for k in x if k.startswith("train/") and k not in skip})
    written = []
    figures = [(f"{run.name}_losses.png", [(k, k[6:]) for k in terms], True)]
    if any("val/lpips" in x for x in lines):
        figures.append(
            (f"{run.name}_validation.png", [(f"val/{k}", t) for k, t in VALIDATION], False)
        )
    for name, keys, log_y in figures:
        cols = min(4, len(keys))
        rows = -(-len(keys) // cols)
        fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 2.8 * rows), squeeze=False)
        for ax, (key, title) in zip(axes.ravel(), keys):
            points = [(x["step"], x[key]) for x in lines if key in x]
            ax.plot(*zip(*points), marker="." if len(points) < 50 else None)
            if log_y and all(v > 0 for _, v in points):
                ax.set_yscale("log")
            ax.set_title(title, fontsize=9)
            ax.set_xlabel("step", fontsize=8)
            ax.grid(alpha=0.3)
        for ax in axes.ravel()[len(keys) :]:
            ax.axis("off")
        fig.suptitle(f"{run.name}: {'loss terms' if log_y else 'validation (all pairs)'}")
        fig.tight_layout()
        _save(fig, out / name)
        written.append(name)
    return written


def write_report(folders, out_dir) -> pathlib.Path:
    """Writes out_dir/report.md and its PNGs; returns the page's path."""
    evals, runs = classify(folders)
    out = pathlib.Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    page = ["# Inpainting report", ""]
    if evals:
        page += ["## Evaluations", ""]
        for e in evals:
            page.append(f"- **{e['name']}**: `{e['folder']}`; {e['table']['notes'][0]}")
        page += ["", *[f"- {note}" for note in evals[0]["table"]["notes"][1:]], ""]
        pooled = _side_by_side(evals, "buckets")
        if grouping_of(evals).name == "paper":
            headings = ("Per hole-ratio bucket x N/B", "Per hole-ratio bucket, N and B pooled")
        else:
            headings = ("Per LaMa area bin", "Metrics of whole sets, per LaMa area bin")
        page += [f"### {headings[0]}", "", *_side_by_side(evals, None)]
        page += [f"### {headings[1]}", ""]
        page += pooled or [
            "FID / IS / U-IDS / P-IDS: not computed (run `pconv evaluate` with --fid-weights).",
            "",
        ]
        plot_metrics(evals, out / "metrics_vs_hole_ratio.png")
        page += ["### Metrics against the hole ratio", "", "![](metrics_vs_hole_ratio.png)", ""]
        different = [k for k in SAME_PAIRS if len({str(e["settings"][k]) for e in evals}) > 1]
        page += ["### The same photo and mask across methods", ""]
        if different:
            page += [f"No grids: the evaluations differ in {', '.join(different)}.", ""]
        else:
            page += [
                "Chosen by rule: per bucket (paper: the first pair of its N cell and of its B "
                "cell) or area bin (LaMa: its first pair), in the evaluation's seeded order, "
                "whose fill every method saved.",
                "",
            ]
            page += [f"![]({name})\n" for name in plot_grids(evals, out)]
    for run in runs:
        page += [f"## Training run `{run}`", ""]
        page += [f"![]({name})\n" for name in plot_run(run, out)]
    path = out / "report.md"
    atomic.write_text(path, "\n".join(page).rstrip() + "\n")
    return path
