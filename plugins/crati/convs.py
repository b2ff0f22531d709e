"""Drop-in convolutions for the fine-tuned image-encoder tail, fast on many small maps on CPU.

Why: the tail (:class:`seldbench_plugins.crati.encoders.EncoderTail`) runs a few hundred 4 x 8
token maps per batch through EfficientNet blocks. On that shape PyTorch's CPU convolution
backward spends ~10x its forward time, most of a CPU training step. A 1 x 1 convolution is a
matrix product over channels; a depthwise convolution's gradients are two more depthwise
convolutions (input) and one grouped correlation (weights). Same parameters, same state-dict
keys, same results to rounding (tests/test_crati.py checks outputs and gradients in float64).
"""
from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F


class PointwiseConv(nn.Module):
    """A bias-free 1 x 1, stride-1 ``nn.Conv2d`` as ``F.linear`` over the channel axis:
    ``(N, C_in, H, W)`` -> ``(N, C_out, H, W)`` (channels-last strides, no copy)."""

    def __init__(self, conv: nn.Conv2d):
        super().__init__()
        self.weight = conv.weight  # (C_out, C_in, 1, 1)

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x.permute(0, 2, 3, 1), self.weight.flatten(1)).permute(0, 3, 1, 2)


class _DepthwiseSame(torch.autograd.Function):
    """Depthwise, stride 1, 'same' zero padding ``(ph, pw)`` of a ``(2ph+1) x (2pw+1)``
    kernel ``(C, 1, kh, kw)``."""

    @staticmethod
    def forward(ctx, x: Tensor, weight: Tensor, pad: tuple[int, int]) -> Tensor:
        ctx.save_for_backward(x, weight)
        ctx.pad = pad
        return F.conv2d(x, weight, padding=pad, groups=weight.shape[0])

    @staticmethod
    def backward(ctx, grad: Tensor):
        x, weight = ctx.saved_tensors
        ph, pw = ctx.pad
        channels = weight.shape[0]
        grad_x = grad_w = None
        if ctx.needs_input_grad[0]:  # 'same' padding: the flipped kernel, same padding
            grad_x = F.conv2d(grad, weight.flip(-1, -2), padding=(ph, pw), groups=channels)
        if ctx.needs_input_grad[1]:  # each (sample, channel) map correlated with its gradient
            n, _, h, w = grad.shape
            padded = F.pad(x, (pw, pw, ph, ph)).contiguous()
            grad_w = F.conv2d(padded.reshape(1, n * channels, *padded.shape[2:]),
                              grad.contiguous().reshape(n * channels, 1, h, w),
                              groups=n * channels)
            grad_w = grad_w.reshape(n, channels, *weight.shape[2:]).sum(0).unsqueeze(1)
        return grad_x, grad_w, None


class DepthwiseConv(nn.Module):
    """A bias-free depthwise ``nn.Conv2d`` with stride 1 and 'same' zero padding; on CPU its
    backward is :class:`_DepthwiseSame`'s, elsewhere the library's."""

    def __init__(self, conv: nn.Conv2d):
        super().__init__()
        self.weight = conv.weight  # (C, 1, kh, kw)
        self.pad = (int(conv.padding[0]), int(conv.padding[1]))

    def forward(self, x: Tensor) -> Tensor:
        if x.is_cuda:
            return F.conv2d(x, self.weight, padding=self.pad, groups=self.weight.shape[0])
        return _DepthwiseSame.apply(x, self.weight, self.pad)


def _kind(conv: nn.Module) -> type[nn.Module] | None:
    """Which drop-in replaces ``conv`` (None: keep it)."""
    if type(conv) is not nn.Conv2d or conv.bias is not None or conv.stride != (1, 1) \
            or conv.dilation != (1, 1) or conv.padding_mode != "zeros" \
            or isinstance(conv.padding, str):
        return None
    if conv.kernel_size == (1, 1) and conv.groups == 1:
        return PointwiseConv
    same = all(k == 2 * p + 1 for k, p in zip(conv.kernel_size, conv.padding))
    if same and conv.groups == conv.in_channels == conv.out_channels:
        return DepthwiseConv
    return None


def swap_convs(module: nn.Module) -> nn.Module:
    """Replace, in place, every bias-free stride-1 1 x 1 and 'same' depthwise ``nn.Conv2d``
    inside ``module`` by its drop-in (the same weight Parameter); returns ``module``."""
    for name, child in module.named_children():
        kind = _kind(child)
        if kind is not None:
            setattr(module, name, kind(child))
        else:
            swap_convs(child)
    return module
