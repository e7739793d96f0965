"""What the machine does fast. bf16 autocast pays off on GPUs and on CPUs with bf16 instructions (AVX512-BF16 or
AMX: about 5x fp32 matmul on the machine the default was trained on). oneDNN runs bf16 on other CPUs too, without
them: a bf16 matmul ran 5x slower than fp32 on an AVX512 Intel Xeon without AVX512-BF16 (310 against 61 GFLOP/s,
2 cores, 2026-12-01) and 140x slower on an AVX2-only AMD EPYC (torch 2.13)."""

from __future__ import annotations

import platform
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

# torch is imported inside the functions that use it: the CLI's parser reads PRECISIONS from here, and `vidiff
# --help` or a refused argument took 1.3-2 s importing torch for it (since 2026-11-24)


def cpu_name() -> str:
    """The CPU's model name (/proc/cpuinfo) and its widest vector instructions, for the machine line of a benchmark's
    figures: "AMD EPYC, AVX2". The model name alone can hide what decides the figures (on virtual machines one "AMD
    EPYC" has AVX512-BF16, another AVX2 only, and its fp32 training steps take several times the other's bf16 ones)."""
    import platform

    name = None
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("model name"):
                    name = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    name = name or platform.processor() or platform.machine() or "unknown"
    isa = vector_isa()
    return f"{name}, {isa}" if isa else name


# the x86 flags that decide the CPU's speed in fp32 and bf16, widest first: (the flag in /proc/cpuinfo, its name)
_ISA = (("amx_bf16", "AMX"), ("avx512_bf16", "AVX512-BF16"), ("avx512f", "AVX512"), ("avx2", "AVX2"))


def vector_isa() -> str | None:
    """The widest of AMX, AVX512-BF16, AVX512 and AVX2 this CPU has (/proc/cpuinfo's flags), or None (another
    architecture, or no such file)."""
    flags = _cpu_flags() or set()
    return next((label for flag, label in _ISA if flag in flags), None)


def _onednn_bf16() -> bool:
    """oneDNN's own word: true on every AVX512 CPU, where it emulates what the CPU lacks."""
    import torch

    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def _cpu_flags() -> set[str] | None:
    """The CPU's feature flags from /proc/cpuinfo (``flags`` on x86, ``Features`` on Arm), or None where there is
    no such file (macOS, Windows)."""
    try:
        for line in Path("/proc/cpuinfo").read_text(errors="replace").splitlines():
            key, _, value = line.partition(":")
            if key.strip() in ("flags", "Features"):
                return set(value.split())
    except OSError:
        pass
    return None


def native_bf16(device_type: str = "cpu") -> bool:
    """Whether bf16 autocast runs on native kernels on ``device_type`` ("cpu" or "cuda"). On a CPU: oneDNN's bf16
    path (off when ``ONEDNN_MAX_CPU_ISA`` caps it below AVX512) and the CPU's bf16 instructions, read from
    /proc/cpuinfo (x86: ``avx512_bf16`` or ``amx_bf16``; Arm: ``bf16``); without that file, oneDNN's word alone."""
    import torch

    if device_type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if not _onednn_bf16():
        return False
    flags = _cpu_flags()
    if flags is None:
        return True
    if platform.machine().lower() in ("x86_64", "amd64", "i386", "i686"):
        return bool(flags & {"avx512_bf16", "amx_bf16"})
    return "bf16" in flags


SLOW_BF16 = ("bf16 autocast is emulated on this CPU (no AVX512-BF16 / AMX instructions) and much slower than fp32")


# ---------------------------------------------------------------- devices and precisions (one place for both)
DEVICES = ("auto", "cpu", "cuda", "cuda:N")
PRECISIONS = ("fp32", "bf16", "fp16")


def resolve_device(name: str | torch.device | None = "auto") -> torch.device:
    """``auto`` (or None): the first CUDA device when there is one, else the CPU; ``cpu``; ``cuda`` / ``cuda:N``.
    Raises ValueError for a device this machine does not have."""
    import torch

    if isinstance(name, torch.device):
        name = str(name)
    name = "auto" if name is None else str(name).strip().lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name == "cuda" or name.startswith("cuda:"):
        index = name.partition(":")[2]
        if index and not index.isdigit():
            raise ValueError(f"unknown device {name!r}; allowed: {', '.join(DEVICES)}")
        if not torch.cuda.is_available():
            raise ValueError(f"device {name!r}: this machine has no CUDA device (torch {torch.__version__}, "
                             f"torch.cuda.is_available() is False); use --device cpu or auto")
        if index and int(index) >= torch.cuda.device_count():
            raise ValueError(f"device {name!r}: this machine has {torch.cuda.device_count()} CUDA device(s), "
                             f"cuda:0 to cuda:{torch.cuda.device_count() - 1}")
        return torch.device(name)
    raise ValueError(f"unknown device {name!r}; allowed: {', '.join(DEVICES)}")


def precision_name(precision: str) -> str:
    """vidiff's name of a precision: accelerate's "no" and torch's dtype names as fp32 / bf16 / fp16; any other
    value (a recipe's "auto", a typo) as it is."""
    return {"no": "fp32", "float32": "fp32", "bfloat16": "bf16", "float16": "fp16"}.get(precision, precision)


def check_precision(precision: str, device: torch.device) -> str:
    """``precision`` (fp32 / bf16 / fp16; "no" is fp32) if ``device`` can run it, else ValueError: fp16 autocast
    is for CUDA only (CPU fp16 kernels are few and slow), bf16 for CPUs and GPUs that support it."""
    import torch

    p = precision_name(precision)
    if p not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; allowed: {', '.join(PRECISIONS)}")
    if p == "fp16" and device.type != "cuda":
        raise ValueError(f"fp16 autocast runs on CUDA devices only; on {device.type} use bf16 (where the CPU has "
                         f"native bf16 kernels) or fp32")
    if p == "bf16" and device.type == "cuda" and not native_bf16("cuda"):
        raise ValueError(f"this GPU ({torch.cuda.get_device_name(device)}) has no bf16 support; use fp16 or fp32")
    return p


def autocast(device: torch.device | str, precision: str = "fp32"):
    """The autocast context of ``device``'s type for ``precision`` (fp32: a no-op context)."""
    import torch

    device = torch.device(device)
    p = check_precision(precision, device)
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(p)
    return torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None)
