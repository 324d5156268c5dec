"""Where and in what precision a run computes: this process's device and bf16 autocast."""
from __future__ import annotations

import contextlib

import torch

from seld.errors import ConfigError
from seld.train.distributed import DistInfo


def native_bf16(device: torch.device) -> bool:
    """Whether ``device`` computes in bf16 natively: a CUDA GPU that supports it, or a CPU with
    AVX512-BF16 or AMX (where oneDNN runs bf16 convolutions and matmuls faster than fp32)."""
    if device.type == "cuda":
        return bool(torch.cuda.is_bf16_supported())
    if device.type != "cpu":
        return False
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")  # private helpers of torch.cpu
    return any(bool(getattr(torch.cpu, name, lambda: False)()) for name in checks)


def resolve_device(name: str, dist_info: DistInfo) -> torch.device:
    """``train.device`` for this process: its local GPU under DDP, else the CPU."""
    if name == "cpu" or (name == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise ConfigError("train.device is 'cuda' but no CUDA device is available")
    return torch.device("cuda", dist_info.local_rank)


def autocast(device: torch.device, amp: str) -> contextlib.AbstractContextManager:
    """bf16 autocast on ``device`` when ``amp`` is ``bf16``; else autocast switched off."""
    if amp == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return torch.autocast(device_type=device.type, enabled=False)
