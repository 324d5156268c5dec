"""The training engine shared by pre-training and fine-tuning: loop, checkpoints, DDP, logging."""
