#!/usr/bin/env bash
# Any training stage of seld.tasks.STAGES (pretrain, finetune, baseline, ...) under SLURM, or with plain
# bash on a machine without SLURM: what pretrain_sbatch.sh / finetune_sbatch.sh do, the stage named first.
#
#   sbatch train_sbatch.sh STAGE CONFIG [key=value overrides ...]
#   sbatch train_sbatch.sh baseline configs/baseline_seldnet.yml
#   bash   train_sbatch.sh baseline configs/baseline_seldnet.yml train.epochs=2
#
# STAGE is checked against seld.tasks.STAGES before anything starts (a new stage needs no new script).
# Under SLURM, srun starts one task per node; each runs torchrun with one process per GPU of its node,
# as the two stage scripts do. Edit the #SBATCH lines below for your cluster (docs/cluster.md):
#   --nodes             machines; the global batch is train.batch_size x nodes x GPUs per node
#   --gres=gpu:N        GPUs per node (one training process each)
#   --time              wall-clock limit of one run of the job
#   --partition         uncomment and name your GPU partition
#   --signal=USR1@120   warn 120 s before the time limit (or preemption): training finishes its
#                       step, saves last.pt and exits 75; this script then requeues the job
#                       (--requeue), and the requeued run resumes bit-exactly from last.pt
#SBATCH --job-name=textseld-train
#SBATCH --nodes=1
#SBATCH --ntasks-per-node=1
#SBATCH --gres=gpu:1
#SBATCH --cpus-per-task=8
#SBATCH --mem=64G
#SBATCH --time=48:00:00
##SBATCH --partition=gpu
#SBATCH --signal=USR1@120
#SBATCH --requeue
#SBATCH --open-mode=append
#SBATCH --output=logs/%x-%j.out
set -euo pipefail
if [[ $# -lt 2 ]]; then
  echo "usage: train_sbatch.sh STAGE CONFIG [key=value ...]   (STAGE: a name of seld.tasks.STAGES)" >&2
  exit 2
fi
STAGE="$1"
DEFAULT_CONFIG=""
shift
source "${SLURM_SUBMIT_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)}/scripts/launch_stage.sh"
