"""Append-only CSV training log (truncated to the resumed step on ``--resume``)."""

from __future__ import annotations

import csv
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any


class CsvLog:
    """Append-only CSV log with a header; flushed after every row."""

    def __init__(self, path: str | os.PathLike, fields: Sequence[str], resume_step: int | None = None) -> None:
        self.path = Path(path)
        self.fields = list(fields)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        rows: list[dict[str, str]] = []
        if resume_step is not None and self.path.is_file():
            with open(self.path, newline="", encoding="utf-8") as fh:
                rows = [r for r in csv.DictReader(fh) if _int_or(r.get("step"), 0) <= resume_step]
        self._fh = open(self.path, "w", newline="", encoding="utf-8")
        self._writer = csv.DictWriter(self._fh, fieldnames=self.fields, extrasaction="ignore")
        self._writer.writeheader()
        for r in rows:
            self._writer.writerow(r)
        self._fh.flush()

    def write(self, row: Mapping[str, Any]) -> None:
        self._writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})
        self._fh.flush()

    def close(self) -> None:
        self._fh.close()


def _int_or(text: str | None, default: int) -> int:
    try:
        return int(text or "")
    except ValueError:
        return default
