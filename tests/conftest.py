"""Test-wide settings and shared fixtures: the engine-choice cache goes to a temporary folder, never
the user's home."""

from __future__ import annotations

import os
import tempfile

import pytest

os.environ["PAINTERLY_CACHE"] = tempfile.mkdtemp(prefix="painterly-test-cache-")


@pytest.fixture()
def one_thread():
    """Run a test on one torch thread (training tests: deterministic and light on a shared machine)."""
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)
