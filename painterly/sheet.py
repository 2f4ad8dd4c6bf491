"""Contact sheets: a labelled grid of images (photos x styles), for docs and `painterly styles --sheet`."""

from __future__ import annotations

from collections.abc import Sequence

from PIL import Image, ImageDraw, ImageFont


def _fit(img: Image.Image, cell: tuple[int, int]) -> Image.Image:
    """Scale ``img`` to fit a ``cell`` (width, height) box, centred on white."""
    img = img.convert("RGB")
    scale = min(cell[0] / img.width, cell[1] / img.height)
    img = img.resize((max(1, round(img.width * scale)), max(1, round(img.height * scale))), Image.Resampling.LANCZOS)
    canvas = Image.new("RGB", cell, "white")
    canvas.paste(img, ((cell[0] - img.width) // 2, (cell[1] - img.height) // 2))
    return canvas


def contact_sheet(
    grid: Sequence[Sequence[Image.Image | None]],
    row_labels: Sequence[str] | None = None,
    col_labels: Sequence[str] | None = None,
    header: Sequence[Image.Image] | None = None,
    row_images: Sequence[Image.Image] | None = None,
    cell: tuple[int, int] = (288, 192),
    pad: int = 6,
) -> Image.Image:
    """Lay out ``grid[r][c]`` in cells of ``cell`` = (width, height) px.

    ``header`` images (e.g. the paintings) go above the columns and ``row_images`` (e.g. the
    photos) left of the rows; labels are printed under the header images and photos.
    """
    rows, cols = len(grid), max(len(r) for r in grid)
    font = ImageFont.load_default()
    label_h = 16 if (row_labels or col_labels) else 0
    cw, ch = cell
    x0 = (cw + pad) if row_images else 0
    y0 = (ch + label_h + pad) if header else label_h
    width = x0 + cols * (cw + pad) + pad
    height = y0 + rows * (ch + pad) + pad
    sheet = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(sheet)
    for c in range(cols):
        x = x0 + pad + c * (cw + pad)
        if header:
            sheet.paste(_fit(header[c], cell), (x, pad))
        if col_labels:
            draw.text((x + 2, pad + ch + 2 if header else 2), col_labels[c][:40], fill="black", font=font)
    for r in range(rows):
        y = y0 + pad + r * (ch + pad)
        if row_images:
            sheet.paste(_fit(row_images[r], cell), (pad, y))
            if row_labels:
                draw.text((pad + 2, y + 2), row_labels[r][:40], fill="white", font=font, stroke_width=1,
                          stroke_fill="black")
        for c, img in enumerate(grid[r]):
            if img is not None:
                sheet.paste(_fit(img, cell), (x0 + pad + c * (cw + pad), y))
    return sheet
