"""Pipeline stages in background threads, joined by bounded queues (memory stays bounded: a stage runs at most
``depth`` items ahead): :func:`prefetch` produces (decoding, optical flow), :class:`Sink` consumes (blending,
encoding). An error in a stage is raised once, in the calling thread; a stopped caller never leaves a stage
blocked on a full or empty queue.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

T = TypeVar("T")
_DONE = object()
#: Items a stage may run ahead of the next one: the model takes several times longer per frame than decoding
#: with the flow or blending with encoding, so two keep it fed; each item holds a frame and its flow (~6 MB at
#: 480p, ~125 MB at 4K).
DEFAULT_DEPTH = 2


def prefetch(items: Iterator[T], depth: int = DEFAULT_DEPTH, name: str = "painterly-read") -> Iterator[T]:
    """``items`` produced by a background thread; its errors are re-raised here, in order."""
    q: queue.Queue = queue.Queue(depth)
    stop = threading.Event()

    def work() -> None:
        try:
            for item in items:
                if stop.is_set():
                    return
                q.put((True, item))
            q.put((True, _DONE))
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer
            q.put((False, exc))
        finally:
            close = getattr(items, "close", None)
            if close is not None:  # a generator's files are closed in its own thread, now
                with contextlib.suppress(Exception):
                    close()

    thread = threading.Thread(target=work, daemon=True, name=name)
    thread.start()
    try:
        while True:
            ok, item = q.get()
            if not ok:
                raise item
            if item is _DONE:
                return
            yield item
    finally:
        stop.set()
        while thread.is_alive():  # unblock a producer waiting on a full queue
            try:
                q.get(timeout=0.05)
            except queue.Empty:
                pass


class Sink(Generic[T]):
    """``consume(item)`` for every :meth:`put` item, in order, in a background thread.

    An error in ``consume`` is raised by the next :meth:`put` or by :meth:`close` (once); later items are
    dropped. :meth:`close` waits for the items already put; leaving the ``with`` block on an error drops them.
    """

    def __init__(self, consume: Callable[[T], Any], depth: int = DEFAULT_DEPTH, name: str = "painterly-write"):
        self._consume = consume
        self._queue: queue.Queue = queue.Queue(depth)
        self._error: BaseException | None = None
        self._abort = threading.Event()
        self._closed = False
        self._thread = threading.Thread(target=self._work, daemon=True, name=name)
        self._thread.start()

    def _work(self) -> None:
        while (item := self._queue.get()) is not _DONE:
            if self._error is not None or self._abort.is_set():
                continue  # keep draining so that put() never blocks
            try:
                self._consume(item)
            except BaseException as exc:  # noqa: BLE001 - raised in the caller's thread
                self._error = exc

    def _raise(self) -> None:
        if self._error is not None:
            exc, self._error = self._error, None
            self._abort.set()
            raise exc

    def put(self, item: T) -> None:
        self._raise()
        self._queue.put(item)

    def close(self, abort: bool = False) -> None:
        """Wait for the items put so far (``abort``: drop them), then raise the consumer's error if any."""
        if self._closed:
            return
        self._closed = True
        if abort:
            self._abort.set()
        self._queue.put(_DONE)
        self._thread.join()
        if not abort:
            self._raise()

    def __enter__(self) -> Sink[T]:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close(abort=exc_type is not None)
