#!/usr/bin/env bash
# The GPU checks in one go, for a node with a CUDA device (issue 11's list):
#   1. the `gpu`-marked tests (CUDA training with bf16 autocast + resume, CUDA WPE and features vs CPU
#      and nara_wpe, inference of a model extracted on CUDA);
#   2. WPE on the GPU against nara_wpe (parity and s/clip, same process);
#   3. training throughput of every stage at real size with random weights, bf16 autocast (fp32 last);
#   4. feature extraction with device cuda (per-clip vs batched front end, with WPE, HDF5 run);
#   4b. seld infer's batched path on the GPU against the old per-file path (bench_inference.py);
#   5. the user's path through `python -m seld` on a small simulated set: synth -> features (device cuda)
#      -> pretrain (quickstart config, train.device auto, train.amp auto: bf16 on the GPU) -> infer on the
#      GPU -> evaluate.
#
# Usage: bash scripts/bench/gpu_checks.sh [LOG]      (PYTHON=... to pick the interpreter; default python3)
#        ONLY="gpu-tests cli-path" bash scripts/bench/gpu_checks.sh   runs those parts alone
#        DEVICE=cpu CLI_CLIPS=8 CLI_EPOCHS=1 ONLY=cli-path ...        tries part 5 on a machine without a GPU
# Each part has its own time limit (PART_TIMEOUT seconds, default 150), so one slow part leaves the others
# their turn; the script's exit status is the number of parts that failed. Everything is also appended to LOG.
set -u
PY=${PYTHON:-python3}
LOG=${1:-/dev/null}
PART_TIMEOUT=${PART_TIMEOUT:-150}
export HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1 OMP_NUM_THREADS=${OMP_NUM_THREADS:-4} MKL_NUM_THREADS=${MKL_NUM_THREADS:-4}
cd "$(dirname "$0")/../.."

DEVICE=${DEVICE:-cuda}
ONLY=${ONLY:-}
failed=0
part() {  # part NAME COMMAND...
    local name=$1
    shift
    if [ -n "$ONLY" ] && [[ " $ONLY " != *" $name "* ]]; then return; fi
    echo "=== $name: $*" | tee -a "$LOG"
    local t0=$SECONDS
    timeout "$PART_TIMEOUT" "$@" 2>&1 | tee -a "$LOG"
    local rc=${PIPESTATUS[0]}
    echo "=== $name: rc $rc, $((SECONDS - t0)) s" | tee -a "$LOG"
    [ "$rc" -eq 0 ] || failed=$((failed + 1))
}

if [ "$DEVICE" = cuda ]; then
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1 | tee -a "$LOG"
    "$PY" -c "import torch, sys; print('torch', torch.__version__, 'cuda', torch.version.cuda); sys.exit(not torch.cuda.is_available())" \
        2>&1 | tee -a "$LOG"
    if [ "${PIPESTATUS[0]}" -ne 0 ]; then
        echo "gpu_checks.sh: torch sees no CUDA device ($PY); on a machine without one, DEVICE=cpu ONLY=cli-path runs the user path" \
            | tee -a "$LOG" >&2
        exit 2
    fi
fi

part gpu-tests "$PY" -m pytest -q -p no:cacheprovider -m gpu -o addopts="" tests/train/test_gpu.py \
    tests/train/test_ema.py tests/features/test_wpe.py tests/test_inference.py
part wpe "$PY" scripts/bench/bench_wpe.py --device cuda --clips 8 --repeats 3 --threads 4
part train-bf16 "$PY" scripts/bench/bench_training.py --device cuda --amp bf16 --stages rcc,beats,clip,bert \
    --batch-size 32 --steps 10 ${TOKENIZER:+--tokenizer "$TOKENIZER"}
part features "$PY" scripts/bench/bench_features.py --device cuda --clips 16 --batch-size 16 --repeats 2 \
    --workers 4 --threads 4 --merge-clips 50
part train-fp32 "$PY" scripts/bench/bench_training.py --device cuda --amp none --stages rcc,beats,clip,bert \
    --batch-size 32 --steps 10 ${TOKENIZER:+--tokenizer "$TOKENIZER"}
# seld infer's batched path on the GPU against the old per-file path on the CPU (quickstart-size model, random
# weights; TOKENIZER=DIR names a folder with the MiniLM vocabulary where the MiniLM package is not installed)
part infer "$PY" scripts/bench/bench_inference.py --device cuda --clips 32 --batch-size 32 --threads 4 --old-threads 4 \
    ${TOKENIZER:+--tokenizer "$TOKENIZER"}
cli_path() {  # part 5: each stage as a user runs it, on a small simulated set
    local d
    d=$(mktemp -d)
    "$PY" -m seld synth --out "$d/data" --clips "${CLI_CLIPS:-40}" --seed 0 --no-progress || return 1
    "$PY" -m seld features -c configs/quickstart/features.yml --no-progress "dataset_root=$d/data" \
        "output_dir=$d/features" "device=$DEVICE" batch_size=16 || return 1
    "$PY" -m seld pretrain --config configs/quickstart/pretrain.yml --no-progress "data.features_dir=$d/features" \
        "train.out_dir=$d/pretrain" "train.epochs=${CLI_EPOCHS:-10}" train.amp=auto || return 1
    "$PY" -m seld infer --checkpoint "$d/pretrain/checkpoints/last.pt" --audio "$d/data/stereo_dev/dev-test-synth" \
        --out "$d/pred" --device "$DEVICE" --no-progress || return 1
    "$PY" -m seld evaluate --pred "$d/pred" --ref "$d/data/metadata_dev/dev-test-synth" --no-progress
}
export PY DEVICE
export -f cli_path
part cli-path bash -c cli_path
echo "=== parts failed: $failed" | tee -a "$LOG"
exit "$failed"
