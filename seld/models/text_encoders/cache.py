"""Ground-truth sentence embeddings E_text(X_gt), each sentence encoded once per frozen encoder."""
from __future__ import annotations

from collections import OrderedDict
from typing import Optional, Sequence

import torch

from seld.models.text_encoders.base import FrozenTextEncoder


class GroundTruthCache:
    """Cache of ground-truth sentence embeddings E_text(X_gt) for one frozen encoder.

    ``embed`` encodes only sentences never seen before (each once, in one batch, without
    gradient) and keeps the pooled rows on the CPU. ``max_entries`` bounds the cache (oldest
    first out); None = unbounded. ``num_encoded`` counts sentences sent to the encoder.
    ``pooling``: read the sentences another way than the encoder's own pooling (None = its own).
    """

    def __init__(self, encoder: FrozenTextEncoder, max_entries: Optional[int] = None,
                 pooling: Optional[str] = None) -> None:
        if max_entries is not None and max_entries < 1:
            raise ValueError(f"max_entries must be >= 1 or None, got {max_entries}")
        self.encoder = encoder
        self.pooling = pooling
        self.max_entries = max_entries
        self.num_encoded = 0
        self._store: OrderedDict[str, torch.Tensor] = OrderedDict()

    def __len__(self) -> int:
        return len(self._store)

    def __contains__(self, sentence: str) -> bool:
        return sentence in self._store

    def clear(self) -> None:
        self._store.clear()

    def embed(self, sentences: Sequence[str], device: Optional[torch.device | str] = None) -> torch.Tensor:
        """Return the pooled embeddings (N, out_dim) of ``sentences`` on ``device`` (default: the encoder's)."""
        sentences = list(sentences)
        if not sentences:
            return torch.empty(0, self.encoder.out_dim, device=device or self.encoder.device)
        missing = list(dict.fromkeys(s for s in sentences if s not in self._store))
        if missing:
            pooled = self.encoder.encode_text(missing, pooling=self.pooling).detach().float().cpu()
            self.num_encoded += len(missing)
            for sentence, row in zip(missing, pooled):
                self._store[sentence] = row.clone()
        out = torch.stack([self._store[s] for s in sentences])
        if self.max_entries is not None:
            while len(self._store) > self.max_entries:
                self._store.popitem(last=False)
        return out.to(device or self.encoder.device)
