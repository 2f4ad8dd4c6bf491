"""The fixed held-out split of the painting corpus (../shared/data/paintings) for arbitrary-style training.

About 10% of the corpus is held out, drawn across periods (the year in the manifest's title, bucketed by
era; paintings without a year form their own bucket) in a fixed order (SHA-1 of the file name). Copies of
one painting (the corpus gathers test images of many repositories) are grouped by a perceptual hash and
land on one side of the split together; a group that looks like one of the bundled paintings is never held
out (those are trained on). Writes docs/data/corpus_split.tsv (file, group, era, split).

    python scripts/corpus_split.py --corpus ../shared/data/paintings --bundled ../shared/data/styles
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import re
from pathlib import Path

import numpy as np
from PIL import Image

ERAS = ((0, 1700, "before-1700"), (1700, 1850, "1700-1849"), (1850, 1900, "1850-1899"),
        (1900, 1950, "1900-1949"), (1950, 3000, "1950-"))
HASH_DISTANCE = 10  # of 64 bits (8x8 DCT hash): at or below, two images are copies of one painting


def dct_hash(path: Path) -> np.ndarray:
    """64-bit perceptual hash: signs of the low 8x8 DCT coefficients of a 32x32 grey thumbnail."""
    img = np.asarray(Image.open(path).convert("L").resize((32, 32), Image.Resampling.LANCZOS), np.float64)
    n = np.arange(32)
    basis = np.cos(np.pi * (2 * n[None, :] + 1) * n[:, None] / 64)  # DCT-II rows
    coef = (basis @ img @ basis.T)[:8, :8].ravel()
    return coef[1:] > np.median(coef[1:])


def era(title: str) -> str:
    years = [int(y) for y in re.findall(r"\b(1[2-9]\d\d|20[0-2]\d)\b", title)]
    if not years:
        return "unknown"
    return next(name for lo, hi, name in ERAS if lo <= years[0] < hi)


def groups(hashes: list[np.ndarray]) -> list[int]:
    """Union-find over pairs within HASH_DISTANCE: a group id per image."""
    parent = list(range(len(hashes)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    h = np.stack(hashes)
    for i in range(len(h)):
        close = np.nonzero((h[i + 1:] != h[i]).sum(1) <= HASH_DISTANCE)[0] + i + 1
        for j in close:
            parent[find(int(j))] = find(i)
    return [find(i) for i in range(len(h))]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--corpus", default="../shared/data/paintings")
    p.add_argument("--bundled", default="../shared/data/styles")
    p.add_argument("--fraction", type=float, default=0.10)
    p.add_argument("--out", default="docs/data/corpus_split.tsv")
    args = p.parse_args()
    corpus = Path(args.corpus)
    with open(corpus / "MANIFEST.tsv", newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    bundled = sorted(Path(args.bundled).glob("*.jpg"))
    paths = [corpus / r["file"] for r in rows] + bundled
    gid = groups([dct_hash(q) for q in paths])
    bundled_groups = set(gid[len(rows):])
    by_group: dict[int, list[int]] = {}
    for i in range(len(rows)):
        by_group.setdefault(gid[i], []).append(i)
    # one era per group (its first dated member), groups ordered by the SHA-1 of their first file
    buckets: dict[str, list[int]] = {}
    for g, members in by_group.items():
        if g in bundled_groups:
            continue
        eras = [era(rows[i]["title_artist"]) for i in members]
        buckets.setdefault(next((e for e in eras if e != "unknown"), "unknown"), []).append(g)
    held: set[int] = set()
    for _era, gs in sorted(buckets.items()):
        gs.sort(key=lambda g: hashlib.sha1(rows[by_group[g][0]]["file"].encode()).hexdigest())
        size = sum(len(by_group[g]) for g in gs)
        taken = 0
        for g in gs:
            if taken >= round(args.fraction * size):
                break
            held.add(g)
            taken += len(by_group[g])
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w", newline="") as f:
        w = csv.writer(f, delimiter="\t", lineterminator="\n")
        w.writerow(["file", "group", "era", "split"])
        for i, r in enumerate(rows):
            split = "held-out" if gid[i] in held else ("bundled-copy" if gid[i] in bundled_groups else "train")
            w.writerow([r["file"], gid[i], era(r["title_artist"]), split])
    counts = {s: sum(1 for i in range(len(rows)) if (gid[i] in held) == (s == "held-out")) for s in ("held-out",)}
    print(f"{len(rows)} paintings in {len(by_group)} groups; held out {counts['held-out']}; "
          f"{sum(1 for i in range(len(rows)) if gid[i] in bundled_groups)} copies of bundled paintings -> {out}")


if __name__ == "__main__":
    main()
