"""Server settings: one dataclass, filled from CLI flags, passed to worker processes as JSON."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from ..errors import PainterlyError

#: Environment variable carrying the settings to ``uvicorn --workers`` processes.
ENV_SETTINGS = "PAINTERLY_SERVE_SETTINGS"

MiB = 1024 * 1024


@dataclass
class ServeSettings:
    """Limits and sizes of ``painterly serve``; every field has a ``--flag`` of the same name."""

    host: str = "127.0.0.1"
    port: int = 8000
    #: Server processes (each one stateless with its own models and slots).
    workers: int = 1
    #: Largest request body (all uploads together), in bytes.
    max_upload_bytes: int = 20 * MiB
    #: Largest decoded image (width * height); bigger ones (decompression bombs) get 413.
    max_pixels: int = 40_000_000
    #: Largest longest side of a result, in pixels.
    max_size: int = 1536
    #: Longest side of a result when the request gives none (never more than the photo's own).
    default_size: int = 768
    #: Seconds a request may take, queueing included; then 503 with Retry-After.
    timeout_s: float = 60.0
    #: Jobs that may wait for a free slot; more get 429 with Retry-After.
    queue_size: int = 8
    #: Inference jobs running at once per process (0: one per core, at most 8).
    slots: int = 0
    #: CPU threads per slot (0: cores / (workers * slots)).
    threads: int = 0
    #: Seconds an idle keep-alive connection stays open (longer than clients' Retry-After waits).
    keep_alive_s: int = 30
    #: Engine passed to painterly.stylize (None: the library default).
    engine: str | None = None
    #: Folder of the on-device page (web/ with vendor/), offered as "run on this device" when built.
    web_dir: str | None = None
    #: Load the models at startup so the first request is not slow.
    warmup: bool = True

    def __post_init__(self) -> None:
        positive = ("workers", "max_upload_bytes", "max_pixels", "max_size", "default_size")
        for name in positive:
            if int(getattr(self, name)) < 1:
                raise PainterlyError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}")
        for name in ("queue_size", "slots", "threads"):
            if int(getattr(self, name)) < 0:
                raise PainterlyError(f"--{name.replace('_', '-')} must be 0 or more, got {getattr(self, name)}")
        if self.timeout_s <= 0:
            raise PainterlyError(f"--timeout-s must be positive, got {self.timeout_s}")
        if self.max_size < 16:
            raise PainterlyError(f"--max-size must be at least 16 pixels, got {self.max_size}")
        self.default_size = min(self.default_size, self.max_size)

    @property
    def cores(self) -> int:
        return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)

    @property
    def inference_slots(self) -> int:
        """Concurrent jobs per process: given, or one per core of this process's share (at most 8).

        One thread per job measured best on a busy 2-core Xeon (benchmarks/results/serve*.md: 1 slot x 2
        threads served 1.0 results/s at 256 px, 2 slots x 1 thread 5.9/s, 1 x 1 7.0/s): multi-threaded
        jobs stall at every barrier when a core is taken by someone else, as on shared or quota'd hosts.
        """
        if self.slots:
            return self.slots
        return max(1, min(8, self.cores // self.workers))

    @property
    def slot_threads(self) -> int:
        """Threads of one job, so that all slots of all workers together use the cores once."""
        if self.threads:
            return self.threads
        return max(1, self.cores // (self.workers * self.inference_slots))

    def web_path(self) -> Path | None:
        """The on-device page's folder, when it exists (default: ``web/`` of a source checkout)."""
        path = Path(self.web_dir) if self.web_dir else Path(__file__).resolve().parents[2] / "web"
        return path if path.is_dir() else None

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> ServeSettings:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in json.loads(text).items() if k in known})

    @classmethod
    def from_env(cls) -> ServeSettings:
        text = os.environ.get(ENV_SETTINGS)
        return cls.from_json(text) if text else cls()
