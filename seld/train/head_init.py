"""Least-squares initialisation of a GREP or TREP head from the pre-training head (``model.head.init: lstsq``).

A GREP head trained from scratch starts far below the pre-trained tokenizer it sits on; a TREP head
copied from the pre-training head reads the text encoder's hidden states, not the tokens it was
trained on. The pre-training head's raw (pre-activation) outputs ``Y = W_pre [s; d; r] + b_pre``
are, to a large part, a linear function of what the frozen text encoder makes of the injected
tokens: the pooled embedding A (GREP's input) or the hidden states at the three token positions
(TREP's input, ``3 E`` wide). This module collects ``(X, Y)`` over the training clips (evaluation
template or, with ``model.head.lstsq_templates: train``, one training template per clip; everything
in eval mode, no gradient), solves the ridge regression ``Y ~ [X, 1] W`` in
float64 and writes it into the head: the two Linear layers of a GREP head (activation ``none``),
the one Linear layer of a TREP head. The head then outputs ``activate(fit(X))``, the same output
activation the pre-training head uses. The probe ``scripts/experiments/grep_lsq_probe.py`` uses
the same functions.
"""
from __future__ import annotations

from typing import Any, Optional, Sequence

import torch
from torch.utils.data import DataLoader, Dataset

from seld.errors import ConfigError
from seld.models.heads import GrepHead, PretrainHead, TrepHead
from seld.text.templates import TEMPLATES

DEFAULT_RIDGE = 1e-3
"""Ridge weight relative to the mean diagonal of ``[A, 1]'[A, 1]`` (the probe's value)."""


def _fit_batches(dataset: Dataset, batch_size: int, max_clips: Optional[int]) -> DataLoader:
    n = len(dataset) if max_clips is None else min(len(dataset), max_clips)
    subset = dataset if n == len(dataset) else torch.utils.data.Subset(dataset, range(n))
    return DataLoader(subset, batch_size=batch_size, shuffle=False, num_workers=0,
                      collate_fn=lambda items: {k: torch.stack([it[k] for it in items]) for k in ("src", "doa", "dist")})


