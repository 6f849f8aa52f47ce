#!/usr/bin/env bash
# The classical baselines of experiments/README.md on the same image-mask pairs as the GPU runs
# (experiments/gpu_session.sh): Telea, NS (OpenCV) and PatchMatch (pypatchmatch), on this CPU.
#   python experiments/pack_gpu_data.py ../shared .gpu_data && bash experiments/run_cpu_baselines.sh
set -euo pipefail
cd "$(dirname "$0")/.."
WORKERS=${WORKERS:-2}
for method in telea ns patchmatch; do
  for set in "kodak .gpu_data/kodak512 12" "imagenet .gpu_data/imagenet_eval 3"; do
    read -r name images k <<<"$set"
    for size in 256 512; do
      pconv evaluate --method "$method" --images "$images" --masks .gpu_data/nvidia_test_masks \
        --size "$size" --seed 0 --masks-per-image "$k" --workers "$WORKERS" \
        --out "runs/eval_${method}_${name}_${size}" | tail -n 8
    done
  done
done
