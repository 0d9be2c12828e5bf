#!/usr/bin/env bash
# The GPU figures in one run, on a machine with a CUDA device: prediction speed and agreement
# (inference.py), training throughput at the default and at GPU-sized inputs (train.py),
# and the CUDA-only paths (cuda_paths.py: mixed-precision training against fp32, recovery
# from out-of-memory in prediction and training). Logs go to $1 (default: the current folder).
#
#     bash benchmarks/cuda_check.sh [LOG_DIR]
set -u
logs=${1:-.}
here=$(cd "$(dirname "$0")" && pwd)
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 "$here/inference.py" --device cuda --runs 10 2>&1 | tee "$logs/inference.txt"
python3 "$here/train.py" --device cuda 2>&1 | tee "$logs/train_128.txt"
python3 "$here/train.py" --device cuda --size 512 --batch 8 --iters 60 --warmup 10 2>&1 \
    | tee "$logs/train_512.txt"
python3 "$here/train.py" --device cuda --preset r50v2 --size 800 --batch 4 --iters 30 \
    --warmup 5 2>&1 | tee "$logs/train_r50v2_800.txt"
python3 "$here/cuda_paths.py" 2>&1 | tee "$logs/cuda_paths.txt"
