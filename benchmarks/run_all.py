#!/usr/bin/env python
"""Run every ``bench_*.py`` in this folder, one after another, then print their result tables.

    python benchmarks/run_all.py            # full runs (slow: many minutes on a small CPU)
    python benchmarks/run_all.py --quick    # smoke test of every benchmark
    python benchmarks/run_all.py --only optimize stylize

Arguments after ``--`` are passed to every script. Each script ``bench_NAME.py`` writes
``results/NAME.md`` (``results/NAME.quick.md`` with ``--quick``); those tables are printed at
the end. Exit status: 0 when every benchmark succeeded, else 1.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    extra: list[str] = []
    if "--" in argv:
        i = argv.index("--")
        argv, extra = argv[:i], argv[i + 1 :]
    p = argparse.ArgumentParser(description="Run every benchmarks/bench_*.py and print their tables.")
    p.add_argument("--quick", action="store_true", help="pass --quick to every benchmark (smoke test)")
    p.add_argument("--only", nargs="+", metavar="NAME", help="run only these (bench_NAME.py)")
    args = p.parse_args(argv)

    scripts = sorted(HERE.glob("bench_*.py"))
    if args.only:
        wanted = {n.removeprefix("bench_").removesuffix(".py") for n in args.only}
        unknown = wanted - {s.stem.removeprefix("bench_") for s in scripts}
        if unknown:
            p.error(f"no benchmark named {', '.join(sorted(unknown))}; have "
                    f"{', '.join(s.stem.removeprefix('bench_') for s in scripts)}")
        scripts = [s for s in scripts if s.stem.removeprefix("bench_") in wanted]
    if not scripts:
        print("no benchmarks found", file=sys.stderr)
        return 1

    summary = []
    for script in scripts:
        cmd = [sys.executable, str(script), *(["--quick"] if args.quick else []), *extra]
        print(f"=== {script.name}: {' '.join(cmd[1:])}", flush=True)
        start = time.perf_counter()
        code = subprocess.call(cmd, cwd=HERE.parent)
        summary.append((script, code, time.perf_counter() - start))

    print("\n=== results")
    for script, code, seconds in summary:
        name = script.stem.removeprefix("bench_")
        table = HERE / "results" / f"{name}{'.quick' if args.quick else ''}.md"
        status = "ok" if code == 0 else f"FAILED (exit {code})"
        print(f"\n## {script.name}: {status}, {seconds:.0f} s\n")
        if code == 0 and table.is_file():
            print(table.read_text(encoding="utf-8"))
    return 0 if all(code == 0 for _, code, _ in summary) else 1


if __name__ == "__main__":
    sys.exit(main())
