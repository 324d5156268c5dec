#!/usr/bin/env bash
# Shared body of pretrain_sbatch.sh / finetune_sbatch.sh (sourced; expects STAGE and DEFAULT_CONFIG).
# Finds the repository (SLURM copies the batch script away, so SLURM_SUBMIT_DIR is used there),
# picks the Python of .venv if present, and launches torchrun with one process per GPU.
set -euo pipefail
if [[ -n "${SLURM_SUBMIT_DIR:-}" ]]; then
  REPO="$SLURM_SUBMIT_DIR"
else
  REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
fi
cd "$REPO"
mkdir -p logs
PY="${PYTHON:-}"
if [[ -z "$PY" ]]; then
  if [[ -x .venv/bin/python ]]; then PY=.venv/bin/python; else PY=python3; fi
fi
CONFIG="${1:-$DEFAULT_CONFIG}"
[[ $# -gt 0 ]] && shift
if [[ ! -f "$CONFIG" ]]; then
  echo "error: config file not found: $CONFIG" >&2
  exit 2
fi
# processes per node: the GPUs SLURM gave us, else those visible, else one CPU process
if [[ -n "${SLURM_GPUS_ON_NODE:-}" ]]; then
  NPROC="$SLURM_GPUS_ON_NODE"
elif command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
  NPROC="$(nvidia-smi -L | wc -l)"
else
  NPROC=1
fi
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-${SLURM_CPUS_PER_TASK:-4}}"
echo "textseld $STAGE: config=$CONFIG processes=$NPROC python=$PY host=$(hostname)"
if [[ "$NPROC" -gt 1 ]]; then
  exec "$PY" -m torch.distributed.run --standalone --nproc_per_node="$NPROC" -m seld.cli "$STAGE" --config "$CONFIG" "$@"
else
  exec "$PY" -m seld.cli "$STAGE" --config "$CONFIG" "$@"
fi