@torch.no_grad()
def collect_fit_data(
    task: Any,
    pretrain_head: PretrainHead,
    dataset: Dataset,
    batch_size: int = 8,
    max_clips: Optional[int] = None,
    progress: bool = False,
    device: torch.device | str = "cpu",
    templates: Optional[Sequence[int]] = None,
    seed: int = 0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(X (N*T, D), Y (N*T, 117))`` in float32 over the first ``max_clips`` clips (None: all).

    ``task`` is a :class:`~seld.tasks.finetune_task.FinetuneTask` (its tokenizer, text encoder, head type
    and evaluation template are used); ``X`` is its head's input, flattened per frame (GREP: A,
    ``D = out_dim``; TREP: the three hidden states, ``D = 3 E``); ``Y`` is ``pretrain_head.linear`` of the task's tokens (raw,
    before the output activation). Task and head are run in eval mode and restored afterwards.
    The dataset should yield evaluation items (``train=False``: the ``src`` channels, no
    augmentation). ``templates``: indices into :data:`TEMPLATES` of which each clip is read with
    one, drawn with ``seed`` (None: the task's evaluation template for every clip).
    """
    from tqdm import tqdm

    was = (task.training, pretrain_head.training)
    task.eval()
    pretrain_head.eval()
    pool = list(templates) if templates else [task.eval_template]
    draw = torch.Generator().manual_seed(seed)
    a_rows, y_rows = [], []
    try:
        for batch in tqdm(_fit_batches(dataset, batch_size, max_clips), desc="GREP lstsq init", disable=not progress,
                          leave=False, dynamic_ncols=True):
            src, doa, dist = (batch[k].to(device) for k in ("src", "doa", "dist"))
            tokens = task.tokenizer(src, doa, dist)  # (B, T, 3, E)
            picks = torch.randint(len(pool), (src.shape[0],), generator=draw).tolist()
            x = task.head_input(tokens, [TEMPLATES[pool[i]] for i in picks])[0]  # (B, T, out_dim) or (B, T, 3, E)
            raw = pretrain_head.raw(tokens)  # (B, T, 117)
            a_rows.append(x.reshape(raw.shape[0] * raw.shape[1], -1).float().cpu())
            y_rows.append(raw.reshape(-1, raw.shape[-1]).float().cpu())
    finally:
        task.train(was[0])
        pretrain_head.train(was[1])
    return torch.cat(a_rows), torch.cat(y_rows)


def ridge_fit(a: torch.Tensor, y: torch.Tensor, ridge: float = DEFAULT_RIDGE) -> tuple[torch.Tensor, torch.Tensor]:
    """Ridge regression ``y ~ a @ W + b`` in float64: ``(W (D, K), b (K,))``.

    With ``X = [a, 1]`` it solves ``(X'X + lam I) [W; b] = X'y``, ``lam = ridge * mean(diag(X'X))``
    (the bias is regularised too; ``ridge=0`` is ordinary least squares).
    """
    if ridge < 0:
        raise ValueError(f"ridge must be >= 0, got {ridge}")
    x = torch.cat([a.double(), torch.ones(len(a), 1, dtype=torch.float64)], 1)
    gram = x.T @ x
    lam = ridge * gram.diagonal().mean()
    wb = torch.linalg.solve(gram + lam * torch.eye(len(gram), dtype=gram.dtype), x.T @ y.double())
    return wb[:-1], wb[-1]


def set_grep_from_fit(head: GrepHead, w: torch.Tensor, b: torch.Tensor, hidden: torch.Tensor | None = None) -> None:
    """Write a fit into the GREP head's two Linear layers (activation ``none``).

    Hidden width == embedding width: first layer = identity, zero bias; second = ``(W, b)`` fitted on
    A. Otherwise the first layer keeps its (random) weights and ``(W, b)`` must have been fitted on
    its output ``hidden`` (see :func:`fit_head`).
    """
    first, last = head.mlp[0], head.mlp[-1]
    if w.shape != (last.in_features, last.out_features):
        raise ValueError(f"fit {tuple(w.shape)} does not match the GREP head's last layer {tuple(last.weight.T.shape)}")
    with torch.no_grad():
        if first.in_features == first.out_features and hidden is None:
            first.weight.copy_(torch.eye(first.in_features, dtype=first.weight.dtype))
            first.bias.zero_()
        last.weight.copy_(w.T.to(last.weight.dtype))
        last.bias.copy_(b.to(last.bias.dtype))


def check_lstsq_head(head: torch.nn.Module, pretrain_head: Any, where: str) -> None:
    """ConfigError unless ``head`` is a TREP head or a GREP head without activation, and
    ``pretrain_head`` a pre-training head."""
    if not isinstance(head, (GrepHead, TrepHead)):
        raise ConfigError(f"model.head.init=lstsq: only GREP and TREP heads can be initialised by least squares ({where})")
    if isinstance(head, GrepHead) and not isinstance(head.mlp[1], torch.nn.Identity):
        raise ConfigError(f"model.head.init=lstsq needs model.head.activation=none (two plain Linear layers) ({where})")
    if not isinstance(pretrain_head, PretrainHead):
        raise ConfigError(f"model.head.init=lstsq needs model.pretrained: a pre-training checkpoint with its head ({where})")


def fit_head(
    task: Any,
    pretrain_head: PretrainHead,
    dataset: Dataset,
    ridge: float = DEFAULT_RIDGE,
    max_clips: Optional[int] = None,
    batch_size: int = 8,
    progress: bool = False,
    device: torch.device | str = "cpu",
    templates: Optional[Sequence[int]] = None,
    seed: int = 0,
) -> dict[str, float]:
    """Initialise ``task.head`` (TREP, or GREP with activation none) so that its raw output is the
    ridge fit of the pre-training head's raw output on the training clips; returns ``{"rows", "r2"}``
    (R^2 on those rows). ``templates``, ``seed``: see :func:`collect_fit_data`."""
    head = task.head
    check_lstsq_head(head, pretrain_head, "fit_head")
    a, y = collect_fit_data(task, pretrain_head, dataset, batch_size, max_clips, progress, device, templates, seed)
    if isinstance(head, TrepHead):
        w, b = ridge_fit(a, y, ridge)
        with torch.no_grad():
            head.linear.weight.copy_(w.T.to(head.linear.weight.dtype))
            head.linear.bias.copy_(b.to(head.linear.bias.dtype))
        return {"rows": float(len(a)), "r2": _r2(a.double() @ w + b, y)}
    first = head.mlp[0]
    hidden = None
    if first.in_features != first.out_features:  # keep the random first layer; fit on its output
        with torch.no_grad():
            hidden = first(a.to(first.weight.device)).double().cpu()
    w, b = ridge_fit(a if hidden is None else hidden, y, ridge)
    set_grep_from_fit(head, w, b, hidden)
    return {"rows": float(len(a)), "r2": _r2((a.double() if hidden is None else hidden) @ w + b, y)}


def _r2(pred: torch.Tensor, y: torch.Tensor) -> float:
    """Coefficient of determination of ``pred`` for ``y`` over all rows and outputs."""
    yd = y.double()
    return 1 - float(((pred - yd) ** 2).sum() / ((yd - yd.mean(0)) ** 2).sum().clamp_min(1e-30))
