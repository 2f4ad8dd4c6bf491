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
