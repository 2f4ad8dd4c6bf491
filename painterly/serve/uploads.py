"""Uploaded images in, result images out, all in memory."""

from __future__ import annotations

import io
import warnings

from PIL import Image, ImageFile, UnidentifiedImageError

from ..errors import ImageError
from ..imageio import _for_format

#: Response formats: request name -> (Pillow format, media type, file extension).
FORMATS = {"jpeg": ("JPEG", "image/jpeg", "jpg"), "png": ("PNG", "image/png", "png"),
           "webp": ("WEBP", "image/webp", "webp")}


class UploadTooLarge(ImageError):
    """An upload whose image has more pixels than the server accepts (HTTP 413)."""


def decode_upload(data: bytes, field: str, max_pixels: int) -> Image.Image:
    """The image in ``data`` (the form field ``field``), decoded; its size is checked from the
    header before any pixels are decoded, so a decompression bomb costs nothing."""
    if not data:
        raise ImageError(f"'{field}' is empty: upload an image file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
            w, h = img.size
            if w * h > max_pixels:
                raise UploadTooLarge(f"'{field}' is {w}x{h} pixels, over the limit of {max_pixels:,} "
                                     "(decompression bomb?); resize it first")
            if ImageFile.LOAD_TRUNCATED_IMAGES:  # never decode a cut-off file as a half-grey picture
                raise ImageError("the server is misconfigured: truncated images are allowed")
            img.load()
    except ImageError:
        raise
    except Image.DecompressionBombError:
        raise UploadTooLarge(f"'{field}' has far too many pixels (decompression bomb?)") from None
    except UnidentifiedImageError:
        raise ImageError(f"'{field}' is not an image, or in a format the server cannot read "
                         "(use JPEG, PNG, WebP, GIF, BMP or TIFF)") from None
    except MemoryError:
        raise UploadTooLarge(f"'{field}' needs too much memory to decode") from None
    except Exception as exc:  # OSError (truncated), SyntaxError, ValueError ...: a corrupt file
        raise ImageError(f"'{field}' is a corrupt or truncated image ({type(exc).__name__})") from None
    return img


def encode(img: Image.Image, fmt: str, quality: int = 92) -> bytes:
    """``img`` as ``fmt`` ("jpeg", "png" or "webp"); JPEG flattens alpha onto white."""
    pil_format = FORMATS[fmt][0]
    buf = io.BytesIO()
    kwargs = {"quality": quality} if pil_format in ("JPEG", "WEBP") else {"compress_level": 3}
    _for_format(img, pil_format).save(buf, format=pil_format, **kwargs)
    return buf.getvalue()
