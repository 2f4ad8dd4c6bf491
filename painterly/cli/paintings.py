"""`painterly paintings`: list the bundled public-domain paintings usable as --style NAME."""

from __future__ import annotations

import argparse

from ..paintings import list_paintings


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("paintings", help="list the bundled paintings (usable by name with optimize and transfer)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    for p in list_paintings():
        print(f"{p.name:28} {p.title} ({p.year}), {p.artist}")
    return 0
