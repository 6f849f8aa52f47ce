"""`pconv report`: one Markdown page comparing evaluations and training runs, with figures.

Inputs are folders: `pconv evaluate` outputs (settings.json, results.jsonl, table.json,
examples/) and `pconv train` run directories (config.json, metrics.jsonl). The page has
- per metric, the evaluations' tables side by side (rows = methods, columns = bucket x N/B),
  and the pooled per-bucket FID/IS table with its pair counts;
- metrics_vs_hole_ratio.png: PSNR, SSIM and LPIPS per hole-ratio bucket (N and B pooled,
  x = the mean measured hole ratio of the bucket's pairs), one line per method;
- grid_bucket{b}.png: the same photo and mask across methods (masked input with holes in
  white, each method's composite, truth). The pairs are chosen by rule, not by looking: in
  each bucket, the first pair (in the evaluation's seeded order) of its N cell and of its B
  cell whose output every evaluation saved (`pconv evaluate` keeps the first two per cell);
- per training run, <run>_losses.png (each loss term against the step) and, when it was
  validated, <run>_validation.png (val/l1, PSNR, SSIM, LPIPS against the step).
"""

from __future__ import annotations

import json
import pathlib

import matplotlib.pyplot as plt
import numpy as np
from PIL import Image

from pconv_jax import images
from pconv_jax.data import eval_set
from pconv_jax.errors import UserError
from pconv_jax.eval import tables
from pconv_jax.masks.protocol import CELLS, HOLE_RATIO_BUCKETS

PLOTTED = (("psnr", "PSNR (dB)"), ("ssim", "SSIM"), ("lpips", "LPIPS (AlexNet)"))
VALIDATION = (("l1", "l1 (%)"), ("psnr", "PSNR (dB)"), ("ssim", "SSIM"), ("lpips", "LPIPS"))
# Settings that must agree for pictures of "the same photo and mask" across evaluations.
SAME_PAIRS = ("images", "split", "limit", "masks", "size", "seed", "masks_per_image")


