#!/usr/bin/env bash
# The runs behind the GPU numbers in README.md and experiments/README.md, as they were done on a
# lent H100 (Python 3.12, jax 0.11, no tensorflow/tfds): each stage fits one 10-minute call.
#
#   python experiments/pack_gpu_data.py ../shared .gpu_data     # here, once (ignored folder)
#   bash experiments/gpu_session.sh smoke|bench|pconv|conv|superres   # on the GPU machine
#
# Outputs go to $OUT (the device tool's return folder), or ./gpu_out when it is unset.
set -uo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
OUT=${OUT:-gpu_out}
mkdir -p "$OUT"
PY=${PY:-python3}
MASKS=.gpu_data/nvidia_test_masks

evaluate() {  # evaluate RUN METHOD NAME IMAGES SIZE K
  local run=$1 method=$2 name=$3 images=$4 size=$5 k=$6
  $PY -m pconv_jax evaluate --method "$method" --checkpoint "$run" --images "$images" \
    --masks "$MASKS" --size "$size" --seed 0 --masks-per-image "$k" --batch-size 32 \
    --out "runs/eval_${method}_${name}_${size}" 2>&1 | tail -n 25
  cp "runs/eval_${method}_${name}_${size}/table.md" "$OUT/table_${method}_${name}_${size}.md"
}

train_and_evaluate() {  # train_and_evaluate CONFIG RUN METHOD SECONDS
  local config=$1 run=$2 method=$3 seconds=$4
  $PY -m pconv_jax train --config "$config" --workdir "$run" \
    --set train.max_seconds="$seconds" 2>&1 | grep -v '^ \|^[{}]' | tail -n 40
  cp "$run/metrics.jsonl" "$OUT/metrics_${method}.jsonl"
  cp "$(ls "$run"/samples/*.png | tail -n 1)" "$OUT/samples_${method}.png"
  evaluate "$run" "$method" kodak .gpu_data/kodak512 512 12
  evaluate "$run" "$method" kodak .gpu_data/kodak512 256 12
  evaluate "$run" "$method" imagenet .gpu_data/imagenet_eval 256 3
  evaluate "$run" "$method" imagenet .gpu_data/imagenet_eval 512 3
}

case "${1:-}" in
  smoke)
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
    $PY -c "import sys, jax, flax, optax, orbax.checkpoint as o; print(sys.version); \
print('jax', jax.__version__, 'flax', flax.__version__, 'optax', optax.__version__, \
'orbax', o.__version__, jax.devices())"
    $PY -m pconv_jax train --config experiments/configs/tiny.py --workdir runs/smoke \
      --set data.dir=.gpu_data/imagenet_train --set train.num_steps=3 2>&1 | tail -n 5
    $PY -m pconv_jax evaluate --method pconv --checkpoint runs/smoke --images .gpu_data/kodak512 \
      --masks "$MASKS" --size 512 --masks-per-image 12 --out runs/eval_smoke 2>&1 | tail -n 4
    ;;
  bench)
    $PY experiments/bench_layers.py --gpu 2>&1 | tee "$OUT/bench_layers_gpu.txt" | tail -n 20
    $PY experiments/bench_train.py --gpu --batches 32 2>&1 | tee "$OUT/bench_train_gpu.txt" \
      | tail -n 12
    ;;
  pconv)
    train_and_evaluate experiments/configs/imagenet_sample_256.py runs/pconv_in256 pconv "${2:-300}"
    ;;
  conv)
    train_and_evaluate experiments/configs/imagenet_sample_256_conv.py runs/conv_in256 conv \
      "${2:-300}"
    ;;
  superres)
    $PY -m pconv_jax train --config experiments/configs/superres_256.py --workdir runs/sr_in256 \
      --set data.dir=.gpu_data/imagenet_train --set train.max_seconds="${2:-150}" \
      --set train.batch_size_per_device=32 --set train.compute_dtype=bfloat16 \
      --set data.num_workers=14 --set data.prefetch=6 --set train.log_every=100 2>&1 \
      | grep -v '^ \|^[{}]' | tail -n 20
    $PY experiments/eval_superres.py --checkpoint runs/sr_in256 --factors 2 4 \
      --images .gpu_data/kodak512 --out "$OUT/superres_kodak.md" 2>&1 | tail -n 12
    ;;
  *)
    echo "usage: $0 smoke|bench|pconv [SECONDS]|conv [SECONDS]|superres [SECONDS]" >&2
    exit 2
    ;;
esac
