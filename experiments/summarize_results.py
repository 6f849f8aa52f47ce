"""Collects the Table 1 layouts of `pconv evaluate` into the tables of experiments/README.md.

    python experiments/summarize_results.py experiments/results/h100_2026-11-24 runs

Reads `table_<method>_<set>_<size>.md` files (the GPU runs) and `runs/eval_<method>_<set>_<size>/
table.md` folders (the CPU baselines) and prints Markdown: one compact table of the `all` column
for every method, image set and size, then a Table-1-style table (methods x metrics by cell) for
each image set and size.
"""

import pathlib
import re
import sys

METHODS = ["pconv", "conv", "patchmatch", "telea", "ns"]
LABELS = {"pconv": "PConv", "conv": "Conv", "patchmatch": "PM", "telea": "Telea", "ns": "NS"}
SETS = [("kodak", 512), ("kodak", 256), ("imagenet", 512), ("imagenet", 256)]
ROWS = ["l1 (%)", "PSNR (dB)", "SSIM"]


def read_table(path: pathlib.Path) -> tuple[list[str], dict[str, list[str]]]:
    """(column titles, {row name: cells}) of the first Markdown table in a table.md."""
    text = path.read_text().splitlines()
    start = next(i for i, line in enumerate(text) if line.startswith("|"))
    lines = []  # up to the first line that is not a table row: later tables are FID / IS
    for line in text[start:]:
        if not line.startswith("|"):
            break
        lines.append(line)
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    rows = {}
    for line in lines[2:]:
        cells = [c.strip() for c in line.strip("|").split("|")]
        rows[cells[0]] = cells[1:]
    return header[1:], rows


def find(roots: list[pathlib.Path], method: str, name: str, size: int) -> pathlib.Path | None:
    for root in roots:
        for candidate in (
            root / f"table_{method}_{name}_{size}.md",
            root / f"eval_{method}_{name}_{size}" / "table.md",
        ):
            if candidate.is_file():
                return candidate
    return None


def main(roots: list[str]) -> None:
    roots = [pathlib.Path(r) for r in roots]
    print("| images | size | method | l1 (%) | PSNR (dB) | SSIM | pairs |")
    print("|---|---:|---|---:|---:|---:|---:|")
    for name, size in SETS:
        for method in METHODS:
            path = find(roots, method, name, size)
            if path is None:
                print(f"| {name} | {size} | {LABELS[method]} | (not available) | | | |")
                continue
            columns, rows = read_table(path)
            i = columns.index("all")
            cells = [rows[r][i] for r in ROWS] + [rows["pairs"][i]]
            print(f"| {name} | {size} | {LABELS[method]} | " + " | ".join(cells) + " |")
    for name, size in SETS:
        tables = {m: find(roots, m, name, size) for m in METHODS}
        available = {m: read_table(p) for m, p in tables.items() if p is not None}
        if not available:
            continue
        columns = next(iter(available.values()))[0]
        short = [re.sub(r"^\(([\d.]+),([\d.]+)\] ([NB])$", r"\1-\2 \3", c) for c in columns]
        print(
            f"\n**{name}, {size} px** (pairs per cell: "
            f"{next(iter(available.values()))[1]['pairs'][0]})\n"
        )
        print("| metric | " + " | ".join(short) + " |")
        print("|---|" + "---:|" * len(short))
        for row in ROWS:
            for method, (_, rows) in available.items():
                print(f"| {row.split(' ')[0]} {LABELS[method]} | " + " | ".join(rows[row]) + " |")


if __name__ == "__main__":
    main(sys.argv[1:])
