"""Helpers shared by the ``bench_*.py`` scripts: timed subprocesses with their peak memory,
the common perceptual score, machine facts, and writing result tables.

Convention (``run_all.py`` relies on it): a script ``bench_NAME.py`` writes
``results/NAME.json`` and ``results/NAME.md`` (``NAME.quick.*`` for ``--quick`` runs) and
prints its markdown table.
"""

from __future__ import annotations

import json
import os
import platform
import shlex
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"


@dataclass
class Measured:
    """One finished child process: its command, exit status, wall time, peak resident memory and CPU time."""

    command: list[str]
    returncode: int
    wall_s: float
    peak_rss_mib: float | None
    log: str  # path of the file with its stdout + stderr
    cpu_s: float | None = None  # user + system CPU seconds of the child (less disturbed by other load than wall time)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["command"] = shlex.join(self.command)
        return d


#: Spawns ``argv[2:]``, waits for it and writes its exit code, wall time, CPU time and peak RSS to ``argv[1]``.
#: The measured process is spawned from this small one, not from the benchmark: on Linux a process's peak RSS
#: starts from the peak of the memory it was spawned with (the parent's, under vfork), and a benchmark holding
#: decoded videos would lend every child its own peak.
_LAUNCHER = """
import json, os, sys, time
start = time.perf_counter()
pid = os.posix_spawnp(sys.argv[2], sys.argv[2:], os.environ)
_, status, usage = os.wait4(pid, 0)
wall = time.perf_counter() - start
code = os.waitstatus_to_exitcode(status)
with open(sys.argv[1], "w") as f:
    json.dump({"code": code, "wall": wall, "maxrss": usage.ru_maxrss, "cpu": usage.ru_utime + usage.ru_stime}, f)
sys.exit(code if 0 <= code < 256 else 1)
"""


