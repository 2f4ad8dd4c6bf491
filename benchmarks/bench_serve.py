#!/usr/bin/env python
"""Load test of ``painterly serve`` on loopback: many concurrent clients, bounded in count and time.

Starts ``python -m painterly serve`` (default settings unless flags say otherwise) on a free
loopback port, waits for it to load its models, then ``--clients`` clients post the bundled lake
photo to ``/api/v1/stylize`` (a style each, in turn) until ``--requests`` requests were answered or
``--duration`` seconds passed. A client answered 429 or 503 waits the Retry-After it was given
(at most ``--max-backoff`` s), as a well-behaved client would. Reports latency p50/p95 of the
successful requests, their throughput, the number of 429s and of 5xx (which must be zero),
transport errors, and the worst latency of /api/v1/health probed twice a second meanwhile (the event
loop stays free while the slots work).

    python benchmarks/bench_serve.py                          # 50 clients, 200 requests, 180 s at most
    python benchmarks/bench_serve.py --quick                  # 12 clients, 24 requests
    python benchmarks/bench_serve.py --slots 2 --threads 1 --tag 2x1   # server options pass through
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import socket
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, machine, machine_line, markdown_table, write_results  # noqa: E402

PHOTO = ROOT / "painterly" / "assets" / "photos" / "lake.jpg"
STYLES = ("starry-night", "the-scream", "udnie", "great-wave")


@dataclass
class LoadResult:
    """What the clients saw."""

    clients: int
    sent: int = 0
    ok: int = 0
    too_busy: int = 0  # 429
    unavailable: int = 0  # 503 (timed out in the server)
    server_errors: int = 0  # 5xx other than 503
    client_errors: int = 0  # other 4xx
    transport_errors: int = 0
    seconds: float = 0.0
    latencies_s: list[float] = field(default_factory=list)
    health_s: list[float] = field(default_factory=list)  # /health latencies during the load: is the loop free?
    errors: list[str] = field(default_factory=list)  # transport errors, named

    def summary(self) -> dict:
        lat = sorted(self.latencies_s)
        q = statistics.quantiles(lat, n=20, method="inclusive") if len(lat) >= 2 else lat * 19
        d = {k: v for k, v in asdict(self).items() if k not in ("latencies_s", "health_s")}
        d["health_max_s"] = max(self.health_s) if self.health_s else None
        d.update(p50_s=statistics.median(lat) if lat else None, p95_s=q[18] if lat else None,
                 max_s=lat[-1] if lat else None, throughput_per_s=self.ok / self.seconds if self.seconds else 0.0,
                 five_xx=self.server_errors + self.unavailable)
        return d


def photo_bytes(side: int) -> bytes:
    """The lake photo as JPEG, longest side ``side``."""
    from PIL import Image

    with Image.open(PHOTO) as img:
        img = img.convert("RGB")
        img.thumbnail((side, side))
        buf = io.BytesIO()
        img.save(buf, format="JPEG", quality=90)
        return buf.getvalue()


async def run_load(base_url: str, clients: int, requests: int, duration_s: float, size: int = 256,
                   photo_side: int = 512, max_backoff_s: float = 2.0, timeout_s: float = 120.0) -> LoadResult:
    """``clients`` concurrent clients posting stylize requests until ``requests`` are answered or
    ``duration_s`` has passed (requests in flight then still finish)."""
    import httpx

    photo = photo_bytes(photo_side)
    result = LoadResult(clients)
    budget = iter(range(requests))
    start = time.perf_counter()
    deadline = start + duration_s
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)

    async def client(k: int, http: httpx.AsyncClient) -> None:
        for n in budget:
            if time.perf_counter() > deadline:
                return
            style = STYLES[(k + n) % len(STYLES)]
            t0 = time.perf_counter()
            result.sent += 1
            try:
                r = await http.post(f"{base_url}/api/v1/stylize", files={"photo": ("lake.jpg", photo, "image/jpeg")},
                                    data={"style": style, "size": str(size)})
            except httpx.HTTPError as exc:
                result.transport_errors += 1
                result.errors.append(f"stylize: {type(exc).__name__}: {exc}")
                continue
            took = time.perf_counter() - t0
            if r.status_code == 200:
                result.ok += 1
                result.latencies_s.append(took)
            elif r.status_code in (429, 503):
                if r.status_code == 429:
                    result.too_busy += 1
                else:
                    result.unavailable += 1
                wait = float(r.headers.get("retry-after", "1"))
                await asyncio.sleep(min(max_backoff_s, wait))
            elif r.status_code >= 500:
                result.server_errors += 1
            else:
                result.client_errors += 1

    async def probe(stop: asyncio.Event) -> None:
        async with httpx.AsyncClient(timeout=timeout_s) as http:
            while not stop.is_set():
                t0 = time.perf_counter()
                try:
                    await http.get(f"{base_url}/api/v1/health")
                    result.health_s.append(time.perf_counter() - t0)
                except httpx.HTTPError as exc:
                    result.transport_errors += 1
                    result.errors.append(f"health: {type(exc).__name__}: {exc}")
                await asyncio.sleep(0.5)

    stop = asyncio.Event()
    probing = asyncio.create_task(probe(stop))
    async with httpx.AsyncClient(limits=limits, timeout=timeout_s) as http:
        await asyncio.gather(*(client(k, http) for k in range(clients)))
    stop.set()
    await probing
    result.seconds = time.perf_counter() - start
    return result


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(port: int, extra: list[str], log: Path, startup_s: float = 180.0) -> subprocess.Popen:
    """``python -m painterly serve`` on ``port``, returned once its health check answers."""
    import httpx

    cmd = [sys.executable, "-m", "painterly", "serve", "--port", str(port), "--log-level", "warning", *extra]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=open(log, "wb"), stderr=subprocess.STDOUT)  # noqa: SIM115
    deadline = time.monotonic() + startup_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited ({proc.returncode}); see {log}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/v1/health", timeout=2).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    proc.terminate()
    raise RuntimeError(f"the server did not start within {startup_s:.0f} s; see {log}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--requests", type=int, default=200, help="stop after this many requests")
    ap.add_argument("--duration", type=float, default=180.0, help="stop sending after this many seconds")
    ap.add_argument("--size", type=int, default=256, help="longest side of the results")
    ap.add_argument("--photo-side", type=int, default=512, help="longest side of the uploaded photo (results are "
                    "never larger)")
    ap.add_argument("--max-backoff", type=float, default=5.0, help="longest wait on 429/503 (Retry-After capped)")
    ap.add_argument("--quick", action="store_true", help="12 clients, 24 requests, 60 s")
    ap.add_argument("--url", help="load an already running server instead of starting one")
    ap.add_argument("--tag", default="", help="results go to serve_TAG.json/.md (to keep several configurations)")
    args, server_args = ap.parse_known_args(argv)
    if args.quick:
        args.clients, args.requests, args.duration = 12, 24, 60.0
    proc = None
    log = Path(os.environ.get("TMPDIR", "/tmp")) / "painterly-bench-serve.log"
    if args.url:
        base = args.url.rstrip("/")
    else:
        port = free_port()
        proc = start_server(port, server_args, log)
        base = f"http://127.0.0.1:{port}"
    try:
        import httpx

        health = httpx.get(f"{base}/api/v1/health", timeout=5).json()
        res = asyncio.run(run_load(base, args.clients, args.requests, args.duration, args.size,
                                   photo_side=args.photo_side, max_backoff_s=args.max_backoff))
        after = httpx.get(f"{base}/api/v1/health", timeout=5).json()
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=30)
    summary = res.summary()
    facts = machine()
    data = {"machine": facts, "settings": {"clients": args.clients, "requests": args.requests,
                                          "duration_s": args.duration, "size": args.size, "photo_side": args.photo_side,
                                          "server_args": server_args, "server": health},
            "result": summary, "server_after": after}
    ms = lambda v: None if v is None else round(1000 * v)  # noqa: E731
    table = markdown_table(
        ["clients", "requests", "200", "429", "5xx", "other 4xx", "transport errors", "p50 ms", "p95 ms", "max ms",
         "results/s", "health max ms", "wall s"],
        [[args.clients, summary["sent"], summary["ok"], summary["too_busy"], summary["five_xx"],
          summary["client_errors"], summary["transport_errors"], ms(summary["p50_s"]), ms(summary["p95_s"]),
          ms(summary["max_s"]), round(summary["throughput_per_s"], 2), ms(summary["health_max_s"]),
          round(summary["seconds"], 1)]])
    slots = f"{health['slots']} slot(s) x {health['threads_per_slot']} thread(s), queue {health['queue_size']}"
    side = min(args.size, args.photo_side)
    md = (f"# painterly serve under load\n\n{machine_line(facts)}\n\nServer: {slots}; "
          f"{' '.join(server_args) or 'default settings'}. Requests: stylize the lake photo "
          f"({args.photo_side} px JPEG) at {side} px; clients back off for Retry-After "
          f"(at most {args.max_backoff:g} s) on 429.\n\n{table}\n")
    json_path, md_path = write_results(f"serve_{args.tag}" if args.tag else "serve", data, md, quick=args.quick)
    print(md)
    print(f"wrote {json_path} and {md_path}")
    return 1 if summary["five_xx"] or summary["transport_errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
