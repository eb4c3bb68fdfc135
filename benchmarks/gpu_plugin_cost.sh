#!/usr/bin/env bash
# The plug-in's training cost on a CUDA GPU: bench_train.py with the loss eager and
# compiled (train.compile_loss), for mvnet and mediapipe-68 (the network of base+), then the
# GPU tests. BASE=DIR (a checkout of an older commit) also times that tree's eager loss in the
# same run, so the numbers compare on one card. Each run is written to $OUT/results/train/ (copy
# the JSON files into the repository's results/train/ and run `mvface bench report`).
#
#   OUT=out/gpu bash benchmarks/gpu_plugin_cost.sh
set -u
OUT=${OUT:-out/gpu}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,driver_version,memory.used,clocks.sm --format=csv,noheader
args=(--device cuda --repeats 10 --warmup 3)
for model in mediapipe-68 mvnet; do
    for loss in on off; do
        PYTHONPATH=src python3 benchmarks/bench_train.py "${args[@]}" --model "$model" \
            --compile-loss "$loss" --results "$OUT/results" 2>&1 | grep -v Warning
    done
    if [ -n "${BASE:-}" ]; then
        echo "== $BASE (older tree), $model"
        PYTHONPATH="$BASE/src" python3 "$BASE/benchmarks/bench_train.py" "${args[@]}" \
            --model "$model" 2>&1 | grep -v Warning
    fi
done
PYTHONPATH=src python3 -m pytest -q -p no:cacheprovider -p no:warnings --tb=short \
    tests/train/test_compile_loss.py tests/train/test_trainer.py -k gpu 2>&1 | tail -40
