"""Command-line interface: a thin layer over the Python API.

Each subcommand lives in its own module (``train_adain`` for ``painterly train-adain``): its
docstring's first line is the command's help in ``painterly --help`` and the rest its description
in ``painterly COMMAND --help``; ``add_arguments(parser)`` (optional) adds its options and
``run(args)`` runs it, returning the exit status. User errors (:class:`PainterlyError`) print one
line and exit with status 2; Ctrl-C exits with 130.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import sys
from collections.abc import Sequence
from types import ModuleType

from ..errors import PainterlyError, torch_required

#: Subcommand modules, in the order ``painterly --help`` lists them.
COMMANDS = ("stylize", "styles", "transfer", "optimize", "paintings", "video", "serve", "train", "train_adain",
            "train_meta", "distill", "export")


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The parser of every command, or of the command ``only`` (so running one command imports only its
    module: ``painterly stylize`` on onnxruntime never loads torch)."""
    from .. import __version__

    parser = argparse.ArgumentParser(prog="painterly", description="Neural style transfer: photos into paintings.")
    parser.add_argument("--version", action="version", version=f"painterly {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        if only is not None and name.replace("_", "-") != only:
            continue
        try:
            module = importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as exc:  # a torch-only command without torch installed
            if not _is_torch(exc):
                raise
            _add_unavailable(sub, name.replace("_", "-"))
            continue
        _add_command(sub, name.replace("_", "-"), module)
    return parser


def _add_command(sub: argparse._SubParsersAction, command: str, module: ModuleType) -> None:
    """The parser of ``command``, from its module (see the module docstring)."""
    summary, _, description = inspect.cleandoc(module.__doc__ or "").partition("\n")
    p = sub.add_parser(command, help=summary, description=description.strip() or None)
    if hasattr(module, "add_arguments"):
        module.add_arguments(p)
    p.set_defaults(func=module.run)


def _is_torch(exc: ModuleNotFoundError) -> bool:
    return bool(exc.name) and exc.name.split(".")[0] == "torch"


def _add_unavailable(sub: argparse._SubParsersAction, command: str) -> None:
    """A placeholder for a command that needs PyTorch: it accepts anything and explains in one line."""
    p = sub.add_parser(command, help="(needs PyTorch: pip install 'painterly[torch]')", add_help=False)
    p.add_argument("args", nargs=argparse.REMAINDER)

    def run(args: argparse.Namespace) -> int:
        raise torch_required(f"'painterly {command}'")

    p.set_defaults(func=run)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    first = next((a for a in argv if not a.startswith("-")), None)
    parser = build_parser(first if first in {c.replace("_", "-") for c in COMMANDS} else None)
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except PainterlyError as exc:
        print(f"painterly: error: {exc}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as exc:  # a command that imports torch only when it runs
        if not _is_torch(exc):
            raise
        error = torch_required(f"'painterly {args.command}'")
        print(f"painterly: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("painterly: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
