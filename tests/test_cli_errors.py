"""Every bad input file gives one clear line through the CLI (exit 2, no traceback, no output file)."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from painterly.cli import main


def _noise(path: Path, size: int = 48) -> Path:
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (size, size, 3), dtype=np.uint8)).save(path)
    return path


def _bomb_png(path: Path) -> Path:
    """A 100 000 x 100 000 PNG header with almost no data (a decompression bomb)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 16))
                     + chunk(b"IEND", b""))
    return path


def make_bad(case: str, folder: Path) -> Path:
    path = folder / {"missing": "missing.jpg", "directory": "folder.jpg", "empty": "empty.png",
                     "not an image": "text.jpg", "truncated jpeg": "cut.jpg", "truncated png": "cut.png",
                     "bomb": "bomb.png"}[case]
    if case == "directory":
        path.mkdir()
    elif case == "empty":
        path.write_bytes(b"")
    elif case == "not an image":
        path.write_text("hello\n" * 50)
    elif case.startswith("truncated"):
        data = _noise(path, 64).read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif case == "bomb":
        _bomb_png(path)
    return path


#: bad file -> a word its error message must contain
BAD_FILES = {"missing": "no such file", "directory": "directory", "empty": "empty", "not an image": "not an image",
             "truncated jpeg": "truncated", "truncated png": "truncated", "bomb": "limit"}


def _run(capsys, argv: list[str]) -> tuple[int, str]:
    rc = main(argv)
    err = capsys.readouterr().err.strip()
    return rc, err


@pytest.mark.parametrize("role", ["content", "style"])
@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_bad_input_file(tmp_path, capsys, case, role):
    fragment = BAD_FILES[case]
    bad = make_bad(case, tmp_path)
    good = _noise(tmp_path / "good.png")
    out = tmp_path / "out.png"
    content, style = (bad, good) if role == "content" else (good, bad)
    rc, err = _run(capsys, ["optimize", str(content), "--style", str(style), "-o", str(out), "--size", "32",
                            "--steps", "1", "--quiet"])
    assert rc == 2
    assert err.startswith("painterly: error:") and "\n" not in err and "Traceback" not in err, err
    assert str(bad) in err and fragment in err.lower(), err
    assert not out.exists()


def test_over_max_pixels(tmp_path, capsys):
    photo = _noise(tmp_path / "photo.png", 48)
    rc, err = _run(capsys, ["optimize", str(photo), "--style", "starry-night", "-o", str(tmp_path / "o.png"),
                            "--max-pixels", "1000", "--quiet"])
    assert rc == 2 and "48x48" in err and str(photo) in err and "\n" not in err


def test_unsupported_output_extension(tmp_path, capsys):
    photo = _noise(tmp_path / "photo.png")
    rc, err = _run(capsys, ["optimize", str(photo), "--style", "starry-night", "-o", str(tmp_path / "o.bmp")])
    assert rc == 2 and "o.bmp" in err and "extension" in err and "\n" not in err


def test_unknown_bundled_painting(tmp_path, capsys):
    photo = _noise(tmp_path / "photo.png")
    rc, err = _run(capsys, ["optimize", str(photo), "--style", "starry-nite", "-o", str(tmp_path / "o.png")])
    assert rc == 2 and "starry-nite" in err and "starry-night" in err and "\n" not in err


def test_unwritable_output(tmp_path, capsys):
    """The output's parent is a file: the (tiny) optimization runs, then the save fails cleanly."""
    photo = _noise(tmp_path / "photo.png", 32)
    (tmp_path / "file").write_text("x")
    out = tmp_path / "file" / "o.png"
    rc, err = _run(capsys, ["optimize", str(photo), "--style", str(photo), "-o", str(out), "--size", "32",
                            "--steps", "1", "--quiet"])
    assert rc == 2 and str(out) in err and "not a folder" in err and "\n" not in err


def test_shipped_or_path_names_the_packaged_files():
    from pathlib import Path

    from painterly.cli.common import shipped_or_path
    from painterly.methods.stylize import DEFAULT_MODEL
    from painterly.models.adain import DECODER_FILE
    from painterly.models.meta import META_FILE

    for name in (DEFAULT_MODEL.name, DECODER_FILE, META_FILE):
        assert Path(shipped_or_path("shipped", name)).is_file()
    assert Path(shipped_or_path("shipped", DEFAULT_MODEL.name)) == DEFAULT_MODEL
    assert shipped_or_path("mine.safetensors", META_FILE) == "mine.safetensors"
    assert shipped_or_path(None, META_FILE) is None
