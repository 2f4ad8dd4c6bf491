"""Serve the browser demo (web/) on 127.0.0.1 with the headers onnxruntime-web wants. Stdlib only.

* ``.wasm`` as ``application/wasm`` (streaming compilation) and ``.mjs`` as JavaScript (module import);
* ``Cross-Origin-Opener-Policy: same-origin`` and ``Cross-Origin-Embedder-Policy: require-corp``, which
  make the page cross-origin isolated, so SharedArrayBuffer exists and the wasm runtime can use threads
  (``--no-isolation`` drops them: the same page then runs the runtime single-threaded);
* ``Cache-Control: no-cache`` so a rebuilt web/vendor/ is picked up.

    python web/serve.py [--port 8000]     # then open the printed address
"""

from __future__ import annotations

import argparse
import functools
import sys
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

WEB = Path(__file__).resolve().parent

TYPES = {".wasm": "application/wasm", ".mjs": "text/javascript", ".js": "text/javascript", ".json": "application/json",
         ".onnx": "application/octet-stream", ".css": "text/css", ".html": "text/html", ".svg": "image/svg+xml"}


class DemoHandler(SimpleHTTPRequestHandler):
    """Static files from ``directory`` with the demo's MIME types and headers."""

    extensions_map = {**SimpleHTTPRequestHandler.extensions_map, **TYPES}
    isolate = True
    quiet = False

    def end_headers(self) -> None:
        if self.isolate:
            self.send_header("Cross-Origin-Opener-Policy", "same-origin")
            self.send_header("Cross-Origin-Embedder-Policy", "require-corp")
        self.send_header("Cache-Control", "no-cache")
        super().end_headers()

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (the base class's name)
        if not self.quiet:
            super().log_message(format, *args)


def make_server(root: Path = WEB, port: int = 0, isolate: bool = True, quiet: bool = False) -> ThreadingHTTPServer:
    """A server for ``root`` on 127.0.0.1:``port`` (0: a free port; see ``server.server_address``)."""
    handler = type("Handler", (DemoHandler,), {"isolate": isolate, "quiet": quiet})
    server = ThreadingHTTPServer(("127.0.0.1", port), functools.partial(handler, directory=str(root)))
    server.daemon_threads = True
    return server


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Serve the painterly browser demo on 127.0.0.1.")
    parser.add_argument("--port", type=int, default=8000, help="port (0: any free one; default 8000)")
    parser.add_argument("--no-isolation", action="store_true", help="no COOP/COEP headers (single-threaded wasm)")
    args = parser.parse_args(argv)
    if not (WEB / "vendor" / "model.json").is_file():
        print("web/vendor/ is not built: run 'make web' first", file=sys.stderr)
        return 2
    server = make_server(WEB, args.port, isolate=not args.no_isolation)
    print(f"painterly web demo: http://127.0.0.1:{server.server_address[1]}/  (Ctrl-C stops)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
