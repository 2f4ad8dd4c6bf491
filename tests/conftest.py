"""Fixtures shared by several test files."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture()
def one_thread():
    """Run a test on one torch thread (training tests: deterministic and light on a shared machine)."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)
