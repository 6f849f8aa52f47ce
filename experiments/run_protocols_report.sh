#!/usr/bin/env bash
# After run_protocols_kodak.sh: Telea fills written by experiments/fill_with_opencv.py (no
# pconv_jax) from exported pairs, scored with --predictions beside the three methods, and one
# `pconv report` per protocol.
#   PYTHONPATH=$PWD nice -n 10 bash experiments/run_protocols_report.sh experiments/results/cpu_protocols_DATE
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:?results folder}
WORK=${WORK:-runs/protocol_pairs}  # exported images and fills: too big to commit
KODAK=../shared/data/kodak
pconv evaluate --images "$KODAK" --masks ../shared/data/nvidia_test_masks --size 256 --seed 0 \
  --masks-per-image 12 --export-pairs "$WORK/paper"
python experiments/fill_with_opencv.py "$WORK/paper" "$WORK/paper_telea_fills" telea
pconv evaluate --pairs "$WORK/paper" --predictions "$WORK/paper_telea_fills" \
  --name "telea (fills from a script)" --out "$OUT/paper/telea_script" | tail -n 2
for protocol in paper lama-thin lama-medium lama-thick; do
  extra=()
  [[ $protocol == paper ]] && extra=("$OUT/paper/telea_script")
  pconv report "$OUT/$protocol/telea" "$OUT/$protocol/ns" "$OUT/$protocol/patchmatch" \
    "${extra[@]}" -o "$OUT/$protocol/report"
done
