"""A resumable, distributed sampler: the same order from (seed, epoch), and it can start mid-epoch."""
from __future__ import annotations

from typing import Iterator

import torch
from torch.utils.data import Sampler


class ResumableSampler(Sampler[int]):
    """Shuffles ``num_items`` indices per epoch from ``(seed, epoch)`` and gives rank ``r`` every
    ``world_size``-th index starting at ``r``, skipping its first ``start_index`` entries.

    With world size W and per-process batch size b, the union of the ranks' k-th batches is the
    k-th batch of size W*b that a single process would draw, so DDP matches one process.
    The tail is dropped so every rank sees the same number of items.
    """

    def __init__(self, num_items: int, *, seed: int = 0, shuffle: bool = True, rank: int = 0, world_size: int = 1):
        if num_items < world_size:
            raise ValueError(f"dataset of {num_items} items is smaller than world size {world_size}")
        self.num_items = num_items
        self.seed = seed
        self.shuffle = shuffle
        self.rank = rank
        self.world_size = world_size
        self.epoch = 0
        self.start_index = 0

    def set_epoch(self, epoch: int, start_index: int = 0) -> None:
        """Select the epoch's order and skip the first ``start_index`` items of this rank."""
        self.epoch = epoch
        self.start_index = start_index

    def _order(self) -> list[int]:
        if not self.shuffle:
            return list(range(self.num_items))
        g = torch.Generator()
        g.manual_seed(self.seed * 100_003 + self.epoch)
        return torch.randperm(self.num_items, generator=g).tolist()

    def __len__(self) -> int:
        return self.num_items // self.world_size - self.start_index

    def __iter__(self) -> Iterator[int]:
        per_rank = self.num_items // self.world_size
        order = self._order()[: per_rank * self.world_size]
        mine = order[self.rank :: self.world_size]
        return iter(mine[self.start_index :])
