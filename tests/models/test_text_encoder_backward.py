"""Gradients through a frozen text encoder on a CPU under bf16 autocast run attention by sdpa's math
backend (the fused kernel's bf16 backward is the slow part of the live language path); the forward
passes without gradient, and fp32 ones, keep the default kernels."""
from __future__ import annotations

import contextlib

import pytest
import torch

from seld.models.text_encoders import build_text_encoder, tiny_text_encoder_config
from seld.text.templates import TEMPLATES


@pytest.mark.parametrize("kind", ["bert", "hf_clip", "clip"])
def test_math_attention_only_for_a_bf16_backward_on_cpu(kind, monkeypatch):
    torch.manual_seed(0)
    enc = build_text_encoder(tiny_text_encoder_config(kind))
    seen: list[bool] = []
    inner = enc._encode_embeddings

    def spy(*args, **kwargs):
        seen.append(torch.backends.cuda.flash_sdp_enabled())  # sdpa_kernel(MATH) turns the fused kernels off
        return inner(*args, **kwargs)

    monkeypatch.setattr(enc, "_encode_embeddings", spy)
    batch = enc.tokenizer.encode_templates([TEMPLATES[1], TEMPLATES[3]])
    tokens = (0.1 * torch.randn(2, 3, enc.width)).requires_grad_()
    bf16 = lambda: torch.autocast("cpu", dtype=torch.bfloat16)  # noqa: E731
    cases = [(bf16, True, False), (bf16, False, True), (contextlib.nullcontext, True, True)]
    grads = {}
    weight = torch.randn(enc.out_dim)
    for autocast, grad, fused in cases:
        seen.clear()
        with autocast(), torch.set_grad_enabled(grad):
            pooled = enc(batch, tokens).pooled
        assert seen == [fused]
        if grad:
            # not a plain sum: BERT's pooled state leaves a LayerNorm, whose sum does not depend on the input
            (g,) = torch.autograd.grad((pooled.float() * weight).sum(), tokens)
            grads[autocast is bf16] = g
    assert torch.backends.cuda.flash_sdp_enabled()  # restored after the pass
    # the bf16 gradient through the math backend matches fp32's to bf16 precision
    scale = float(grads[False].abs().max())
    assert scale > 0 and float((grads[True] - grads[False]).abs().max()) < 0.05 * scale
