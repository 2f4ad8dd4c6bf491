"""What this CPU is and which vector/matrix instructions it has (no torch).

Used to choose the fast numeric path and to stamp every benchmark result: the same code runs
3-6x apart on CPUs with and without AMX, so a number without its CPU means little.
"""

from __future__ import annotations

import functools
import os
import platform

#: ISA extensions that decide which kernels are fast (x86 names as in /proc/cpuinfo; "bf16",
#: "i8mm" and "asimddp" are the Arm names).
ISA_FLAGS = ("avx2", "fma", "avx512f", "avx512_bf16", "avx512_vnni", "avx_vnni", "amx_bf16", "amx_int8",
             "amx_tile", "avx512_fp16", "bf16", "i8mm", "asimddp")

#: Flags that mean the CPU computes bf16 dot products natively (else bf16 is emulated and slow).
BF16_FLAGS = ("amx_bf16", "avx512_bf16", "bf16")


@functools.lru_cache(maxsize=1)
def _cpuinfo() -> tuple[str, frozenset[str]]:
    model, flags = "", frozenset()
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="ignore") as fh:
            for line in fh:
                key, _, value = line.partition(":")
                key = key.strip()
                if not model and key in ("model name", "Model", "Hardware"):
                    model = value.strip()
                elif not flags and key in ("flags", "Features"):
                    flags = frozenset(value.split())
                if model and flags:
                    break
    except OSError:
        pass
    return model or platform.processor() or platform.machine(), flags


def cpu_model() -> str:
    """The CPU's model name, e.g. ``"AMD EPYC 9R14"`` (``platform`` as a fallback)."""
    return _cpuinfo()[0]


def cpu_flags() -> frozenset[str]:
    """Every ISA flag the kernel reports (empty where /proc/cpuinfo is missing)."""
    return _cpuinfo()[1]


def has_flag(name: str) -> bool:
    return name in cpu_flags()


def has_native_bf16() -> bool:
    """True when the CPU has bf16 dot-product instructions (AMX, AVX-512 bf16, Arm bf16)."""
    return any(has_flag(f) for f in BF16_FLAGS)


def cpu_summary() -> dict[str, object]:
    """Model, architecture, logical CPUs and the ISA extensions of :data:`ISA_FLAGS` present here."""
    return {
        "cpu": cpu_model(),
        "arch": platform.machine(),
        "logical_cpus": os.cpu_count(),
        "isa": [f for f in ISA_FLAGS if has_flag(f)],
    }
