"""``engine="auto"``: the faster engine available on this machine, measured once and cached.

The measurement (a few runs of the actual models on a small image) is stored in
``~/.cache/painterly/engines.json`` (see :func:`painterly.paths.cache_dir`), keyed by the task, the CPU
model and the versions of painterly, onnxruntime and torch, so it is redone after an upgrade or on
another machine. Without torch the answer is always onnxruntime, and nothing is measured.
``$PAINTERLY_ENGINE`` (onnxruntime or torch) overrides the automatic choice.
"""

from __future__ import annotations

import importlib.util
import os
import time
from collections.abc import Callable, Mapping
from importlib import metadata

from ..cpuinfo import cpu_model, kernel_limits
from ..errors import PainterlyError
from ..paths import read_cache_json, write_cache_entry
from . import ENGINES

CACHE_FILE = "engines.json"


def available(module: str) -> bool:
    """Whether ``module`` can be imported (without importing it)."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # blocked, or a broken entry in sys.modules
        return False


def torch_available() -> bool:
    return available("torch")


def check_engine(engine: str) -> str:
    if engine not in ENGINES:
        raise PainterlyError(f"unknown engine '{engine}'; choose from {', '.join(ENGINES)}")
    return engine


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "none"


def cache_key(task: str) -> str:
    """The cache entry of ``task`` on this machine and these versions."""
    from .. import __version__

    versions = f"painterly {__version__}, onnxruntime {_version('onnxruntime')}, torch {_version('torch')}"
    limits = kernel_limits()
    return f"{task} | {cpu_model()}{f' ({limits})' if limits else ''} | {versions}"


def time_runs(fn: Callable[[], object], repeats: int = 3) -> float:
    """Best wall time of ``repeats`` calls of ``fn`` after one warm-up call, in seconds."""
    fn()
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def fastest(task: str, candidates: Mapping[str, Callable[[], Callable[[], object]]]) -> str:
    """The engine that runs ``task`` fastest here; measured once per machine and versions, then cached.

    ``candidates`` maps engine names to a factory that loads that engine's model and returns a
    zero-argument function doing one small, representative run; factories are only called when a
    measurement is needed (a cached answer loads nothing, so a cached "onnxruntime" never imports torch).
    A single candidate is returned without measuring.
    """
    forced = os.environ.get("PAINTERLY_ENGINE", "")
    if forced in candidates:
        return forced
    if len(candidates) == 1:
        return next(iter(candidates))
    key = cache_key(task)
    entry = read_cache_json(CACHE_FILE).get(key)
    if isinstance(entry, dict) and entry.get("engine") in candidates:
        return entry["engine"]
    times = {name: time_runs(make()) for name, make in candidates.items()}
    best = min(times, key=times.get)
    write_cache_entry(CACHE_FILE, key, {"engine": best, "seconds": {k: round(v, 5) for k, v in times.items()},
                       "measured": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
    return best
