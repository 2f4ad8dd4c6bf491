"""Where and how tensors run: device choice, bf16 autocast support, thread settings."""

from __future__ import annotations

import contextlib
import functools
import os
import time

import torch

from . import cpuinfo
from .malloc import keep_freed_memory  # noqa: F401 - also used from here
from .paths import read_cache_json, write_cache_entry


def cpu_has_amx() -> bool:
    """True when the CPU has AMX tiles for bf16 (Sapphire Rapids and later)."""
    return cpuinfo.has_flag("amx_bf16")


#: bf16 autocast is chosen on a CPU when the micro-benchmark runs it at least this much faster.
BF16_MIN_SPEEDUP = 1.15


def measure_bf16_speedup(rounds: int = 10) -> float:
    """fp32 time / bf16-autocast time of a small channels-last conv stack on one core (~0.1 s).

    The workload is shaped like the transformer networks' middle layers (3x3 convs, 64
    channels). It runs on one thread (restored afterwards), the two precisions alternately, and
    each keeps its fastest round: the kernels' speed ratio is a property of a core, and one
    thread is far less disturbed by other work on a busy machine than a team of threads is.
    """
    gen = torch.Generator().manual_seed(0)
    convs = [torch.nn.Conv2d(64, 64, 3, padding=1) for _ in range(3)]
    x = torch.rand(1, 64, 64, 64, generator=gen).contiguous(memory_format=torch.channels_last)
    best = {None: float("inf"), torch.bfloat16: float("inf")}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.inference_mode():
            for i in range(rounds + 1):  # the first round warms up the kernels
                for dtype in best:
                    with autocast("cpu", dtype):
                        start = time.perf_counter()
                        h = x
                        for conv in convs:
                            h = conv(h)
                        elapsed = time.perf_counter() - start
                    if i:
                        best[dtype] = min(best[dtype], elapsed)
    finally:
        torch.set_num_threads(threads)
    return best[None] / best[torch.bfloat16]


#: The cache file of :func:`cpu_bf16_fast`'s measurements.
PRECISION_CACHE = "precision.json"


def _precision_key() -> str:
    """CPU model and torch version, and what limits the kernels when anything does (``ONEDNN_MAX_CPU_ISA``,
    AMX refused: either changes which kernels run, e.g. to measure a CPU without AMX on one that has it)."""
    limits = cpuinfo.kernel_limits()
    return f"{cpuinfo.cpu_model()}|torch {torch.__version__}" + (f"|{limits}" if limits else "")


@functools.lru_cache(maxsize=1)
def cpu_bf16_fast() -> bool:
    """Whether bf16 autocast is faster than fp32 on this CPU, by measurement.

    CPUs without bf16 dot-product instructions (no AMX, no AVX-512 bf16, no Arm bf16) emulate
    bf16 and are never chosen. On the others a ~0.1 s micro-benchmark decides, once per CPU model
    and torch version: its result is cached in ``<cache>/precision.json``.
    ``PAINTERLY_BF16=1`` or ``0`` overrides both.
    """
    forced = os.environ.get("PAINTERLY_BF16")
    if forced in ("0", "1"):
        return forced == "1"
    if not cpuinfo.has_native_bf16():
        return False
    key = _precision_key()
    entry = read_cache_json(PRECISION_CACHE).get(key)
    if not isinstance(entry, dict) or not isinstance(entry.get("speedup"), (int, float)):
        entry = {"speedup": round(measure_bf16_speedup(), 3), "isa": cpuinfo.cpu_summary()["isa"]}
        write_cache_entry(PRECISION_CACHE, key, entry)
    return float(entry["speedup"]) >= BF16_MIN_SPEEDUP


def bf16_fast(device: torch.device | str) -> bool:
    """Whether bf16 autocast is the fast path on ``device``: CUDA with bf16, or a CPU where it
    measured faster than fp32 (:func:`cpu_bf16_fast`: AMX, and AVX-512 bf16 where it pays)."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return device.type == "cpu" and cpu_bf16_fast()


def resolve_precision(precision: str, device: torch.device | str) -> torch.dtype | None:
    """``"auto" | "bf16" | "fp32"`` -> autocast dtype (``None`` means plain fp32; auto: :func:`bf16_fast`)."""
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
