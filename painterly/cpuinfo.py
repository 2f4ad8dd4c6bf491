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
def _entries() -> tuple[tuple[str, str], ...]:
    """(key, value) of every line of /proc/cpuinfo (empty where it is missing)."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="ignore") as fh:
            return tuple((k.strip(), v.strip()) for k, _, v in (line.partition(":") for line in fh))
    except OSError:
        return ()


@functools.lru_cache(maxsize=1)
def _cpuinfo() -> tuple[str, frozenset[str]]:
    model = next((v for k, v in _entries() if k in ("model name", "Model", "Hardware")), "")
    flags = next((frozenset(v.split()) for k, v in _entries() if k in ("flags", "Features")), frozenset())
    return model or platform.processor() or platform.machine() or "unknown", flags


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


@functools.lru_cache(maxsize=1)
def physical_cores() -> int:
    """Physical cores this process may use (hyper-threads counted once), at least 1."""
    allowed = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    cores, physical = set(), "0"
    for key, value in _entries():
        if key == "physical id":
            physical = value
        elif key == "core id":
            cores.add((physical, value))
    logical = os.cpu_count() or 1
    per_core = max(1, logical // len(cores)) if cores else 1
    return max(1, min(allowed, logical) // per_core)


def isa_cap() -> str | None:
    """The oneDNN ISA cap of this process (``ONEDNN_MAX_CPU_ISA``, e.g. ``AVX2``), lower-cased, or None.

    It changes which kernels torch runs (an AMX CPU measured as one without AMX), so cached speed
    decisions and benchmark stamps include it; onnxruntime's kernels ignore it."""
    cap = os.environ.get("ONEDNN_MAX_CPU_ISA") or os.environ.get("DNNL_MAX_CPU_ISA")
    return cap.lower() if cap else None


@functools.lru_cache(maxsize=1)
def amx_granted() -> bool | None:
    """Whether this process may use AMX tiles: None on CPUs without AMX; else the Linux kernel's answer to
    the permission request that oneDNN and onnxruntime make before they pick an AMX kernel (refused, for
    example, under ``benchmarks/noamx.py``, which stands in for a CPU without AMX)."""
    if not has_flag("amx_tile"):
        return None
    if platform.system() != "Linux" or platform.machine() != "x86_64":
        return True
    import ctypes

    arch_prctl, req_xcomp_perm, xtiledata = 158, 0x1023, 18
    try:
        return ctypes.CDLL(None, use_errno=True).syscall(arch_prctl, req_xcomp_perm, xtiledata) == 0
    except (OSError, AttributeError):
        return True


def kernel_limits() -> str | None:
    """What keeps this process from the CPU's fastest kernels (the oneDNN cap, AMX refused), or None:
    part of the key of every cached speed decision, and of every benchmark stamp."""
    limits = [f"oneDNN ISA <= {cap}" for cap in [isa_cap()] if cap]
    if amx_granted() is False:
        limits.append("AMX refused")
    return ", ".join(limits) or None


def cpu_summary() -> dict[str, object]:
    """Model, architecture, logical CPUs and the ISA extensions of :data:`ISA_FLAGS` present here."""
    return {
        "cpu": cpu_model(),
        "arch": platform.machine(),
        "logical_cpus": os.cpu_count(),
        "isa": [f for f in ISA_FLAGS if has_flag(f)],
    }
