"""Image I/O: every mode, EXIF orientation, bad files, pixel limits, atomic saves.

All images are tiny and generated in tmp_path, so the whole module runs in about a second.
"""

from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from painterly import imageio
from painterly.errors import ImageError, PainterlyError
from painterly.imageio import (
    atomic_write_bytes,
    attach_alpha,
    find_images,
    load_image,
    read_image,
    resize_longest,
    save_image,
    to_pil,
    to_tensor,
)

RED, GREEN, BLUE, YELLOW = (255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0)


def png_bytes(width: int, height: int, bit_depth: int, color_type: int, rows: bytes | None = None) -> bytes:
    """A minimal PNG written by hand (Pillow cannot write 16-bit RGB or lying headers)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0)
    idat = zlib.compress(rows if rows is not None else b"\x00" * 16)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def quadrants(w: int = 16, h: int = 8) -> Image.Image:
    """An asymmetric test card: red, green / blue, yellow quadrants."""
    img = Image.new("RGB", (w, h))
    img.paste(RED, (0, 0, w // 2, h // 2))
    img.paste(GREEN, (w // 2, 0, w, h // 2))
    img.paste(BLUE, (0, h // 2, w // 2, h))
    img.paste(YELLOW, (w // 2, h // 2, w, h))
    return img


def noise(w: int = 32, h: int = 32, seed: int = 0) -> Image.Image:
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8))


def assert_close(a: Image.Image, b: Image.Image, tol: int = 0) -> None:
    assert a.size == b.size
    diff = np.abs(np.asarray(a, dtype=np.int16) - np.asarray(b, dtype=np.int16))
    assert diff.max() <= tol, f"max pixel difference {diff.max()} > {tol}"


def assert_quadrants(img: Image.Image, tol: int = 40) -> None:
    """For lossy files: the centre of each quadrant of :func:`quadrants` has the right colour."""
    assert img.size == (16, 8)
    for xy, colour in (((4, 2), RED), ((12, 2), GREEN), ((4, 6), BLUE), ((12, 6), YELLOW)):
        got = img.convert("RGB").getpixel(xy)
        assert np.abs(np.subtract(got, colour)).max() < tol, (xy, got, colour)


def assert_error(path: Path | str, *fragments: str, **kwargs) -> ImageError:
    with pytest.raises(ImageError) as info:
        read_image(path, **kwargs)
    msg = str(info.value)
    assert os.fspath(path) in msg, msg
    assert "\n" not in msg
    for fragment in fragments:
        assert fragment in msg.lower(), msg
    return info.value


# --------------------------------------------------------------------------- EXIF orientation

# Orientation tag -> the transpose that turns the upright picture into the stored pixels
# (the inverse of what a viewer applies; EXIF spec: 6 = "rotate 90 CW to display").
STORED = {
    1: None,
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_90,  # stored rotated 90 CCW, displayed rotated 90 CW
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_270,
}


@pytest.mark.parametrize("orientation", sorted(STORED))
@pytest.mark.parametrize("ext", [".png", ".jpg"])
def test_exif_orientation(tmp_path, orientation, ext):
    upright = quadrants()
    op = STORED[orientation]
    stored = upright.transpose(op) if op is not None else upright.copy()
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = tmp_path / f"o{orientation}{ext}"
    stored.save(path, exif=exif, **({"quality": 100, "subsampling": 0} if ext == ".jpg" else {}))
    pic = read_image(path)
    assert pic.rgb.mode == "RGB" and pic.alpha is None
    if ext == ".png":
        assert_close(pic.rgb, upright)
    else:
        assert_quadrants(pic.rgb)


def test_exif_orientation_of_pil_input():
    stored = quadrants().transpose(Image.Transpose.ROTATE_90)
    stored.getexif()[0x0112] = 6
    assert_close(read_image(stored).rgb, quadrants())


# --------------------------------------------------------------------------- modes


def test_rgb_png_roundtrip_exact(tmp_path):
    img = noise()
    img.save(tmp_path / "a.png")
    pic = read_image(tmp_path / "a.png")
    assert pic.name == str(tmp_path / "a.png")
    assert pic.size == (32, 32)
    assert_close(pic.rgb, img)


def test_grayscale_l(tmp_path):
    Image.new("L", (8, 4), 77).save(tmp_path / "g.png")
    pic = read_image(tmp_path / "g.png")
    assert pic.rgb.mode == "RGB" and pic.alpha is None
    assert pic.rgb.getpixel((0, 0)) == (77, 77, 77)


def test_grayscale_la_keeps_alpha(tmp_path):
    Image.new("LA", (8, 4), (90, 128)).save(tmp_path / "la.png")
    pic = read_image(tmp_path / "la.png")
    assert pic.rgb.getpixel((3, 2)) == (90, 90, 90)
    assert pic.alpha is not None and pic.alpha.mode == "L" and pic.alpha.getpixel((3, 2)) == 128


def test_rgba_alpha_kept(tmp_path):
    img = Image.new("RGBA", (8, 4), (10, 20, 30, 255))
    img.putpixel((1, 1), (10, 20, 30, 0))
    img.save(tmp_path / "rgba.png")
    pic = read_image(tmp_path / "rgba.png")
    assert pic.rgb.mode == "RGB" and pic.rgb.getpixel((0, 0)) == (10, 20, 30)
    assert pic.alpha.getpixel((1, 1)) == 0 and pic.alpha.getpixel((0, 0)) == 255


def test_palette_without_transparency(tmp_path):
    quadrants().convert("P", palette=Image.Palette.ADAPTIVE, colors=4).save(tmp_path / "p.png")
    pic = read_image(tmp_path / "p.png")
    assert pic.alpha is None
    assert_close(pic.rgb, quadrants())


@pytest.mark.parametrize("ext", [".png", ".gif"])
def test_palette_with_transparency(tmp_path, ext):
    img = Image.new("P", (8, 4), 0)
    img.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    img.putpixel((2, 1), 1)
    img.save(tmp_path / f"pt{ext}", transparency=1)
    pic = read_image(tmp_path / f"pt{ext}")
    assert pic.rgb.getpixel((0, 0)) == RED
    assert pic.alpha is not None
    assert pic.alpha.getpixel((2, 1)) == 0 and pic.alpha.getpixel((0, 0)) == 255


def test_colour_key_transparency_becomes_alpha(tmp_path):
    img = Image.new("RGB", (4, 4), (1, 2, 3))
    img.putpixel((0, 0), (9, 9, 9))
    img.save(tmp_path / "key.png", transparency=(1, 2, 3))
    pic = read_image(tmp_path / "key.png")
    assert pic.alpha.getpixel((1, 1)) == 0 and pic.alpha.getpixel((0, 0)) == 255


@pytest.mark.parametrize("ext", [".jpg", ".tif"])
def test_cmyk(tmp_path, ext):
    img = Image.new("CMYK", (16, 16), (0, 255, 255, 0))  # pure red
    img.save(tmp_path / f"c{ext}", **({"quality": 100} if ext == ".jpg" else {}))
    with Image.open(tmp_path / f"c{ext}") as raw:
        assert raw.mode == "CMYK"
    pic = read_image(tmp_path / f"c{ext}")
    assert pic.rgb.mode == "RGB"
    r, g, b = pic.rgb.getpixel((8, 8))
    assert r > 240 and g < 15 and b < 15


def test_16bit_grayscale_png(tmp_path):
    arr = np.array([[0, 65535], [32768, 257 * 100]], dtype=np.uint16)
    Image.fromarray(arr).save(tmp_path / "g16.png")
    with Image.open(tmp_path / "g16.png") as raw:
        assert raw.mode.startswith("I")  # really 16-bit on disk
    pic = read_image(tmp_path / "g16.png")
    px = np.asarray(pic.rgb)[..., 0]
    np.testing.assert_array_equal(px, [[0, 255], [128, 100]])


def test_dark_16bit_grayscale_is_not_brightened(tmp_path):
    arr = np.full((2, 2), 200, dtype=np.uint16)  # 200/65535: nearly black
    Image.fromarray(arr).save(tmp_path / "dark16.png")
    assert read_image(tmp_path / "dark16.png").rgb.getpixel((0, 0)) == (1, 1, 1)


def test_16bit_rgb_png(tmp_path):
    w, h = 3, 2
    arr = np.zeros((h, w, 3), dtype=">u2")
    arr[..., 0], arr[..., 1], arr[..., 2] = 65535, 32896, 0  # 255, 128, 0 in 8 bits
    rows = b"".join(b"\x00" + arr[y].tobytes() for y in range(h))
    (tmp_path / "rgb16.png").write_bytes(png_bytes(w, h, 16, 2, rows))
    pic = read_image(tmp_path / "rgb16.png")
    assert pic.size == (3, 2) and pic.rgb.getpixel((2, 1)) == (255, 128, 0)


def test_16bit_rgba_png(tmp_path):
    w, h = 2, 2
    arr = np.zeros((h, w, 4), dtype=">u2")
    arr[..., 2], arr[..., 3] = 65535, 32896
    rows = b"".join(b"\x00" + arr[y].tobytes() for y in range(h))
    (tmp_path / "rgba16.png").write_bytes(png_bytes(w, h, 16, 6, rows))
    pic = read_image(tmp_path / "rgba16.png")
    assert pic.rgb.getpixel((0, 0)) == BLUE and pic.alpha.getpixel((0, 0)) == 128


def test_float_tiff_unit_range(tmp_path):
    arr = np.array([[0.0, 0.5], [1.0, 0.25]], dtype=np.float32)
    Image.fromarray(arr).save(tmp_path / "f.tif")
    with Image.open(tmp_path / "f.tif") as raw:
        assert raw.mode == "F"
    px = np.asarray(read_image(tmp_path / "f.tif").rgb)[..., 0]
    np.testing.assert_array_equal(px, [[0, 128], [255, 64]])


def test_float_tiff_arbitrary_range_is_stretched(tmp_path):
    arr = np.array([[-10.0, 0.0], [10.0, float("nan")]], dtype=np.float32)
    Image.fromarray(arr).save(tmp_path / "hdr.tif")
    px = np.asarray(read_image(tmp_path / "hdr.tif").rgb)[..., 0]
    np.testing.assert_array_equal(px, [[0, 128], [255, 0]])


def test_bilevel(tmp_path):
    img = Image.new("1", (4, 4), 0)
    img.putpixel((1, 1), 1)
    img.save(tmp_path / "b.png")
    pic = read_image(tmp_path / "b.png")
    assert pic.rgb.getpixel((1, 1)) == (255, 255, 255) and pic.rgb.getpixel((0, 0)) == (0, 0, 0)


@pytest.mark.parametrize("mode", ["La", "RGBa", "PA", "YCbCr", "HSV", "I", "I;16B"])
def test_every_in_memory_mode_becomes_rgb(mode):
    pic = read_image(Image.new(mode, (4, 3)))
    assert pic.rgb.mode == "RGB" and pic.size == (4, 3)
    assert (pic.alpha is not None) == (mode in ("La", "RGBa", "PA"))


# --------------------------------------------------------------------------- in-memory sources


def test_numpy_sources():
    u8 = np.zeros((4, 6, 3), dtype=np.uint8)
    u8[..., 1] = 200
    assert read_image(u8).rgb.getpixel((0, 0)) == (0, 200, 0)
    f = np.full((4, 6, 3), 0.5, dtype=np.float32)
    assert read_image(f).rgb.getpixel((0, 0)) == (128, 128, 128)
    u16 = np.full((4, 6), 65535, dtype=np.uint16)
    assert read_image(u16).rgb.getpixel((0, 0)) == (255, 255, 255)
    rgba = np.zeros((4, 6, 4), dtype=np.uint8)
    rgba[..., 3] = 7
    assert read_image(rgba).alpha.getpixel((0, 0)) == 7
    assert read_image(np.zeros((4, 6, 1), dtype=np.uint8)).size == (6, 4)


def test_bad_array_and_tensor_shapes():
    with pytest.raises(ImageError, match="shape"):
        read_image(np.zeros((4, 6, 5), dtype=np.uint8))
    with pytest.raises(ImageError, match="shape"):
        read_image(torch.zeros(2, 3, 4, 4))
    with pytest.raises(ImageError, match="expected a path"):
        read_image(12345)  # type: ignore[arg-type]


def test_tensor_source_matches_to_tensor():
    img = noise(8, 6)
    t = to_tensor(img)
    assert t.shape == (1, 3, 6, 8) and t.dtype == torch.float32
    assert 0.0 <= t.min() and t.max() <= 1.0
    assert_close(read_image(t).rgb, img)
    assert_close(read_image(t[0]).rgb, img)
    assert_close(to_pil(t), img)


def test_to_pil_clamps_and_rejects_batches():
    t = torch.tensor([-1.0, 0.5, 2.0, float("nan")]).view(1, 1, 2, 2)
    px = np.asarray(to_pil(t))[..., 0]
    np.testing.assert_array_equal(px, [[0, 128], [255, 0]])
    with pytest.raises(ValueError):
        to_pil(torch.zeros(2, 3, 4, 4))


# --------------------------------------------------------------------------- bad files


def test_missing_file(tmp_path):
    assert_error(tmp_path / "nope.jpg", "no such file")


def test_directory(tmp_path):
    (tmp_path / "dir.png").mkdir()
    assert_error(tmp_path / "dir.png", "directory")


def test_empty_file(tmp_path):
    (tmp_path / "empty.png").write_bytes(b"")
    assert_error(tmp_path / "empty.png", "empty")


def test_non_image_file(tmp_path):
    (tmp_path / "notes.jpg").write_text("these are not the pixels you are looking for\n" * 20)
    assert_error(tmp_path / "notes.jpg", "not an image")


@pytest.mark.parametrize("ext", [".jpg", ".png"])
def test_truncated_file(tmp_path, ext):
    noise(64, 64).save(tmp_path / f"full{ext}")
    data = (tmp_path / f"full{ext}").read_bytes()
    (tmp_path / f"cut{ext}").write_bytes(data[: len(data) // 2])
    assert_error(tmp_path / f"cut{ext}", "truncated")


def test_truncated_even_if_pillow_was_told_to_tolerate_it(tmp_path, monkeypatch):
    from PIL import ImageFile

    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    noise(64, 64).save(tmp_path / "full.jpg")
    data = (tmp_path / "full.jpg").read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 2])
    assert_error(tmp_path / "cut.jpg", "truncated")
    assert ImageFile.LOAD_TRUNCATED_IMAGES is True  # the global is restored


def test_corrupt_png_data(tmp_path):
    (tmp_path / "bad.png").write_bytes(png_bytes(4, 4, 8, 2, rows=b"\x07" * 5))  # wrong length, bad filter
    assert_error(tmp_path / "bad.png")


def test_broken_compressed_stream(tmp_path):
    good = png_bytes(4, 4, 8, 2)
    start = good.index(b"IDAT") + 4
    (tmp_path / "z.png").write_bytes(good[:start] + b"garbage!" * 2 + good[start + 16 :])
    assert_error(tmp_path / "z.png")


def test_decompression_bomb_header(tmp_path):
    (tmp_path / "bomb.png").write_bytes(png_bytes(100_000, 100_000, 8, 2))
    assert (tmp_path / "bomb.png").stat().st_size < 200
    assert_error(tmp_path / "bomb.png", "100000x100000", "limit")


def test_configurable_pixel_limit(tmp_path):
    noise(40, 30).save(tmp_path / "a.png")
    err = assert_error(tmp_path / "a.png", "40x30", "1,000", max_pixels=1000)
    assert isinstance(err, PainterlyError)
    assert read_image(tmp_path / "a.png", max_pixels=1200).size == (40, 30)
    assert read_image(tmp_path / "a.png", max_pixels=None).size == (40, 30)
    with pytest.raises(ImageError, match="limit"):
        read_image(noise(40, 30), max_pixels=1000)
    with pytest.raises(ImageError, match="limit"):
        load_image(tmp_path / "a.png", size=8, max_pixels=1000)


def test_pillow_globals_are_restored(tmp_path):
    noise(8, 8).save(tmp_path / "a.png")
    before = Image.MAX_IMAGE_PIXELS
    read_image(tmp_path / "a.png")
    with pytest.raises(ImageError):
        read_image(tmp_path / "a.png", max_pixels=10)
    assert Image.MAX_IMAGE_PIXELS == before


def test_unreadable_file(tmp_path):
    if os.geteuid() == 0:
        pytest.skip("root can read anything")
    noise(8, 8).save(tmp_path / "secret.png")
    (tmp_path / "secret.png").chmod(0)
    assert_error(tmp_path / "secret.png", "permission denied")


# --------------------------------------------------------------------------- resize / alpha


def test_resize_longest():
    assert resize_longest(Image.new("RGB", (768, 432)), 512).size == (512, 288)
    assert resize_longest(Image.new("RGB", (432, 768)), 512).size == (288, 512)
    assert resize_longest(Image.new("RGB", (10, 20)), 40).size == (20, 40)
    assert resize_longest(Image.new("RGB", (1000, 1)), 10).size == (10, 1)
    img = Image.new("RGB", (64, 32))
    assert resize_longest(img, 64) is img
    with pytest.raises(ValueError):
        resize_longest(img, 0)


def test_load_image_resizes(tmp_path):
    noise(40, 20).save(tmp_path / "a.png")
    img = load_image(tmp_path / "a.png", size=16)
    assert img.mode == "RGB" and img.size == (16, 8)


def test_attach_alpha_resizes():
    alpha = Image.new("L", (8, 8), 0)
    alpha.paste(255, (0, 0, 4, 8))
    out = attach_alpha(Image.new("RGB", (16, 16), RED), alpha)
    assert out.mode == "RGBA" and out.getpixel((0, 0)) == (*RED, 255) and out.getpixel((15, 0))[3] == 0
    img = Image.new("RGB", (4, 4))
    assert attach_alpha(img, None) is img


# --------------------------------------------------------------------------- saving


@pytest.mark.parametrize("ext,fmt", [(".png", "PNG"), (".jpg", "JPEG"), (".jpeg", "JPEG"), (".webp", "WEBP"),
                                     (".PNG", "PNG")])
def test_save_by_extension(tmp_path, ext, fmt):
    out = save_image(quadrants(), tmp_path / "sub" / f"out{ext}")
    assert out == tmp_path / "sub" / f"out{ext}"
    with Image.open(out) as img:
        assert img.format == fmt and img.size == (16, 8)
    if fmt == "PNG":
        assert_close(read_image(out).rgb, quadrants())
    else:
        assert_quadrants(read_image(out).rgb)


def test_save_png_keeps_alpha_jpeg_flattens_on_white(tmp_path):
    img = Image.new("RGBA", (4, 4), (255, 0, 0, 0))
    save_image(img, tmp_path / "a.png")
    assert read_image(tmp_path / "a.png").alpha.getpixel((0, 0)) == 0
    save_image(img, tmp_path / "a.jpg")
    r, g, b = read_image(tmp_path / "a.jpg").rgb.getpixel((1, 1))
    assert min(r, g, b) > 245  # transparent -> white
    save_image(Image.new("LA", (4, 4), (0, 0)), tmp_path / "la.jpg")
    save_image(Image.new("RGBA", (4, 4), (0, 0, 255, 100)), tmp_path / "a.webp")
    assert read_image(tmp_path / "a.webp").alpha is not None


@pytest.mark.parametrize("mode", ["P", "CMYK", "I;16", "F", "1", "LA", "YCbCr"])
@pytest.mark.parametrize("ext", [".png", ".jpg", ".webp"])
def test_save_any_mode(tmp_path, mode, ext):
    save_image(Image.new(mode, (4, 4)), tmp_path / f"m{ext}")
    assert read_image(tmp_path / f"m{ext}").size == (4, 4)


def test_save_unsupported_extension(tmp_path):
    for name in ("out.gif", "out.tiff", "out"):
        with pytest.raises(ImageError, match="unsupported extension") as info:
            save_image(quadrants(), tmp_path / name)
        assert name in str(info.value)
    assert list(tmp_path.iterdir()) == []


def test_save_into_a_file_parent(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(ImageError, match="not a folder") as info:
        save_image(quadrants(), tmp_path / "file" / "out.png")
    assert str(tmp_path / "file" / "out.png") in str(info.value)


def test_save_onto_a_directory(tmp_path):
    (tmp_path / "out.png").mkdir()
    with pytest.raises(ImageError, match="directory"):
        save_image(quadrants(), tmp_path / "out.png")


def test_save_into_unwritable_folder(tmp_path):
    if os.geteuid() == 0:
        pytest.skip("root can write anywhere")
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        with pytest.raises(ImageError, match="permission denied"):
            save_image(quadrants(), ro / "out.png")
    finally:
        ro.chmod(0o700)


def test_save_write_failure_leaves_nothing(tmp_path, monkeypatch):
    """A failure half-way through the write leaves no partial file, no temp file, and the old file intact."""
    target = tmp_path / "out.png"
    target.write_bytes(b"old contents")

    def broken_fsync(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(imageio.os, "fsync", broken_fsync)
    with pytest.raises(ImageError, match="no space left") as info:
        save_image(noise(), target)
    assert str(target) in str(info.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.png"]
    assert target.read_bytes() == b"old contents"


def test_save_rename_failure_leaves_nothing(tmp_path, monkeypatch):
    def broken_replace(src, dst):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(imageio.os, "replace", broken_replace)
    with pytest.raises(ImageError, match="permission denied"):
        save_image(noise(), tmp_path / "new.jpg")
    assert list(tmp_path.iterdir()) == []


def test_save_encode_failure_leaves_nothing(tmp_path, monkeypatch):
    def broken_save(self, fp, format=None, **params):
        fp.write(b"partial")
        raise OSError("encoder error -2")

    monkeypatch.setattr(Image.Image, "save", broken_save)
    with pytest.raises(ImageError, match="encoding failed") as info:
        save_image(noise(), tmp_path / "x.webp")
    assert "x.webp" in str(info.value)
    assert list(tmp_path.iterdir()) == []


def test_atomic_write_bytes_interrupted(tmp_path, monkeypatch):
    class Interrupted(BaseException):
        pass

    def interrupt(fd):
        raise Interrupted

    monkeypatch.setattr(imageio.os, "fsync", interrupt)
    with pytest.raises(Interrupted):
        atomic_write_bytes(tmp_path / "a.bin", b"data")
    assert list(tmp_path.iterdir()) == []


def test_atomic_write_bytes_replaces(tmp_path):
    atomic_write_bytes(tmp_path / "deep" / "a.bin", b"one")
    atomic_write_bytes(tmp_path / "deep" / "a.bin", b"two")
    assert (tmp_path / "deep" / "a.bin").read_bytes() == b"two"
    assert [p.name for p in (tmp_path / "deep").iterdir()] == ["a.bin"]


# --------------------------------------------------------------------------- folders


def test_find_images(tmp_path):
    (tmp_path / "a" / "b").mkdir(parents=True)
    for name in ("z.jpg", "a/y.PNG", "a/b/x.webp", "a/notes.txt", "a/b/w.tiff"):
        (tmp_path / name).write_bytes(b"")
    (tmp_path / "dir.jpg").mkdir()
    found = [p.relative_to(tmp_path).as_posix() for p in find_images(tmp_path)]
    assert found == ["a/b/w.tiff", "a/b/x.webp", "a/y.PNG", "z.jpg"]
    with pytest.raises(ImageError, match="not a folder"):
        find_images(tmp_path / "z.jpg")


def test_ensure_min_side_upscales_tiny_and_thin_images_only():
    assert imageio.ensure_min_side(Image.new("RGB", (1, 1))).size == (16, 16)  # default: MIN_SIDE
    assert imageio.ensure_min_side(Image.new("RGB", (3, 200)), 32).size == (32, 2133)
    big = Image.new("RGB", (40, 33))
    assert imageio.ensure_min_side(big, 32) is big
    assert imageio.load_image(big, size=20, min_side=32).size == (40, 32)
    assert imageio.load_image(big, size=20).size == (20, 16)


def test_ensure_min_side_refuses_needles():
    with pytest.raises(ImageError, match="too thin"):
        imageio.ensure_min_side(Image.new("RGB", (1, 5000)), 32, max_pixels=1_000_000)
