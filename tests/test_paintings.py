"""The bundled-paintings catalogue and the asset credits."""

from __future__ import annotations

from pathlib import Path

import pytest

import painterly
from painterly.errors import PainterlyError, StyleNotFoundError
from painterly.imageio import read_image
from painterly.paintings import bundled_painting, get_painting, list_paintings, painting_names

ASSETS = Path(painterly.__file__).parent / "assets"


def test_catalogue_matches_bundled_files():
    files = sorted(p.stem for p in (ASSETS / "styles").glob("*.jpg"))
    assert painting_names() == files
    assert len(files) == 10


@pytest.mark.parametrize("name", painting_names())
def test_every_painting_resolves_and_decodes(name):
    path = bundled_painting(name)
    assert path.is_file() and path.name == f"{name}.jpg"
    assert get_painting(name).path == path
    assert max(read_image(path).size) in (767, 768)  # bundled at 768 px longest side


def test_metadata():
    starry = get_painting("starry-night")
    assert (starry.title, starry.artist, starry.year) == ("The Starry Night", "Vincent van Gogh", "1889")
    assert all(p.license == "public domain" and p.title and p.artist and p.year for p in list_paintings())
    assert "Vincent van Gogh" in str(starry)


def test_lenient_names():
    assert bundled_painting("Starry_Night") == bundled_painting("starry-night")
    assert bundled_painting(" the scream ").name == "the-scream.jpg"


def test_unknown_painting():
    with pytest.raises(StyleNotFoundError) as info:
        bundled_painting("starry-nite")
    msg = str(info.value)
    assert "starry-nite" in msg and "did you mean 'starry-night'" in msg
    assert all(name in msg for name in painting_names())
    assert isinstance(info.value, PainterlyError) and isinstance(info.value, KeyError)
    with pytest.raises(StyleNotFoundError, match="bundled paintings are"):
        bundled_painting("nothing-like-it")


def test_credits_cover_every_bundled_image():
    credits = (ASSETS / "CREDITS.md").read_text(encoding="utf-8")
    for path in sorted(ASSETS.glob("*/*.jpg")):
        assert f"`{path.parent.name}/{path.name}`" in credits, path
    for p in list_paintings():
        assert p.artist in credits
    assert "CC0-1.0" in credits


def test_cli_lists_paintings(capsys):
    from painterly.cli import main

    assert main(["paintings"]) == 0
    out = capsys.readouterr().out
    assert "starry-night" in out and "Vincent van Gogh" in out and len(out.splitlines()) == 10
