"""serve the web page and the HTTP API (pip install 'painterly[serve]')"""

from __future__ import annotations

import argparse
import os
from dataclasses import fields

from ..errors import PainterlyError
from ..serve.settings import ENV_SETTINGS, ServeSettings

_HELP = {
    "host": "address to listen on (default 127.0.0.1; 0.0.0.0 for all interfaces)",
    "port": "port (default 8000)",
    "workers": "server processes; each is stateless, so scale out with more (default 1)",
    "max_upload_bytes": "largest request body in bytes (default 20 MiB)",
    "max_pixels": "largest decoded image, width*height (default 40,000,000)",
    "max_size": "largest longest side of a result in px (default 1536)",
    "default_size": "longest side when a request gives none (default 768)",
    "timeout_s": "seconds a request may take, queueing included (default 60)",
    "queue_size": "jobs that may wait for a slot; more get 429 (default 8)",
    "slots": "inference jobs at once per process (default 0: one per core, at most 8)",
    "threads": "CPU threads per job (default 0: cores / (workers * slots))",
    "keep_alive_s": "seconds an idle keep-alive connection stays open (default 30)",
    "engine": "inference engine passed to painterly.stylize (default: the library's)",
    "web_dir": "folder of the built on-device page (default: web/ next to the package, if built)",
}


def add_arguments(p: argparse.ArgumentParser) -> None:
    for f in fields(ServeSettings):
        if f.name == "warmup":
            continue
        kind = {"int": int, "float": float}.get(str(f.type), str)
        p.add_argument(f"--{f.name.replace('_', '-')}", type=kind, default=f.default, help=_HELP[f.name])
    p.add_argument("--no-warmup", dest="warmup", action="store_false", help="load models on the first request")
    p.add_argument("--log-level", default="info", choices=("critical", "error", "warning", "info", "debug"))


def run(args: argparse.Namespace) -> int:
    try:
        import uvicorn
    except ImportError:
        raise PainterlyError("serving needs FastAPI and uvicorn: pip install 'painterly[serve]'") from None
    settings = ServeSettings(**{f.name: getattr(args, f.name) for f in fields(ServeSettings)})
    os.environ[ENV_SETTINGS] = settings.to_json()  # read by every worker process
    # The onnxruntime engine sizes its sessions from this (one session is shared by the slots).
    os.environ.setdefault("PAINTERLY_THREADS", str(settings.slot_threads))
    print(f"painterly: serving on http://{settings.host}:{settings.port}/ ({settings.workers} worker(s), "
          f"{settings.inference_slots} slot(s) x {settings.slot_threads} thread(s) each, "
          f"queue {settings.queue_size}); API docs at /docs")
    uvicorn.run("painterly.serve.app:create_app", factory=True, host=settings.host, port=settings.port,
                workers=settings.workers, log_level=args.log_level, timeout_graceful_shutdown=5,
                timeout_keep_alive=settings.keep_alive_s)
    return 0
