"""Image input/output: decoding any common image safely, tensors, and atomic writes.

Everything that touches image files goes through this module, so that every command
handles EXIF rotation, odd modes (grayscale, palette, CMYK, 16-bit, float, alpha),
decompression bombs and truncated files the same way: a bad file gives one
:class:`~painterly.errors.ImageError` whose message names the file.
"""

from __future__ import annotations

import io
import os
import sys
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Union

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from .errors import ImageError

if TYPE_CHECKING:  # torch is optional: imported only by the functions that take or return tensors
    import torch

#: Default refusal limit in pixels (width * height): 100 megapixels.
DEFAULT_MAX_PIXELS = 100_000_000

#: Shortest side the networks work at: VGG's four poolings down to relu5_1, and the AdaIN
#: decoder's and transformer's reflection padding, need 16 px. Smaller images are processed upscaled.
MIN_SIDE = 16

#: File extensions :func:`save_image` can write, mapped to Pillow format names.
SAVE_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP"}

#: Extensions recognised when scanning folders for images.
IMAGE_EXTENSIONS = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".gif"}

ImageLike = Union[str, os.PathLike, Image.Image, np.ndarray, "torch.Tensor"]  # noqa: UP007 (a forward reference)

_ALPHA_MODES = ("RGBA", "LA", "La", "RGBa", "PA")
_HIGH_DEPTH_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I", "F")


@dataclass
class Picture:
    """A decoded image: RGB pixels plus the alpha channel it had, if any."""

    rgb: Image.Image
    alpha: Image.Image | None = None
    name: str = "<image>"

    @property
    def size(self) -> tuple[int, int]:
        return self.rgb.size


def _describe(src: object) -> str:
    return os.fspath(src) if isinstance(src, (str, os.PathLike)) else f"<{type(src).__name__}>"


def _to_8bit(img: Image.Image) -> Image.Image:
    """Convert high-bit-depth single-channel modes (I;16*, I, F) to 8-bit L.

    16-bit data is scaled by 255/65535. 32-bit integers are read as 16-bit when any value
    exceeds 255 (how 16-bit PNGs decode in older Pillow), else as 8-bit. Float images in
    [0, 1] are scaled by 255, in [0, 255] kept, and anything else is stretched min..max.
    """
    arr = np.asarray(img, dtype=np.float64)
    if img.mode == "F":
        finite = arr[np.isfinite(arr)]
        lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 0.0)
        if lo >= 0.0 and hi <= 1.0:
            arr = arr * 255.0
        elif lo < 0.0 or hi > 255.0:
            arr = (arr - lo) / (hi - lo) * 255.0 if hi > lo else np.zeros_like(arr)
        arr = np.nan_to_num(arr, nan=0.0, posinf=255.0, neginf=0.0)
    else:
        peak = 65535.0 if img.mode.startswith("I;16") or arr.max(initial=0) > 255 else 255.0
        arr = arr * (255.0 / peak)
    return Image.fromarray(np.clip(np.rint(arr), 0, 255).astype(np.uint8), mode="L")


def _split_modes(img: Image.Image) -> Picture:
    """Normalise any Pillow mode to RGB (+ an optional L alpha channel)."""
    if img.mode in ("P", "L", "RGB") and "transparency" in img.info:
        img = img.convert("RGBA")  # palette / colour-key transparency becomes real alpha
    elif img.mode == "P":
        img = img.convert("RGB")
    elif img.mode in _HIGH_DEPTH_MODES:
        img = _to_8bit(img)
    elif img.mode == "1":
        img = img.convert("L")
    elif img.mode == "La":  # premultiplied; Pillow converts it to LA only
        img = img.convert("LA")
    if img.mode in _ALPHA_MODES:
        rgba = img.convert("RGBA")
        return Picture(rgba.convert("RGB"), rgba.getchannel("A"))
    return Picture(img if img.mode == "RGB" else img.convert("RGB"), None)


@contextmanager
def _decoder_guard() -> Iterator[None]:
    """Strict decoding: truncated data raises, and Pillow's own global pixel limit is
    lifted because :func:`read_image` checks the size itself, with a clearer message."""
    old_limit, old_truncated = Image.MAX_IMAGE_PIXELS, ImageFile.LOAD_TRUNCATED_IMAGES
    Image.MAX_IMAGE_PIXELS, ImageFile.LOAD_TRUNCATED_IMAGES = None, False
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            yield
    finally:
        Image.MAX_IMAGE_PIXELS, ImageFile.LOAD_TRUNCATED_IMAGES = old_limit, old_truncated


