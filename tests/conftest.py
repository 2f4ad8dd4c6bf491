"""Test-wide settings: the engine-choice cache goes to a temporary folder, never the user's home."""

from __future__ import annotations

import os
import tempfile

os.environ["PAINTERLY_CACHE"] = tempfile.mkdtemp(prefix="painterly-test-cache-")
