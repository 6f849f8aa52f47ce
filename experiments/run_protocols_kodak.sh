#!/usr/bin/env bash
# Telea, NS and PatchMatch on the 24 Kodak photos at 256 px under the paper's protocol (NVIDIA
# test masks, 12 per photo = 24 pairs per cell, AlexNet LPIPS) and LaMa's (thin, medium, thick
# masks from pconv_jax.masks.lama, 2 per photo and kind, VGG LPIPS, LaMa's area bins), on this
# CPU, at low priority. Then the tables of experiments/README.md:
#   PYTHONPATH=$PWD nice -n 10 bash experiments/run_protocols_kodak.sh experiments/results/cpu_protocols_DATE
#   python experiments/summarize_protocols.py experiments/results/cpu_protocols_DATE
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:?results folder}
WORKERS=${WORKERS:-2}
KODAK=../shared/data/kodak
for method in telea ns patchmatch; do
  pconv evaluate --method "$method" --images "$KODAK" \
    --masks ../shared/data/nvidia_test_masks --size 256 --seed 0 --masks-per-image 12 \
    --workers "$WORKERS" --out "$OUT/paper/$method" | tail -n 3
  for kind in thin medium thick; do
    pconv evaluate --method "$method" --images "$KODAK" \
      --protocol "lama-$kind" --size 256 --seed 0 --masks-per-image 2 --lpips-net vgg \
      --workers "$WORKERS" --out "$OUT/lama-$kind/$method" | tail -n 3
  done
done
