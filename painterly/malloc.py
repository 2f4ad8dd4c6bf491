"""glibc's allocator tuned for loops that allocate and free the same large buffers (training steps, video
frames): no torch needed, so the onnxruntime engine's callers can use it too."""

from __future__ import annotations

import ctypes
import functools
import os
import sys


@functools.lru_cache(maxsize=1)
def keep_freed_memory() -> bool:
    """Stop glibc from handing large freed blocks back to the OS (and faulting them in again).

    A CPU training step (or a video frame's forward pass) allocates and frees the same few dozen
    activation buffers of up to tens of MB; by default glibc serves each from a fresh ``mmap`` and
    zero-fills its pages on first touch, which cost ~15% of a feed-forward training step (~20% of a
    480p video frame) on the 2-core reference machine. Raising the mmap and trim thresholds keeps
    those blocks in the heap for reuse. Peak memory is unchanged; memory is returned when the
    process ends. Only on glibc (Linux); returns whether it applied. Opt out with
    ``PAINTERLY_KEEP_MEMORY=0``.
    """
    if os.environ.get("PAINTERLY_KEEP_MEMORY", "1") == "0" or not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        m_trim_threshold, m_mmap_threshold = -1, -3  # from <malloc.h>
        return bool(libc.mallopt(m_mmap_threshold, 256 << 20)) and bool(libc.mallopt(m_trim_threshold, 1 << 30))
    except (OSError, AttributeError):
        return False
