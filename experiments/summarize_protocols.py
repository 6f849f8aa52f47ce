"""The protocol tables of experiments/README.md from the folders of run_protocols_kodak.sh.

    python experiments/summarize_protocols.py experiments/results/cpu_protocols_DATE

Prints Markdown: per protocol, one line per method with the "all" column of its table.json,
then per protocol the per-column LPIPS (paper: 12 cells; LaMa: its area bins).
"""

import json
import pathlib
import sys

METHODS = (("telea", "Telea"), ("ns", "NS"), ("patchmatch", "PM"))
PROTOCOLS = ("paper", "lama-thin", "lama-medium", "lama-thick")
KEYS = (("l1", "{:.2f}"), ("psnr", "{:.2f}"), ("ssim", "{:.3f}"), ("lpips", "{:.3f}"))


def main(root: pathlib.Path) -> None:
    print("| protocol | method | l1 (%) | PSNR (dB) | SSIM | LPIPS | LPIPS net | pairs |")
    print("|---|---|---:|---:|---:|---:|---|---:|")
    tables = {}
    for protocol in PROTOCOLS:
        for method, title in METHODS:
            path = root / protocol / method / "table.json"
            if not path.is_file():
                continue
            table = tables[(protocol, method)] = json.loads(path.read_text())
            cells = [fmt.format(table["metrics"][k]["values"]["all"]) for k, fmt in KEYS]
            net = table["settings"]["lpips_net"]
            print(
                f"| {protocol} | {title} | {' | '.join(cells)} | {net} | {table['pairs']['all']} |"
            )
    for protocol in PROTOCOLS:
        chosen = [(title, tables[(protocol, m)]) for m, title in METHODS if (protocol, m) in tables]
        if not chosen:
            continue
        columns = [c for c in chosen[0][1]["columns"] if chosen[0][1]["pairs"][c]]
        titles = chosen[0][1]["column_titles"]
        print(f"\n{protocol}: PSNR (dB) / LPIPS per column (empty columns left out)\n")
        print("| method | " + " | ".join(titles[c] for c in columns) + " |")
        print("|---|" + "---:|" * len(columns))
        for title, table in chosen:
            psnr, lp = table["metrics"]["psnr"]["values"], table["metrics"]["lpips"]["values"]
            cells = [f"{psnr[c]:.2f} / {lp[c]:.3f}" for c in columns]
            print(f"| {title} | " + " | ".join(cells) + " |")
        print("| pairs | " + " | ".join(str(chosen[0][1]["pairs"][c]) for c in columns) + " |")


if __name__ == "__main__":
    main(pathlib.Path(sys.argv[1]))
