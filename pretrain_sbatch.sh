#!/usr/bin/env bash
# Pre-train the tokenizer (stage 1) under SLURM, or with plain bash on a machine without SLURM.
#
#   sbatch pretrain_sbatch.sh [CONFIG] [key=value overrides ...]
#   bash   pretrain_sbatch.sh configs/pretrain_rcc.yml train.epochs=2
#
# CONFIG defaults to pretraining/config.yml. Under SLURM, srun starts one task per node; each runs torchrun
# with one process per GPU of its node (DDP over NCCL; gloo on CPU-only nodes), all joined by a
# c10d rendezvous on the first node. Without SLURM: torchrun --standalone over the visible GPUs, or
# one process. Edit the #SBATCH lines below for your cluster (docs/cluster.md):
#   --nodes             machines; the global batch is train.batch_size x nodes x GPUs per node
#   --gres=gpu:N        GPUs per node (one training process each)
#   --time              wall-clock limit of one run of the job
#   --partition         uncomment and name your GPU partition
#   --signal=USR1@120   warn 120 s before the time limit (or preemption): training finishes its
#                       step, saves last.pt and exits 75; this script then requeues the job
#                       (--requeue), and the requeued run resumes bit-exactly from last.pt
#SBATCH --job-name=textseld-pretrain
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
STAGE=pretrain
DEFAULT_CONFIG=pretraining/config.yml
source "${SLURM_SUBMIT_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)}/scripts/launch_stage.sh"
