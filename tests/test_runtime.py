"""Device, precision and allocator settings."""

from __future__ import annotations

import sys

import pytest
import torch

from painterly.runtime import autocast, keep_freed_memory, resolve_device, resolve_precision


def test_resolve_precision_and_device():
    assert resolve_precision("fp32", "cpu") is None
    assert resolve_precision("bf16", "cpu") is torch.bfloat16
    with pytest.raises(ValueError):
        resolve_precision("fp8", "cpu")
    assert resolve_device("cpu").type == "cpu"
    with autocast("cpu", None):
        assert not torch.is_autocast_enabled("cpu")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc mallopt")
def test_keep_freed_memory(monkeypatch):
    monkeypatch.setenv("PAINTERLY_KEEP_MEMORY", "0")
    assert keep_freed_memory.__wrapped__() is False  # opt-out honoured
    monkeypatch.delenv("PAINTERLY_KEEP_MEMORY")
    assert keep_freed_memory.__wrapped__() is True


@pytest.fixture
def fresh_bf16(monkeypatch, tmp_path):
    """cpu_bf16_fast with an empty cache folder and no override; its memo cleared before and after."""
    from painterly import runtime

    monkeypatch.setenv("PAINTERLY_CACHE", str(tmp_path))
    monkeypatch.delenv("PAINTERLY_BF16", raising=False)
    runtime.cpu_bf16_fast.cache_clear()
    yield runtime
    runtime.cpu_bf16_fast.cache_clear()


def test_bf16_override(fresh_bf16, monkeypatch):
    monkeypatch.setattr(fresh_bf16, "measure_bf16_speedup", lambda: pytest.fail("must not measure"))
    monkeypatch.setenv("PAINTERLY_BF16", "0")
    assert fresh_bf16.cpu_bf16_fast() is False
    fresh_bf16.cpu_bf16_fast.cache_clear()
    monkeypatch.setenv("PAINTERLY_BF16", "1")
    assert fresh_bf16.cpu_bf16_fast() is True and fresh_bf16.bf16_fast("cpu") is True


def test_bf16_never_without_native_instructions(fresh_bf16, monkeypatch):
    monkeypatch.setattr(fresh_bf16.cpuinfo, "has_native_bf16", lambda: False)
    monkeypatch.setattr(fresh_bf16, "measure_bf16_speedup", lambda: pytest.fail("must not measure"))
    assert fresh_bf16.cpu_bf16_fast() is False
    assert fresh_bf16.resolve_precision("auto", "cpu") is None


@pytest.mark.parametrize("speedup, fast", [(3.0, True), (1.05, False)])
def test_bf16_measured_once_and_cached(fresh_bf16, monkeypatch, tmp_path, speedup, fast):
    import json

    monkeypatch.setattr(fresh_bf16.cpuinfo, "has_native_bf16", lambda: True)
    calls = []
    monkeypatch.setattr(fresh_bf16, "measure_bf16_speedup", lambda: calls.append(1) or speedup)
    assert fresh_bf16.cpu_bf16_fast() is fast
    cached = json.loads((tmp_path / "precision.json").read_text())
    assert cached[fresh_bf16._precision_key()]["speedup"] == speedup
    # a new process (memo cleared) reads the file instead of measuring again
    fresh_bf16.cpu_bf16_fast.cache_clear()
    assert fresh_bf16.cpu_bf16_fast() is fast and calls == [1]
    assert fresh_bf16.resolve_precision("auto", "cpu") is (torch.bfloat16 if fast else None)


def test_bf16_corrupt_cache_is_remeasured(fresh_bf16, monkeypatch, tmp_path):
    (tmp_path / "precision.json").write_text("{not json")
    monkeypatch.setattr(fresh_bf16.cpuinfo, "has_native_bf16", lambda: True)
    monkeypatch.setattr(fresh_bf16, "measure_bf16_speedup", lambda: 2.0)
    assert fresh_bf16.cpu_bf16_fast() is True


