"""Bounds on the work one server process accepts: a fixed number of inference slots fed by a
bounded queue (full -> 429), a per-request timeout, and a cap on request body size."""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import math
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

T = TypeVar("T")


class QueueFull(Exception):
    """Every slot is busy and the queue is full; retry after ``retry_after`` seconds."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"the server is busy; retry in {retry_after} s")
        self.retry_after = retry_after


class JobTimeout(Exception):
    """A job did not finish within the request timeout."""

    def __init__(self, timeout_s: float, retry_after: int) -> None:
        super().__init__(f"the request took longer than {timeout_s:g} s; try a smaller size or retry later")
        self.retry_after = retry_after


def _set_threads(threads: int) -> None:
    """Give this worker thread's inference ``threads`` CPU threads (torch's are per calling thread)."""
    try:
        import torch
    except ImportError:  # the onnxruntime engine sizes its own sessions
        return
    torch.set_num_threads(threads)


class InferencePool:
    """``slots`` worker threads, each running one job at a time with ``threads`` CPU threads.

    At most ``slots + queue_size`` jobs are admitted; a job counts until it really ends (a timed
    out job that already started keeps its slot until it finishes), so the bound always holds.
    """

    def __init__(self, slots: int, threads: int, queue_size: int, timeout_s: float) -> None:
        self.slots, self.threads, self.queue_size, self.timeout_s = slots, threads, queue_size, timeout_s
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=slots, thread_name_prefix="painterly-infer", initializer=_set_threads, initargs=(threads,))
        self._lock = threading.Lock()
        self._admitted = 0
        self._running = 0
        self._mean_s = 1.0  # running mean of job seconds, for Retry-After
        self.completed = 0
        self.rejected = 0

    @property
    def capacity(self) -> int:
        return self.slots + self.queue_size

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return {"slots": self.slots, "threads_per_slot": self.threads, "queue_size": self.queue_size,
                    "running": self._running, "queued": self._admitted - self._running,
                    "completed": self.completed, "rejected": self.rejected, "mean_job_s": round(self._mean_s, 3)}

    def retry_after(self) -> int:
        """Seconds until a slot is likely free: the queue ahead times the mean job time, per slot."""
        with self._lock:
            ahead = self._admitted
        return max(1, math.ceil(self._mean_s * max(1, ahead) / self.slots))

    def submit(self, fn: Callable[..., T], *args: Any) -> concurrent.futures.Future[T]:
        """Queue ``fn(*args)``, or raise :class:`QueueFull`."""
        with self._lock:
            full = self._admitted >= self.capacity
            if full:
                self.rejected += 1
            else:
                self._admitted += 1
        if full:
            raise QueueFull(self.retry_after())
        try:
            future = self._executor.submit(self._timed, fn, *args)
        except BaseException:
            self._release(None)
            raise
        future.add_done_callback(self._release)
        return future

    def _timed(self, fn: Callable[..., T], *args: Any) -> T:
        with self._lock:
            self._running += 1
        start = time.perf_counter()
        try:
            return fn(*args)
        finally:
            took = time.perf_counter() - start
            with self._lock:
                self._running -= 1
                self._mean_s = 0.8 * self._mean_s + 0.2 * took if self.completed else took
                self.completed += 1

    def _release(self, _future: object) -> None:
        with self._lock:
            self._admitted -= 1

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(*args)`` in a slot without blocking the event loop; :class:`JobTimeout` after the timeout."""
        future = self.submit(fn, *args)
        try:
            return await asyncio.wait_for(asyncio.wrap_future(future), self.timeout_s)
        except asyncio.TimeoutError:
            future.cancel()  # only a job still waiting for a slot can be cancelled
            raise JobTimeout(self.timeout_s, self.retry_after()) from None

    def shutdown(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


ASGIApp = Callable[[dict, Callable[[], Awaitable[dict]], Callable[[dict], Awaitable[None]]], Awaitable[None]]


class BodyLimit:
    """ASGI middleware: a request body over ``max_bytes`` gets 413 with a JSON error, whether it
    declares its length or streams; nothing past the limit is read."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._reject(send)
            return
        seen = 0
        over = False
        started = False

        async def limited_receive() -> dict:
            nonlocal seen, over
            if over:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    over = True
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: dict) -> None:
            nonlocal started
            if over:  # the app answered a cut-off body; answer 413 instead
                if message["type"] == "http.response.start" and not started:
                    started = True
                    await self._reject(send)
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except Exception:
            if not over:
                raise
            if not started:
                await self._reject(send)

    async def _reject(self, send: Callable) -> None:
        mib = self.max_bytes / (1024 * 1024)
        body = json.dumps({"error": f"the upload is too large (limit {mib:.3g} MiB)"}).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                                (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})


#: Headers that make the page cross-origin isolated, so onnxruntime-web may run threads on the device.
ISOLATION_HEADERS = [(b"cross-origin-opener-policy", b"same-origin"),
                     (b"cross-origin-embedder-policy", b"require-corp"),
                     (b"cross-origin-resource-policy", b"same-origin")]


class IsolationHeaders:
    """ASGI middleware: :data:`ISOLATION_HEADERS` on responses under ``prefixes`` (the page and its files)."""

    def __init__(self, app: ASGIApp, prefixes: tuple[str, ...]) -> None:
        self.app, self.prefixes = app, prefixes

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if not (path == "/" or path.startswith(self.prefixes)):
            await self.app(scope, receive, send)
            return

        async def add_headers(message: dict) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *ISOLATION_HEADERS]}
            await send(message)

        await self.app(scope, receive, add_headers)
