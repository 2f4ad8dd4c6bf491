"""Command-line interface: a thin layer over the Python API.

Each subcommand lives in its own module exposing ``add_parser(subparsers)`` (which sets
``func`` to the function that runs it). User errors (:class:`PainterlyError`) print one line
and exit with status 2; Ctrl-C exits with 130.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from ..errors import PainterlyError

#: Subcommand modules, in the order ``painterly --help`` lists them.
COMMANDS = ("stylize", "styles", "transfer", "optimize", "paintings", "train", "train_adain", "train_meta", "distill")


def build_parser() -> argparse.ArgumentParser:
    from .. import __version__

    parser = argparse.ArgumentParser(prog="painterly", description="Neural style transfer: photos into paintings.")
    parser.add_argument("--version", action="version", version=f"painterly {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        importlib.import_module(f"{__name__}.{name}").add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except PainterlyError as exc:
        print(f"painterly: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("painterly: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
