"""Golden losses: each trainer's first steps at a fixed seed, recorded before the trainers moved onto
the shared loop (painterly.training.loop); a refactor must reproduce them exactly.

Regenerate only on purpose (a deliberate change of the training maths):
``PAINTERLY_REGEN_GOLDEN=1 python -m pytest tests/test_training_golden.py``.
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from painterly.models.transformer import TransformerConfig
from painterly.training.common import TrainOptions
from painterly.training.objectives.adain import AdaINTrainConfig, train_adain
from painterly.training.objectives.feedforward import FeedForwardConfig, train_feedforward
from painterly.training.objectives.meta import MetaTrainConfig, train_meta

GOLDEN = Path(__file__).resolve().parent / "data" / "training_golden.json"
STEPS = 3


pytestmark = pytest.mark.usefixtures("one_thread")


def _images(folder: Path, names: list[str], seed: int, size=(40, 48)) -> Path:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    for name in names:
        Image.fromarray(rng.integers(0, 255, (*size, 3), dtype=np.uint8)).save(folder / f"{name}.png")
    return folder


def _options(tmp_path: Path, **kw) -> TrainOptions:
    return TrainOptions(steps=STEPS, batch_size=2, size=32, seed=3, device="cpu", fp32=True, progress=False,
                        checkpoint_every=0, log_every=1, log_csv=str(tmp_path / "log.csv"), **kw)


def _record(tmp_path: Path, weights: dict[str, torch.Tensor]) -> dict:
    with open(tmp_path / "log.csv", newline="") as fh:
        rows = [{k: float(v) for k, v in r.items() if k not in ("time", "images_per_s")} for r in csv.DictReader(fh)]
    checksum = float(sum(v.double().abs().sum() for v in weights.values()))
    return {"rows": rows, "weights_abs_sum": checksum}


def run_feedforward(tmp_path: Path) -> dict:
    photos = _images(tmp_path / "photos", [f"p{i}" for i in range(4)], seed=1)
    styles = list(_images(tmp_path / "styles", ["a", "b"], seed=2).glob("*.png"))
    cfg = FeedForwardConfig(style_size=48, style_layers={"relu1_1": 1.0, "relu2_1": 1.0},
                            content_layers={"relu2_1": 1.0})
    tiny = TransformerConfig(channels=(8, 8, 8), num_residual=1, stem_kernel=3)
    summary = train_feedforward(sorted(styles), photos, tmp_path / "ff.safetensors", cfg,
                                _options(tmp_path, lr_schedule="cosine", warmup_steps=1),
                                encoder_weights=None, model_config=tiny)
    return _record(tmp_path, summary.net.state_dict())


def run_adain(tmp_path: Path) -> dict:
    photos = _images(tmp_path / "photos", ["p0", "p1", "p2"], seed=3)
    styles = _images(tmp_path / "styles", ["a", "b", "the-scream", "udnie"], seed=4, size=(44, 36))
    out = tmp_path / "adain.safetensors"
    train_adain(photos, styles, out, AdaINTrainConfig(width=0.125), _options(tmp_path, lr=1e-4), encoder_weights=None)
    from painterly.models.adain import load_decoder

    return _record(tmp_path, load_decoder(out).state_dict())


def run_meta(tmp_path: Path) -> dict:
    photos = _images(tmp_path / "photos", ["p0", "p1", "p2"], seed=5)
    styles = _images(tmp_path / "styles", ["a", "b", "the-scream", "udnie"], seed=6, size=(44, 36))
    out = tmp_path / "meta.safetensors"
    train_meta(photos, styles, out, MetaTrainConfig(group_hidden=4, styles_per_step=2), _options(tmp_path, lr=1e-4),
               encoder_weights=None)
    from painterly.models.meta import load_meta

    return _record(tmp_path, load_meta(out).state_dict())


RUNS = {"feedforward": run_feedforward, "adain": run_adain, "meta": run_meta}


@pytest.mark.parametrize("kind", sorted(RUNS))
def test_trainer_reproduces_its_golden_losses(kind, tmp_path):
    got = RUNS[kind](tmp_path)
    golden = json.loads(GOLDEN.read_text()) if GOLDEN.is_file() else {}
    if os.environ.get("PAINTERLY_REGEN_GOLDEN") == "1":
        golden[kind] = got
        GOLDEN.write_text(json.dumps(golden, indent=1, sort_keys=True) + "\n")
        pytest.skip("golden regenerated")
    want = golden[kind]
    assert len(got["rows"]) == len(want["rows"]) == STEPS
    for g, w in zip(got["rows"], want["rows"], strict=True):
        assert g.keys() == w.keys()
        for k in w:
            assert g[k] == pytest.approx(w[k], rel=1e-5, abs=1e-9), (kind, g["step"], k)
    assert got["weights_abs_sum"] == pytest.approx(want["weights_abs_sum"], rel=1e-6)