def test_measure_bf16_speedup_restores_threads():
    from painterly.runtime import measure_bf16_speedup

    before = torch.get_num_threads()
    ratio = measure_bf16_speedup(rounds=1)
    assert ratio > 0 and ratio != float("inf")
    assert torch.get_num_threads() == before


def test_cpu_summary():
    from painterly import cpuinfo

    info = cpuinfo.cpu_summary()
    assert info["cpu"] and set(info["isa"]) <= set(cpuinfo.ISA_FLAGS)
    assert cpuinfo.has_native_bf16() == any(f in cpuinfo.cpu_flags() for f in cpuinfo.BF16_FLAGS)


def test_bf16_cache_is_per_onednn_isa_cap(fresh_bf16, monkeypatch, tmp_path):
    # the same CPU under ONEDNN_MAX_CPU_ISA (e.g. AMX switched off) is measured on its own
    monkeypatch.setattr(fresh_bf16.cpuinfo, "has_native_bf16", lambda: True)
    speedups = iter([3.0, 1.05])
    monkeypatch.setattr(fresh_bf16, "measure_bf16_speedup", lambda: next(speedups))
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)
    monkeypatch.delenv("DNNL_MAX_CPU_ISA", raising=False)
    assert fresh_bf16.cpu_bf16_fast() is True
    fresh_bf16.cpu_bf16_fast.cache_clear()
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX512_CORE_BF16")
    assert fresh_bf16._precision_key().endswith("|oneDNN ISA <= avx512_core_bf16")
    assert fresh_bf16.cpu_bf16_fast() is False


def test_refused_amx_is_a_kernel_limit(monkeypatch):
    from painterly import cpuinfo

    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)
    monkeypatch.delenv("DNNL_MAX_CPU_ISA", raising=False)
    monkeypatch.setattr(cpuinfo, "amx_granted", lambda: True)
    assert cpuinfo.kernel_limits() is None
    monkeypatch.setattr(cpuinfo, "amx_granted", lambda: False)
    assert cpuinfo.kernel_limits() == "AMX refused"
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    assert cpuinfo.kernel_limits() == "oneDNN ISA <= avx2, AMX refused"


@pytest.mark.skipif("amx_tile" not in __import__("painterly.cpuinfo").cpuinfo.cpu_flags(), reason="no AMX here")
def test_noamx_wrapper_refuses_amx_to_the_command():
    """benchmarks/noamx.py (the stand-in for a CPU without AMX) really takes AMX away from what it runs."""
    import subprocess
    from pathlib import Path

    script = Path(__file__).resolve().parent.parent / "benchmarks" / "noamx.py"
    check = "from painterly.cpuinfo import amx_granted, kernel_limits; print(amx_granted(), kernel_limits())"
    plain = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, timeout=60)
    wrapped = subprocess.run([sys.executable, str(script), sys.executable, "-c", check], capture_output=True,
                             text=True, timeout=60)
    if "seccomp filter refused" in wrapped.stderr or "NO_NEW_PRIVS" in wrapped.stderr:
        pytest.skip(f"this container forbids seccomp filters: {wrapped.stderr.strip()}")
    if plain.stdout.startswith("False"):
        pytest.skip("this kernel refuses AMX to every process")
    assert plain.stdout.split() == ["True", "None"], plain.stdout + plain.stderr
    assert wrapped.stdout.strip() == "False AMX refused", wrapped.stdout + wrapped.stderr


def test_limited_threads_scope_onnxruntime_and_torch(monkeypatch):
    from painterly.engines import onnx, threads

    monkeypatch.setenv("PAINTERLY_THREADS", "3")
    before = torch.get_num_threads()
    assert onnx.threads() == 3
    with threads.limited(1) as apply_to_torch:
        assert onnx.threads() == 1 and torch.get_num_threads() == 1
        apply_to_torch()  # torch already imported: nothing more to do
        assert torch.get_num_threads() == 1
    assert onnx.threads() == 3 and torch.get_num_threads() == before
    with threads.limited(None):
        assert onnx.threads() == 3 and torch.get_num_threads() == before
