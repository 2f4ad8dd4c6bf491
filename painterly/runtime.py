"""Where and how tensors run: device choice, bf16 autocast support, thread settings."""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
import sys

import torch

from .engines.cpu import cpu_has_amx

__all__ = ["autocast", "bf16_fast", "configure_threads", "cpu_has_amx", "keep_freed_memory", "resolve_device",
           "resolve_precision"]


def bf16_fast(device: torch.device | str) -> bool:
    """Whether bf16 autocast is the fast path on ``device`` (CUDA with bf16, or a CPU with AMX)."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return device.type == "cpu" and cpu_has_amx()


def resolve_precision(precision: str, device: torch.device | str) -> torch.dtype | None:
    """``"auto" | "bf16" | "fp32"`` -> autocast dtype (``None`` means plain fp32)."""
    if precision not in ("auto", "bf16", "fp32"):
        raise ValueError(f"precision must be auto, bf16 or fp32, got {precision!r}")
    if precision == "fp32" or (precision == "auto" and not bf16_fast(device)):
        return None
    return torch.bfloat16


def autocast(device: torch.device | str, dtype: torch.dtype | None) -> contextlib.AbstractContextManager:
    """Autocast context for ``dtype`` on ``device``; a no-op when ``dtype`` is None."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(torch.device(device).type, dtype=dtype)


def resolve_device(device: str | None = None) -> torch.device:
    """``None``/"auto" -> CUDA if available else CPU."""
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def configure_threads(num_threads: int | None = None) -> None:
    """Use every physical core for intra-op work unless the user set OMP_NUM_THREADS."""
    if num_threads:
        torch.set_num_threads(num_threads)
    elif "OMP_NUM_THREADS" not in os.environ:
        torch.set_num_threads(max(1, os.cpu_count() or 1))


@functools.lru_cache(maxsize=1)
def keep_freed_memory() -> bool:
    """Stop glibc from handing large freed blocks back to the OS (and faulting them in again).

    A CPU training step allocates and frees the same few dozen activation buffers of up to tens
    of MB; by default glibc serves each from a fresh ``mmap`` and zero-fills its pages on first
    touch, which cost ~15% of a feed-forward training step on the 2-core reference machine. Raising
    the mmap and trim thresholds keeps those blocks in the heap for reuse. Peak memory is
    unchanged; memory is returned when the process ends. Only on glibc (Linux); returns whether
    it applied. Opt out with ``PAINTERLY_KEEP_MEMORY=0``.
    """
    if os.environ.get("PAINTERLY_KEEP_MEMORY", "1") == "0" or not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        m_trim_threshold, m_mmap_threshold = -1, -3  # from <malloc.h>
        return bool(libc.mallopt(m_mmap_threshold, 256 << 20)) and bool(libc.mallopt(m_trim_threshold, 1 << 30))
    except (OSError, AttributeError):
        return False