def _check_pixels(size: tuple[int, int], name: str, max_pixels: int | None) -> None:
    if max_pixels and size[0] * size[1] > max_pixels:
        raise ImageError(f"refusing image '{name}': {size[0]}x{size[1]} is over the limit of "
                         f"{max_pixels:,} pixels (decompression bomb?); resize it first or raise --max-pixels")


def _array_to_pil(arr: np.ndarray, name: str) -> Image.Image:
    """HxW or HxWxC (C = 1..4) array -> PIL image. uint16 is 16-bit; floats are [0, 1] (0-255 if larger)."""
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (2, 3, 4)) or 0 in arr.shape:
        raise ImageError(f"cannot use array {name}: expected shape HxW or HxWxC with C in 1..4, got {arr.shape}")
    if arr.dtype == np.uint16:
        arr = arr.astype(np.float64) / 257.0
    elif arr.dtype == np.bool_ or np.issubdtype(arr.dtype, np.floating):
        arr = np.nan_to_num(arr.astype(np.float64))
        arr = arr * 255.0 if arr.max(initial=0.0) <= 1.0 else arr  # [0, 1], else already 0-255
    elif not np.issubdtype(arr.dtype, np.integer):
        raise ImageError(f"cannot use array {name}: unsupported dtype {arr.dtype}")
    # HxW -> L, HxWx2 -> LA, HxWx3 -> RGB, HxWx4 -> RGBA
    return Image.fromarray(np.ascontiguousarray(np.clip(np.rint(arr), 0, 255).astype(np.uint8)))


