"""Intra-op CPU threads of the engines: ``$PAINTERLY_THREADS`` or ``$OMP_NUM_THREADS`` when set, else every
physical core; :func:`limited` narrows them for a block of work (the video pipeline gives the model all but
one core and runs decoding, optical flow and encoding on the one left).
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterator
from contextvars import ContextVar

from ..cpuinfo import physical_cores

_override: ContextVar[int | None] = ContextVar("painterly_threads", default=None)


def configured() -> int | None:
    """The thread count the user set (``$PAINTERLY_THREADS``, else ``$OMP_NUM_THREADS``), or None."""
    for var in ("PAINTERLY_THREADS", "OMP_NUM_THREADS"):
        value = os.environ.get(var, "")
        if value.isdigit() and int(value) > 0:
            return int(value)
    return None


def intra_op_threads() -> int:
    """Threads an engine opened now should use: the :func:`limited` block's, the user's, or the physical cores."""
    return _override.get() or configured() or physical_cores()


@contextlib.contextmanager
def limited(threads: int | None) -> Iterator[Callable[[], None]]:
    """Within the block, onnxruntime sessions opened in this thread use ``threads`` intra-op threads, and so does
    torch in this thread once imported; torch's own setting is restored afterwards.

    Yields a function to call after loading a model that may have imported torch inside the block (torch is
    never imported here: a run on onnxruntime does not pay for it). ``threads`` None: nothing changes."""
    if threads is None:
        yield lambda: None
        return
    threads = max(1, int(threads))
    token = _override.set(threads)
    before: list[int] = []

    def apply_to_torch() -> None:
        torch = sys.modules.get("torch")
        if torch is not None and not before:
            before.append(torch.get_num_threads())
            torch.set_num_threads(threads)

    apply_to_torch()
    try:
        yield apply_to_torch
    finally:
        _override.reset(token)
        if before:
            sys.modules["torch"].set_num_threads(before[0])