def run_measured(command: Sequence[str], log_path: Path, env: dict[str, str] | None = None) -> Measured:
    """Run ``command`` to completion; wall time from spawn to exit, peak RSS and CPU time of that process alone
    (measured by a small launcher process, see :data:`_LAUNCHER`; ``RUSAGE_CHILDREN`` would give the maximum
    over every child ever waited for)."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    stats = log_path.with_suffix(".rusage.json")
    with open(log_path, "wb") as log:
        start = time.perf_counter()
        if hasattr(os, "posix_spawnp") and hasattr(os, "wait4"):
            proc = subprocess.run([sys.executable, "-c", _LAUNCHER, str(stats), *command], stdout=log,
                                  stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, cwd=ROOT)
            wall = time.perf_counter() - start
            if stats.is_file():
                got = json.loads(stats.read_text())
                stats.unlink()
                # ru_maxrss is KiB on Linux, bytes on macOS
                peak = got["maxrss"] / (1024 * 1024 if sys.platform == "darwin" else 1024)
                return Measured(list(command), got["code"], got["wall"], peak, str(log_path), got["cpu"])
            return Measured(list(command), proc.returncode or 1, wall, None, str(log_path))
        proc = subprocess.run(list(command), stdout=log, stderr=subprocess.STDOUT,  # pragma: no cover - Windows
                              stdin=subprocess.DEVNULL, env=env, cwd=ROOT)
        wall = time.perf_counter() - start
    return Measured(list(command), proc.returncode, wall, None, str(log_path))


def run_child(command: Sequence[str], log_path: Path) -> tuple[Measured, dict]:
    """:func:`run_measured` of a child that prints ``RESULT {json}``; returns its measurement and that JSON.
    Exits with a message naming the log when the child fails or prints no result."""
    m = run_measured(command, log_path)
    log = Path(m.log).read_text()
    line = next((ln for ln in log.splitlines() if ln.startswith("RESULT ")), None)
    if m.returncode != 0 or line is None:
        raise SystemExit(f"{log_path.stem} failed (exit {m.returncode}); see {m.log}")
    return m, json.loads(line[len("RESULT "):])


def tail(path: str | Path, lines: int = 15) -> str:
    text = Path(path).read_text(encoding="utf-8", errors="replace")
    return "\n".join(text.replace("\r", "\n").splitlines()[-lines:])


def git_commit() -> str | None:
    """The checked-out commit (with ``+dirty`` when the tree has uncommitted changes), or None."""
    try:
        rev = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return rev.stdout.strip() + ("+dirty" if dirty else "")


def machine() -> dict:
    """Facts that make timings comparable: CPU model and ISA, cores, library versions, the bf16
    decision, the git commit and the load at the time. Stamped into every result file."""
    from importlib import metadata

    from painterly.cpuinfo import amx_granted, cpu_summary, isa_cap

    facts: dict = {**cpu_summary(), "cores": os.cpu_count(), "python": platform.python_version(),
                   "commit": git_commit(), "load_average": os.getloadavg(),
                   "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                   "onednn_max_cpu_isa": isa_cap()}
    if amx_granted() is not None:
        facts["amx_granted"] = amx_granted()  # False under benchmarks/noamx.py
    for package in ("torch", "onnxruntime", "numpy", "pillow"):
        try:
            facts[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            facts[package] = None
    try:
        import torch

        from painterly.runtime import cpu_bf16_fast

        facts["torch_threads"] = torch.get_num_threads()
        facts["bf16_auto"] = cpu_bf16_fast()
    except ImportError:
        pass
    return facts


def machine_line(facts: dict) -> str:
    """One line naming the machine of a result, for the markdown tables."""
    shown = ("amx_bf16", "amx_int8", "avx512_bf16", "avx512_vnni", "avx512f", "avx2")
    isa = ", ".join(f for f in facts.get("isa", []) if f in shown)
    commit = str(facts.get("commit"))[:12]
    cap = facts.get("onednn_max_cpu_isa")
    isa = f"{isa or 'no AVX-512/AMX'}; torch's oneDNN capped at ONEDNN_MAX_CPU_ISA={cap}" if cap else isa
    if facts.get("amx_granted") is False:
        isa += "; AMX refused to the process by benchmarks/noamx.py, so no library can use it"
    return (f"CPU: {facts.get('cpu')} ({facts.get('cores')} cores; {isa or 'no AVX-512/AMX'}), "
            f"torch {facts.get('torch')}, onnxruntime {facts.get('onnxruntime')}, commit {commit}")


def perceptual_score(output, content, styles, size: int, style_weights: Sequence[float] | None = None) -> dict:
    """Score an output image with painterly's loss at the ``painterly optimize`` defaults.

    The content image is resized to ``size`` (longest side) and the style images to
    ``size * style_scale``, exactly as :func:`painterly.optimize` prepares its targets; the
    output is resized to the content's size if it differs. Computed in fp32 on the CPU.
    Returns the weighted ``content``, ``style`` and ``total`` terms as floats.
    """
    from painterly.metrics import score_stylization

    terms = score_stylization(output, content, styles, size=size, style_weights=style_weights)
    return {k: v for k, v in terms.items() if k in ("content", "style", "total")}


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    def cell(v: object) -> str:
        if isinstance(v, float):
            return f"{v:.4g}" if abs(v) < 1e4 else f"{v:,.0f}"
        return "" if v is None else str(v)

    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def write_results(name: str, data: dict, markdown: str, quick: bool = False,
                  folder: Path = RESULTS) -> tuple[Path, Path]:
    """Write ``NAME.json`` and ``NAME.md`` (``NAME.quick.*`` for quick runs) atomically; the JSON
    gets the :func:`machine` stamp when ``data`` has none."""
    from painterly.imageio import atomic_write_bytes

    data = {"machine": machine(), **data} if "machine" not in data else data

    stem = f"{name}.quick" if quick else name
    json_path, md_path = folder / f"{stem}.json", folder / f"{stem}.md"
    atomic_write_bytes(json_path, (json.dumps(data, indent=2) + "\n").encode())
    atomic_write_bytes(md_path, (markdown.rstrip() + "\n").encode())
    return json_path, md_path
