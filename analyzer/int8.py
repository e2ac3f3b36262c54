"""openai-whisper in int8 on CPU, computed as CTranslate2 computes faster-whisper's default.

openai-whisper itself runs float32 on CPU. That is about 3x slower than faster-whisper's int8 and, with Whisper
base, reads asr_zh worse (19.3% / 28.3% CER at 16 / 8 kHz against 13.9% / 27.3%). CTranslate2's int8 rounds
each weight row to int8 with its own scale, rounds each input row the same way as it arrives, multiplies in
integers and scales back; it does so for every linear layer and for the output projection onto the vocabulary.
`quantize` does the same to an openai-whisper model, with PyTorch's integer matrix product, which is exact:
unlike CTranslate2's (MKL or oneDNN), the result does not depend on the CPU's make. The converted base then
reads asr_zh at 13.9% / 28.9%, at RTF 0.90 / 0.72 against float32's 1.03 / 1.09 (README, ASR backends).

Measured against the alternatives on an encoder-sized MLP (2 threads; 1,500 rows / a 5-row decoding step):
float32 68 / 0.99 ms, this 26 / 0.43 ms, torchao 0.18's int8 dynamic-activation config 63 / 1.84 ms; torch.ao's
dynamic quantisation (deprecated) is faster, 17 / 0.14 ms, but with one scale for a whole input it reads asr_zh
worse (20.3% / 40.6%).
"""

from __future__ import annotations

import torch
from torch import nn


def quantize_rows(matrix: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Each row as int8 and the scale that brings it back (row ≈ int8 row * scale), symmetric, as CTranslate2."""
    scale = matrix.abs().amax(dim=-1, keepdim=True).clamp_min(1e-12) / 127.0
    return torch.round(matrix / scale).to(torch.int8), scale


def int8_matmul(inputs: torch.Tensor, weight_t: torch.Tensor, weight_scale: torch.Tensor) -> torch.Tensor:
    """inputs @ weight.T in integers: the inputs rounded row by row, `weight_t` the int8 weight transposed."""
    rows = inputs.reshape(-1, inputs.shape[-1]).float()
    quantized, scale = quantize_rows(rows)
    product = torch._int_mm(quantized, weight_t).float().mul_(scale).mul_(weight_scale)
    return product.reshape(*inputs.shape[:-1], weight_t.shape[1])


class Int8Linear(nn.Module):
    """A linear layer with int8 weights and int8 inputs (see the module's docstring)."""

    def __init__(self, linear: nn.Linear):
        super().__init__()
        weight, scale = quantize_rows(linear.weight.detach().float())
        self.register_buffer("weight_t", weight.t().contiguous())
        self.register_buffer("weight_scale", scale.reshape(-1))
        self.register_buffer("bias", None if linear.bias is None else linear.bias.detach().float())

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        product = int8_matmul(inputs, self.weight_t, self.weight_scale)
        return product if self.bias is None else product.add_(self.bias)


def quantize(model: nn.Module) -> nn.Module:
    """An openai-whisper model (on CPU) made int8 in place: every linear layer, and the decoder's projection onto
    the vocabulary with the token embedding it shares (looked up as its int8 rounding, as CTranslate2 does)."""
    _swap_linears(model)
    decoder = model.decoder
    weight, scale = quantize_rows(decoder.token_embedding.weight.detach().float())
    decoder.token_embedding.weight.data = weight.float() * scale
    decoder.register_buffer("vocabulary_t", weight.t().contiguous(), persistent=False)
    decoder.register_buffer("vocabulary_scale", scale.reshape(-1), persistent=False)
    decoder.forward = _int8_decoder_forward.__get__(decoder)
    return model


def _swap_linears(module: nn.Module) -> None:
    for name, child in module.named_children():
        if isinstance(child, nn.Linear):
            setattr(module, name, Int8Linear(child))
        else:
            _swap_linears(child)


def _int8_decoder_forward(self, x: torch.Tensor, xa: torch.Tensor, kv_cache: dict | None = None) -> torch.Tensor:
    # openai-whisper's TextDecoder.forward, with the logits in int8: it multiplies by the float embedding inline
    offset = next(iter(kv_cache.values())).shape[1] if kv_cache else 0
    x = self.token_embedding(x) + self.positional_embedding[offset: offset + x.shape[-1]]
    x = x.to(xa.dtype)
    for block in self.blocks:
        x = block(x, xa, mask=self.mask, kv_cache=kv_cache)
    return int8_matmul(self.ln(x), self.vocabulary_t, self.vocabulary_scale)
