"""What the machine does fast. bf16 autocast pays off on GPUs and on CPUs with AVX512 (AMX / AVX512-BF16:
about 5x fp32 matmul on the machine the default was trained on); on an AVX2-only CPU oneDNN has no bf16 kernels
and a bf16 matmul ran 140x slower than fp32 (AMD EPYC, 2 cores, torch 2.13)."""

from __future__ import annotations

import torch


def native_bf16(device_type: str = "cpu") -> bool:
    """Whether bf16 autocast runs on native kernels on ``device_type`` ("cpu" or "cuda")."""
    if device_type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


SLOW_BF16 = ("bf16 autocast is emulated on this CPU (no AVX512 / AMX bf16 kernels) and much slower than fp32")
