#!/usr/bin/env bash
# Pre-train the tokenizer (stage 1) under SLURM, or with plain bash on a machine without SLURM.
#
#   sbatch pretrain_sbatch.sh [CONFIG] [key=value overrides ...]
#   bash   pretrain_sbatch.sh configs/pretrain_rcc.yml train.epochs=2
#
# CONFIG defaults to pretraining/config.yml. Under SLURM, torchrun starts one process per
# allocated GPU (DDP over NCCL); without SLURM it runs one process on whatever device exists.
# A job that is requeued or resubmitted resumes from <train.out_dir>/checkpoints/last.pt.
#SBATCH --job-name=textseld-pretrain
#SBATCH --nodes=1
#SBATCH --ntasks-per-node=1
#SBATCH --gres=gpu:1
#SBATCH --cpus-per-task=8
#SBATCH --mem=64G
#SBATCH --time=48:00:00
#SBATCH --output=logs/%x-%j.out
#SBATCH --requeue
set -euo pipefail
STAGE=pretrain
DEFAULT_CONFIG=pretraining/config.yml
source "${SLURM_SUBMIT_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)}/scripts/launch_stage.sh"