def _read_jsonl(path: pathlib.Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


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
    names = [e["name"] for e in evals]
    for e in evals:  # two evaluations of one method: tell them apart by folder
        if names.count(e["name"]) > 1:
            e["name"] = f"{e['name']} ({e['folder'].name})"
    return evals, runs


def bucket_curves(rows: list[dict], key: str) -> tuple[np.ndarray, np.ndarray]:
    """(mean hole ratio, mean `key`) per non-empty bucket (N and B pooled), in bucket order."""
    xs, ys = [], []
    for b in range(len(HOLE_RATIO_BUCKETS)):
        chosen = [r for r in rows if r["bucket"] == b and r.get(key) is not None]
        if chosen:
            xs.append(np.mean([r["hole_ratio"] for r in chosen]))
            ys.append(np.mean([r[key] for r in chosen]))
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
    """PSNR, SSIM, LPIPS against the hole ratio, one line per evaluation."""
    fig, axes = plt.subplots(1, len(PLOTTED), figsize=(4.2 * len(PLOTTED), 3.4))
    for ax, (key, title) in zip(axes, PLOTTED):
        for e in evals:
            x, y = bucket_curves(e["rows"], key)
            if len(x):
                ax.plot(x, y, marker="o", label=e["name"])
        ax.set_xlabel("hole ratio (bucket mean)")
        ax.set_title(title + (", lower is better" if key == "lpips" else ", higher is better"))
        ax.grid(alpha=0.3)
    axes[0].legend()
    fig.tight_layout()
    _save(fig, path)


def _save(fig, path: pathlib.Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100, metadata={"Software": None})  # same bytes on a rerun
    plt.close(fig)


def grid_pairs(evals: list[dict]) -> dict[int, list[dict]]:
    """bucket -> the rows (of the first evaluation) shown in its grid: per cell (N, then B),
    the first pair in the evaluation's order whose output every evaluation saved."""
    saved = [{int(p.stem) for p in (e["folder"] / "examples").glob("*.png")} for e in evals]
    common = set.intersection(*saved) if saved else set()
    shown: dict[int, list[dict]] = {}
    for cell in CELLS:
        rows = [r for r in evals[0]["rows"] if tables.cell_of(r) == cell and r["pair"] in common]
        if rows:
            shown.setdefault(int(cell[:-1]), []).append(min(rows, key=lambda r: r["pair"]))
    return shown


def plot_grids(evals: list[dict], out: pathlib.Path) -> list[str]:
    """grid_bucket{b}.png per bucket; returns the file names written."""

    s = evals[0]["settings"]
    source = eval_set.eval_images(s["images"], s["size"], split=s["split"], limit=s["limit"])
    index = {source.name(i): i for i in range(len(source))}
    written = []
    for bucket, rows in sorted(grid_pairs(evals).items()):
        titles = ["input (holes white)"] + [e["name"] for e in evals] + ["truth"]
        # Inches at 100 dpi: panels near their native pixels, and room for titles when small.
        side = max(s["size"] / 100 + 0.3, 1.6)
        fig, axes = plt.subplots(
            len(rows),
            len(titles),
            figsize=(side * len(titles), (side + 0.15) * len(rows)),
            squeeze=False,
        )
        for i, row in enumerate(rows):
            truth = source.load(index[row["image"]]).astype(np.float32) / 255.0
            mask_path = next(pathlib.Path(s["masks"]).rglob(f"{row['mask']}.*"))
            mask = images.read_mask(mask_path, s["size"])
            shown = [truth * mask + (1.0 - mask)]
            for e in evals:
                fill = np.asarray(Image.open(e["folder"] / "examples" / f"{row['pair']:06d}.png"))
                shown.append(truth * mask + fill.astype(np.float32) / 255.0 * (1.0 - mask))
            shown.append(truth)
            for j, picture in enumerate(shown):
                ax = axes[i, j]
                ax.imshow(np.clip(picture, 0.0, 1.0), interpolation="nearest")
                ax.set_xticks([])
                ax.set_yticks([])
                if i == 0:
                    ax.set_title(titles[j], fontsize=9)
            axes[i, 0].set_ylabel(
                f"{row['image']}, mask {row['mask']}\nhole {row['hole_ratio']:.2f}, "
                f"{'B' if row['border'] else 'N'}",
                fontsize=7,
            )
        lo, hi = HOLE_RATIO_BUCKETS[bucket]
        fig.suptitle(f"hole ratio ({lo}, {hi}]: composites of each method", fontsize=10)
        fig.tight_layout()
        name = f"grid_bucket{bucket}.png"
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
            page.append(f"- **{e['name']}**: `{e['folder']}`")
        page += ["", *[f"- {note}" for note in evals[0]["table"]["notes"][1:]], ""]
        page += ["### Per hole-ratio bucket x N/B", "", *_side_by_side(evals, None)]
        pooled = _side_by_side(evals, "buckets")
        page += ["### Per hole-ratio bucket, N and B pooled", ""]
        page += pooled or ["FID / IS: not computed (run `pconv evaluate` with --fid-weights).", ""]
        plot_metrics(evals, out / "metrics_vs_hole_ratio.png")
        page += ["### Metrics against the hole ratio", "", "![](metrics_vs_hole_ratio.png)", ""]
        different = [k for k in SAME_PAIRS if len({str(e["settings"][k]) for e in evals}) > 1]
        page += ["### The same photo and mask across methods", ""]
        if different:
            page += [f"No grids: the evaluations differ in {', '.join(different)}.", ""]
        else:
            page += [
                "Chosen by rule: per bucket, the first pair of its N cell and of its B cell "
                "(the evaluation's seeded order) whose fill every method saved.",
                "",
            ]
            page += [f"![]({name})\n" for name in plot_grids(evals, out)]
    for run in runs:
        page += [f"## Training run `{run}`", ""]
        page += [f"![]({name})\n" for name in plot_run(run, out)]
    path = out / "report.md"
    path.write_text("\n".join(page).rstrip() + "\n", encoding="utf-8")
    return path