def _is_tensor(obj: object) -> bool:
    """Whether ``obj`` is a torch tensor (without importing torch: if it is not loaded, nothing is a tensor)."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(obj, torch.Tensor)


def _tensor_to_pil(t: torch.Tensor, name: str) -> Image.Image:
    """(C, H, W) or (1, C, H, W) float tensor in [0, 1], C = 1, 3 or 4 -> PIL image."""
    x = t.detach()
    if x.dim() == 4 and x.shape[0] == 1:
        x = x[0]
    if x.dim() != 3 or x.shape[0] not in (1, 3, 4):
        raise ImageError(f"cannot use tensor {name}: expected shape (C, H, W) or (1, C, H, W) with C in "
                         f"(1, 3, 4), got {tuple(t.shape)}")
    arr = x.float().cpu().permute(1, 2, 0).numpy()
    return _array_to_pil(arr, name)


def read_image(src: ImageLike, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> Picture:
    """Decode ``src`` into a :class:`Picture` (RGB + optional alpha).

    ``src`` is a path, a PIL image, an HxW[xC] array (uint8 0-255, uint16 0-65535, float
    0-1) or a (1,)CxHxW tensor in [0, 1]. EXIF orientation is applied; grayscale, palette,
    CMYK, 16-bit and float images become RGB; alpha is returned separately. Images over
    ``max_pixels`` (``None`` or 0: no limit) are refused before decoding, and unreadable,
    truncated or non-image files raise an :class:`ImageError` naming the file.
    """
    name = _describe(src)
    if _is_tensor(src):
        return read_image(_tensor_to_pil(src, name), max_pixels)
    if isinstance(src, np.ndarray):
        return read_image(_array_to_pil(src, name), max_pixels)
    if isinstance(src, Image.Image):
        _check_pixels(src.size, name, max_pixels)
        try:
            pic = _split_modes(ImageOps.exif_transpose(src))
        except Exception as exc:  # odd modes Pillow cannot convert
            raise ImageError(f"cannot use image {name} (mode {src.mode}): {exc}") from None
        pic.name = name
        return pic
    if not isinstance(src, (str, os.PathLike)):
        raise ImageError(f"cannot read image from a {type(src).__name__}: expected a path, PIL image, array or tensor")
    path = Path(src)
    if not path.exists():
        raise ImageError(f"cannot read image '{name}': no such file")
    if path.is_dir():
        raise ImageError(f"cannot read image '{name}': it is a directory")
    try:
        if path.stat().st_size == 0:
            raise ImageError(f"cannot read image '{name}': the file is empty")
        with _decoder_guard(), Image.open(path) as img:
            _check_pixels(img.size, name, max_pixels)
            img.load()
            pic = _split_modes(ImageOps.exif_transpose(img))
    except ImageError:
        raise
    except UnidentifiedImageError:
        raise ImageError(f"cannot read image '{name}': not an image, or a format Pillow cannot read") from None
    except OSError as exc:
        raise ImageError(f"cannot read image '{name}': {_os_reason(exc)}") from None
    except MemoryError:
        raise ImageError(f"cannot read image '{name}': not enough memory to decode it") from None
    except Exception as exc:  # SyntaxError, ValueError, zlib.error, struct.error ...: a corrupt file
        raise ImageError(f"cannot read image '{name}': corrupt file ({type(exc).__name__}: {exc})") from None
    pic.name = name
    return pic


def _os_reason(exc: OSError) -> str:
    if exc.errno is not None and exc.strerror:
        return exc.strerror.lower()
    text = str(exc)
    if "truncat" in text.lower():
        return "the file is truncated"
    return f"corrupt or unsupported file ({text})" if text else "corrupt or unsupported file"


def load_image(src: ImageLike, size: int | None = None, max_pixels: int | None = DEFAULT_MAX_PIXELS,
               min_side: int = 0) -> Image.Image:
    """Read ``src`` as an RGB PIL image, optionally resized so its longest side is ``size``.

    ``min_side``: then upscale it, if needed, so its shortest side is at least that (see
    :func:`ensure_min_side`; for images whose statistics are used, like paintings).
    """
    img = read_image(src, max_pixels).rgb
    img = resize_longest(img, size) if size else img
    return ensure_min_side(img, min_side, max_pixels) if min_side else img


def ensure_min_side(img: Image.Image, min_side: int = MIN_SIDE,
                    max_pixels: int | None = DEFAULT_MAX_PIXELS) -> Image.Image:
    """``img`` upscaled (bicubic, aspect ratio kept) so its shortest side is at least ``min_side``.

    A tiny or very thin image (an icon, a 3-pixel strip) is smaller than the networks' pooling and
    padding allow; callers process it at this size and resize the result back. An image so thin
    that the upscaled copy would exceed ``max_pixels`` raises an :class:`ImageError`.
    """
    w, h = img.size
    if min(w, h) >= min_side:
        return img
    scale = min_side / min(w, h)
    new = (max(min_side, round(w * scale)), max(min_side, round(h * scale)))
    if max_pixels and new[0] * new[1] > max_pixels:
        raise ImageError(f"cannot use a {w}x{h} image: it is too thin (the networks need {min_side} px on the "
                         f"short side, which would make it {new[0]}x{new[1]})")
    return img.resize(new, Image.Resampling.BICUBIC)


def resize_longest(img: Image.Image, size: int) -> Image.Image:
    """Resize so the longest side is ``size`` pixels, keeping the aspect ratio."""
    if size < 1:
        raise ValueError(f"size must be a positive number of pixels, got {size}")
    w, h = img.size
    scale = size / max(w, h)
    new = (max(1, round(w * scale)), max(1, round(h * scale)))
    if new == img.size:
        return img
    return img.resize(new, Image.Resampling.LANCZOS if scale < 1 else Image.Resampling.BICUBIC)


def to_array(img: Image.Image) -> np.ndarray:
    """PIL RGB image -> contiguous float32 array of shape (1, 3, H, W) in [0, 1]."""
    u = np.asarray(img.convert("RGB"), dtype=np.uint8)
    out = np.empty((1, 3, *u.shape[:2]), dtype=np.float32)
    np.divide(u.transpose(2, 0, 1), np.float32(255.0), out=out[0], dtype=np.float32)  # one pass, no temporaries
    return out


def from_array(arr: np.ndarray) -> Image.Image:
    """Float array (1, 3, H, W) or (3, H, W) in [0, 1] -> PIL RGB image (1 channel is repeated; NaN is 0)."""
    a = np.asarray(arr)
    if a.ndim == 4:
        if a.shape[0] != 1:
            raise ValueError(f"expected a single image, got a batch of {a.shape[0]}")
        a = a[0]
    if a.ndim != 3 or a.shape[0] not in (1, 3):
        raise ValueError(f"expected a (3, H, W) array, got shape {tuple(np.shape(arr))}")
    a = np.broadcast_to(a, (3, *a.shape[1:]))
    b = np.multiply(a, np.float32(255.0), dtype=np.float32)  # the one float copy; the rest in place
    np.nan_to_num(b, copy=False, nan=0.0)
    np.clip(b, 0.0, 255.0, out=b)
    np.rint(b, out=b)
    return Image.fromarray(np.ascontiguousarray(b.transpose(1, 2, 0), dtype=np.uint8), mode="RGB")


def to_tensor(img: Image.Image, device: torch.device | str | None = None) -> torch.Tensor:
    """PIL RGB image -> float tensor of shape (1, 3, H, W) in [0, 1]."""
    import torch

    return torch.from_numpy(to_array(img)).to(device or "cpu")


def to_pil(tensor: torch.Tensor) -> Image.Image:
    """Float tensor (1, 3, H, W) or (3, H, W) in [0, 1] -> PIL RGB image (1 channel is repeated)."""
    return from_array(tensor.detach().float().cpu().numpy())


def attach_alpha(img: Image.Image, alpha: Image.Image | None) -> Image.Image:
    """Re-attach an alpha channel (resized to ``img``) to an RGB result."""
    if alpha is None:
        return img
    if alpha.size != img.size:
        alpha = alpha.resize(img.size, Image.Resampling.BILINEAR)
    out = img.convert("RGBA")
    out.putalpha(alpha)
    return out


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file in the same folder and a rename.

    Either the complete new file is in place afterwards, or (on any error) ``path`` is
    untouched and no temporary file is left behind.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp creates 0600; give the file normal permissions
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def _for_format(img: Image.Image, fmt: str) -> Image.Image:
    """Convert ``img`` to a mode ``fmt`` can store; JPEG has no alpha, so it is flattened onto white."""
    has_alpha = img.mode in _ALPHA_MODES or (img.mode in ("P", "L", "RGB") and "transparency" in img.info)
    if fmt == "JPEG":
        if has_alpha:
            rgba = img.convert("RGBA")
            flat = Image.new("RGB", img.size, (255, 255, 255))
            flat.paste(rgba, mask=rgba.getchannel("A"))
            return flat
        return img if img.mode in ("RGB", "L") else _split_modes(img).rgb
    if fmt == "PNG" and img.mode in ("1", "L", "LA", "P", "RGB", "RGBA", "I;16"):
        return img
    if fmt == "WEBP" and img.mode in ("RGB", "RGBA"):
        return img
    pic = _split_modes(img)
    return attach_alpha(pic.rgb, pic.alpha)


def save_image(img: Image.Image, path: str | os.PathLike, quality: int = 95) -> Path:
    """Save ``img`` atomically; the format follows the extension (.png, .jpg/.jpeg, .webp).

    JPEG cannot store alpha, so an image with alpha saved as JPEG is flattened onto white.
    Missing parent folders are created. Errors raise an :class:`ImageError` naming the file;
    a failed save leaves neither a partial file nor a temporary file.
    """
    path = Path(path)
    fmt = SAVE_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ImageError(f"cannot write '{path}': unsupported extension '{path.suffix}' "
                         f"(use one of {', '.join(sorted(SAVE_FORMATS))})")
    if path.is_dir():
        raise ImageError(f"cannot write '{path}': it is a directory")
    buf = io.BytesIO()
    kwargs = {"quality": quality} if fmt in ("JPEG", "WEBP") else {}
    try:
        _for_format(img, fmt).save(buf, format=fmt, **kwargs)
    except Exception as exc:  # the encoder refused this image
        raise ImageError(f"cannot write '{path}': {fmt} encoding failed ({type(exc).__name__}: {exc})") from None
    try:
        atomic_write_bytes(path, buf.getvalue())
    except (FileExistsError, NotADirectoryError):
        raise ImageError(f"cannot write '{path}': a parent of it is a file, not a folder") from None
    except OSError as exc:
        raise ImageError(f"cannot write '{path}': {(exc.strerror or str(exc)).lower()}") from None
    return path


def find_images(folder: str | os.PathLike) -> list[Path]:
    """All image files under ``folder`` (recursive, by extension), sorted."""
    root = Path(folder)
    if not root.is_dir():
        raise ImageError(f"'{folder}' is not a folder")
    return sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())
