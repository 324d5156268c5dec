#!/usr/bin/env bash
# Shared body of pretrain_sbatch.sh / finetune_sbatch.sh / train_sbatch.sh (sourced; expects STAGE, a
# name of seld.tasks.STAGES, and DEFAULT_CONFIG),
# and the per-node task those scripts start under SLURM (`launch_stage.sh --node-task STAGE CONFIG ...`).
#
# Three ways it runs:
#   plain bash (no SLURM)   one process, or torchrun --standalone with one process per visible GPU
#   SLURM batch script      srun starts one node task per node (below) and waits; a run stopped by a
#                           preemption signal exits 75 after saving last.pt, and the job is requeued
#                           with `scontrol requeue` (it resumes from last.pt)
#   SLURM node task         torchrun --nnodes=$SLURM_NNODES --nproc_per_node=<GPUs of this node> with a
#                           c10d rendezvous at the first host of $SLURM_JOB_NODELIST; a single process
#                           when the job has one node and at most one GPU
# Environment: PYTHON (interpreter; default .venv/bin/python, else python3), MASTER_PORT
# (rendezvous port; default 29500 + SLURM_JOB_ID % 10000).
set -euo pipefail
EXIT_REQUEUE=75   # seld.train.stopping.EXIT_REQUEUE
NODE_TASK=0
if [[ "${1:-}" == "--node-task" ]]; then
  NODE_TASK=1
  STAGE="$2"
  CONFIG="$3"
  shift 3
else
  CONFIG="${1:-$DEFAULT_CONFIG}"
  [[ $# -gt 0 ]] && shift
fi
if [[ -n "${SLURM_SUBMIT_DIR:-}" ]]; then
  REPO="$SLURM_SUBMIT_DIR"   # SLURM runs a copy of the batch script from its spool folder
else
  REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
fi
cd "$REPO"
mkdir -p logs
PY="${PYTHON:-}"
if [[ -z "$PY" ]]; then
  if [[ -x .venv/bin/python ]]; then PY="$REPO/.venv/bin/python"; else PY=python3; fi
fi
# the stage must be an entry of seld.tasks.STAGES (that module imports no torch: ~0.1 s); a node task's
# STAGE was checked by the batch step that started it
if [[ "$NODE_TASK" == 0 ]] && ! "$PY" -c 'import sys; from seld.tasks import unknown_stage
problem = unknown_stage(sys.argv[1])
sys.exit(problem and "error: " + problem)' "$STAGE"; then
  exit 2
fi
if [[ ! -f "$CONFIG" ]]; then
  echo "error: config file not found: ${CONFIG:-(none given)}" >&2
  exit 2
fi

# ---------------------------------------------------------------- SLURM batch script: one task per node
# (inside a job step, e.g. `srun bash pretrain_sbatch.sh`, SLURM_STEP_ID is set: run as on a plain machine)
if [[ "$NODE_TASK" == 0 && -n "${SLURM_JOB_ID:-}" && -z "${SLURM_STEP_ID:-}" ]]; then
  NNODES="${SLURM_NNODES:-1}"
  echo "textseld $STAGE: job $SLURM_JOB_ID (restart ${SLURM_RESTART_COUNT:-0}) on $NNODES node(s): ${SLURM_JOB_NODELIST:-?}"
  SRUN_ARGS=(--nodes="$NNODES" --ntasks="$NNODES" --ntasks-per-node=1)
  # srun does not inherit --cpus-per-task from the job (SLURM >= 22.05): pass it on
  [[ -n "${SLURM_CPUS_PER_TASK:-}" ]] && SRUN_ARGS+=(--cpus-per-task="$SLURM_CPUS_PER_TASK")
  set +e
  srun "${SRUN_ARGS[@]}" bash "$REPO/scripts/launch_stage.sh" --node-task "$STAGE" "$CONFIG" "$@"
  rc=$?
  set -e
  if [[ "$rc" == "$EXIT_REQUEUE" ]]; then
    echo "textseld $STAGE: stopped by a signal after saving last.pt; requeueing job $SLURM_JOB_ID"
    scontrol requeue "$SLURM_JOB_ID"
    exit 0
  fi
  exit "$rc"
fi

# ---------------------------------------------------------------- one node: torchrun or a single process
# processes on this node: the GPUs SLURM gave us, else those visible, else one CPU process
if [[ -n "${SLURM_GPUS_ON_NODE:-}" ]]; then
  NPROC="$SLURM_GPUS_ON_NODE"
elif command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
  NPROC="$(nvidia-smi -L | wc -l)"
else
  NPROC=1
fi
[[ "$NPROC" -ge 1 ]] || NPROC=1
NNODES=1
[[ "$NODE_TASK" == 1 ]] && NNODES="${SLURM_NNODES:-1}"
if [[ -z "${OMP_NUM_THREADS:-}" ]]; then   # the node's CPUs shared by its processes
  THREADS=$(( ${SLURM_CPUS_PER_TASK:-4} / NPROC ))
  export OMP_NUM_THREADS=$(( THREADS > 0 ? THREADS : 1 ))
fi
echo "textseld $STAGE: config=$CONFIG processes=$NPROC (per node; nodes=$NNODES) python=$PY host=$(hostname)"
CMD=(-m seld.cli "$STAGE" --config "$CONFIG" "$@")
if [[ "$NPROC" -le 1 && "$NNODES" -le 1 ]]; then
  exec "$PY" "${CMD[@]}"   # signals reach the trainer directly; its exit status is ours
fi
if [[ "$NODE_TASK" == 1 ]]; then
  # Not `| head -n 1`: under pipefail, scontrol still writing after head has closed the pipe dies of
  # SIGPIPE and the node's launcher exits 141 while the other waits for it at the rendezvous.
  HOSTS="$(scontrol show hostnames "$SLURM_JOB_NODELIST")"
  MASTER="${HOSTS%%$'\n'*}"
  [[ -n "$MASTER" ]] || { echo "launch_stage.sh: scontrol gave no host for SLURM_JOB_NODELIST=$SLURM_JOB_NODELIST" >&2; exit 2; }
  PORT="${MASTER_PORT:-$(( 29500 + SLURM_JOB_ID % 10000 ))}"
  RDZV=(--nnodes="$NNODES" --rdzv_backend=c10d --rdzv_endpoint="$MASTER:$PORT" --rdzv_id="$SLURM_JOB_ID")
else
  RDZV=(--standalone)
fi
# SLURM signals every process of the step. torchrun would die of SIGUSR1 (it only handles TERM/INT),
# so it runs with SIGUSR1 ignored (its workers install their own handler); this shell notes the
# signal so that a run stopped by it exits 75 although torchrun itself reports 1.
STOP=""
trap 'STOP=USR1' USR1
trap 'STOP=TERM' TERM
( trap '' USR1; exec "$PY" -m torch.distributed.run "${RDZV[@]}" --nproc_per_node="$NPROC" "${CMD[@]}" ) &
CHILD=$!
while :; do
  set +e
  wait "$CHILD"
  rc=$?
  set -e
  if (( rc > 128 )) && kill -0 "$CHILD" 2>/dev/null; then continue; fi   # wait was cut short by a trap
  break
done
if [[ "$rc" != 0 && -n "$STOP" ]]; then
  echo "textseld $STAGE: torchrun ended with $rc after SIG$STOP; exiting $EXIT_REQUEUE (requeue)" >&2
  exit "$EXIT_REQUEUE"
fi
exit "$rc"
