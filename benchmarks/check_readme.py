#!/usr/bin/env python
"""Fail when a measured number in the README has no benchmark result behind it.

    python benchmarks/check_readme.py [--readme README.md]

Every number with a unit of measure (s, ms, MiB, MB, GB, images/s, fps, x) in the README's
"Benchmarks" section must appear in a result file under ``benchmarks/results/`` (a JSON value
that rounds to it, or the same text in a markdown table), and every result file must carry its
machine stamp (CPU, ISA, commit). Lines holding ``<!-- unmeasured -->`` are skipped (e.g. a
figure quoted from an issue). ``make bench`` runs this after the benchmarks; ``make test`` does not.
Exit status 1 lists each unbacked number with its line.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
UNIT = r"(?:s|ms|MiB|MB|GB|GiB|KB|img/s|images/s|fps|x)"
NUMBER = re.compile(rf"(?<![\w.])(\d+(?:,\d{{3}})*(?:\.\d+)?)\s?{UNIT}(?![\w])")
SKIP = "<!-- unmeasured -->"


def section(text: str, title: str = "Benchmarks") -> list[tuple[int, str]]:
    """(line number, line) of the README's ``## title`` section, up to the next ``## `` heading."""
    lines, inside, out = text.splitlines(), False, []
    for i, line in enumerate(lines, 1):
        if line.startswith("## "):
            inside = line[3:].strip().lower().startswith(title.lower())
            continue
        if inside:
            out.append((i, line))
    return out


def json_numbers(obj: object) -> Iterator[float]:
    if isinstance(obj, bool):
        return
    if isinstance(obj, (int, float)):
        yield float(obj)
    elif isinstance(obj, dict):
        for v in obj.values():
            yield from json_numbers(v)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            yield from json_numbers(v)


def backed(value: str, numbers: set[float], texts: str) -> bool:
    """A README number is backed when a result rounds to it at its precision, or a table prints it."""
    if re.search(rf"(?<![\d.]){re.escape(value)}(?![\d])", texts):
        return True
    v = float(value.replace(",", ""))
    decimals = len(value.split(".")[1]) if "." in value else 0
    half = 0.5 * 10.0**-decimals
    return any(abs(n - v) <= half + 1e-12 for n in numbers) or any(abs(n * 100 - v) <= half for n in numbers)


def unstamped(results: Path) -> list[str]:
    """Result JSON files without a machine stamp naming the CPU, its ISA and the commit."""
    bad = []
    for path in sorted(results.glob("*.json")):
        if ".quick." in path.name:
            continue
        try:
            facts = json.loads(path.read_text(encoding="utf-8")).get("machine", {})
        except (ValueError, AttributeError):
            facts = {}
        if not all(k in facts for k in ("cpu", "isa", "commit")):
            bad.append(path.name)
    return bad


def check(readme: Path, results: Path = RESULTS) -> list[str]:
    numbers: set[float] = set()
    texts = []
    for path in results.glob("*"):
        if ".quick." in path.name:
            continue
        if path.suffix == ".json":
            try:
                numbers.update(json_numbers(json.loads(path.read_text(encoding="utf-8"))))
            except ValueError:
                continue
        elif path.suffix == ".md":
            texts.append(path.read_text(encoding="utf-8"))
    joined = "\n".join(texts)
    problems = [f"{name}: no machine stamp (cpu, isa, commit)" for name in unstamped(results)]
    for lineno, line in section(readme.read_text(encoding="utf-8")):
        if SKIP in line or line.lstrip().startswith(("![", "```", "python ", "painterly ")):
            continue
        for m in NUMBER.finditer(line):
            if not backed(m.group(1), numbers, joined):
                problems.append(f"README.md:{lineno}: '{m.group(0)}' has no result in {results.name}/")
    return problems


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--readme", type=Path, default=HERE.parent / "README.md")
    args = p.parse_args(argv)
    problems = check(args.readme)
    for line in problems:
        print(line)
    print(f"check_readme: {len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
