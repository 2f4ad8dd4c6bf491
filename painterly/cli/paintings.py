"""list the bundled paintings (usable by name with optimize and transfer)"""

from __future__ import annotations

import argparse

from ..paintings import list_paintings


def run(args: argparse.Namespace) -> int:
    for p in list_paintings():
        print(f"{p.name:28} {p.title} ({p.year}), {p.artist}")
    return 0
