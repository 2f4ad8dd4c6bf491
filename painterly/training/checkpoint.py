"""Training checkpoints: model, optimizer and RNG states in one atomic safetensors file.

Model tensors (``model/<key>``), optimizer state flattened
(``optim/<index>/<key>``), torch RNG states; JSON metadata holds the step, optimizer
hyper-parameters, Python RNG state and ``meta``. ``save_checkpoint`` / ``load_checkpoint``.
"""

from __future__ import annotations

import json
import os
import random
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import PainterlyError
from ..imageio import atomic_write_bytes
from .distributed import unwrap

CHECKPOINT_FORMAT = "painterly.checkpoint.v1"


def default_checkpoint(out: str | os.PathLike) -> Path:
    """The checkpoint next to a model file: ``runs/m.safetensors`` -> ``runs/m.ckpt.safetensors``."""
    out = Path(out)
    return out.with_name(out.name.removesuffix(".safetensors") + ".ckpt.safetensors")


@dataclass
class CheckpointState:
    step: int
    meta: dict[str, Any]


def _rng_state() -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    tensors = {"rng/torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        for i, state in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng/cuda/{i}"] = state
    return tensors, {"python": _jsonable(random.getstate())}


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, tuple | list):
        return [_jsonable(x) for x in obj]
    return obj


def _tupled(obj: Any) -> Any:
    if isinstance(obj, list):
        return tuple(_tupled(x) for x in obj)
    return obj


def save_checkpoint(
    path: str | os.PathLike,
    model: nn.Module,
    optimizer: torch.optim.Optimizer | None,
    step: int,
    meta: Mapping[str, Any] | None = None,
) -> Path:
    """Write model + optimizer state + RNG states + ``meta`` atomically as one safetensors file."""
    from safetensors.torch import save

    tensors: dict[str, torch.Tensor] = {}
    for k, v in unwrap(model).state_dict().items():
        tensors[f"model/{k}"] = v.detach().cpu().contiguous().clone()
    opt_meta: dict[str, Any] = {}
    if optimizer is not None:
        sd = optimizer.state_dict()
        scalars: dict[str, dict[str, Any]] = {}
        for idx, state in sd["state"].items():
            for key, val in state.items():
                if isinstance(val, torch.Tensor):
                    tensors[f"optim/{idx}/{key}"] = val.detach().cpu().contiguous().clone()
                else:
                    scalars.setdefault(str(idx), {})[key] = val
        opt_meta = {"param_groups": sd["param_groups"], "scalars": scalars, "indices": list(sd["state"])}
    rng_tensors, rng_meta = _rng_state()
    tensors.update(rng_tensors)
    header = {
        "format": CHECKPOINT_FORMAT,
        "step": int(step),
        "optimizer": opt_meta,
        "rng": rng_meta,
        "meta": dict(meta or {}),
    }
    data = save(tensors, metadata={"painterly": json.dumps(header)})
    path = Path(path)
    try:
        atomic_write_bytes(path, data)
    except OSError as exc:
        raise PainterlyError(f"cannot write checkpoint '{path}': {exc.strerror or exc}") from None
    return path


def read_checkpoint(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Raw tensors and header of a checkpoint; a foreign or corrupt file -> PainterlyError."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise PainterlyError(f"no checkpoint at '{path}'")
    try:
        with safe_open(str(path), framework="pt") as fh:
            header = json.loads((fh.metadata() or {})["painterly"])
            tensors = {k: fh.get_tensor(k) for k in fh.keys()}
    except Exception as exc:  # safetensors raises several types for damaged files
        raise PainterlyError(f"checkpoint '{path}' is corrupt or not a painterly checkpoint ({exc})") from None
    if header.get("format") != CHECKPOINT_FORMAT:
        raise PainterlyError(f"'{path}' is not a painterly training checkpoint")
    return tensors, header


def load_checkpoint(
    path: str | os.PathLike,
    model: nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    restore_rng: bool = True,
) -> CheckpointState:
    """Restore model, optimizer and RNG states saved by :func:`save_checkpoint`."""
    tensors, header = read_checkpoint(path)
    target = unwrap(model)
    model_sd = {k[len("model/"):]: v for k, v in tensors.items() if k.startswith("model/")}
    try:
        target.load_state_dict(model_sd, strict=True)
    except RuntimeError as exc:
        raise PainterlyError(f"checkpoint '{path}' does not match the model: {str(exc).splitlines()[0]}") from None
    if optimizer is not None and header.get("optimizer"):
        opt = header["optimizer"]
        state: dict[int, dict[str, Any]] = {}
        for idx in opt["indices"]:
            entry = dict(opt["scalars"].get(str(idx), {}))
            prefix = f"optim/{idx}/"
            entry.update({k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)})
            state[int(idx)] = entry
        groups = [{k: (tuple(v) if k == "betas" else v) for k, v in g.items()} for g in opt["param_groups"]]
        try:
            optimizer.load_state_dict({"state": state, "param_groups": groups})
        except (ValueError, KeyError) as exc:
            raise PainterlyError(f"checkpoint '{path}' optimizer state does not match: {exc}") from None
    if restore_rng:
        torch.set_rng_state(tensors["rng/torch"])
        cuda_states = [tensors[k] for k in sorted(tensors) if k.startswith("rng/cuda/")]
        if cuda_states and torch.cuda.is_available():
            for i, st in enumerate(cuda_states[: torch.cuda.device_count()]):
                torch.cuda.set_rng_state(st, i)
        if "python" in header.get("rng", {}):
            random.setstate(_tupled(header["rng"]["python"]))
    return CheckpointState(step=int(header["step"]), meta=header.get("meta", {}))
