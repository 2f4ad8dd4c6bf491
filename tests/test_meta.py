"""Meta network: generated transformers, files, and the arbitrary-style trainers (few steps, resume)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
from PIL import Image

from painterly.errors import ModelError, PainterlyError
from painterly.models.io import load_model
from painterly.models.meta import (
    MetaConfig,
    MetaNetwork,
    load_meta,
    save_generated,
    save_meta,
    style_statistics,
    widen,
    with_clamp_output,
    with_upsample,
)
from painterly.models.transformer import TransformerConfig, TransformerNet
from painterly.training.checkpoint import read_checkpoint
from painterly.training.common import TrainOptions
from painterly.training.objectives.meta import MetaTrainConfig, train_meta

torch.set_num_threads(1)


def random_stats(meta: MetaNetwork, n: int = 1, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, meta.config.stats_dim, generator=g) * 3


def test_meta_generates_every_transformer_parameter():
    meta = MetaNetwork(MetaConfig(group_hidden=8))
    params = meta(random_stats(meta, 3))
    template = dict(meta.template.named_parameters())
    assert set(params) == set(template)
    for name, p in params.items():
        assert p.shape == (3, *template[name].shape)
    # not part of the saved state: only the meta network's own weights are
    assert not any(k.startswith("_template") or "stem" in k for k in meta.state_dict())
    # different styles -> different networks; at init close to an ordinary transformer init
    w = params["res.0.a.conv.weight"]
    assert not torch.allclose(w[0], w[1])
    rel = (w[0].detach() - template["res.0.a.conv.weight"]).norm() / template["res.0.a.conv.weight"].norm()
    assert 0.01 < float(rel) < 1.0


def test_generate_returns_a_transformer_that_runs_and_round_trips(tmp_path):
    meta = MetaNetwork(MetaConfig(group_hidden=8))
    encoder = meta.stats_encoder(weights=None)
    net = meta.generate(torch.rand(1, 3, 32, 32), encoder)
    assert isinstance(net, TransformerNet) and net.num_styles == 1
    x = torch.rand(1, 3, 32, 32)
    y = net(x)
    assert y.shape == x.shape and float(y.min()) >= 0 and float(y.max()) <= 1
    path = save_generated(net, tmp_path / "mine.safetensors", "my-painting", source="me.jpg")
    loaded = load_model(path)
    assert loaded.names == ["my-painting"]
    assert torch.allclose(loaded.net(x), y, atol=1e-6)


def test_meta_file_round_trip_and_errors(tmp_path):
    meta = MetaNetwork(MetaConfig(group_hidden=8))
    meta.fit_input_normalization(random_stats(meta, 5, seed=1))
    assert float(meta.stats_std.min()) >= 0.05 and float(meta.stats_mean.abs().sum()) > 0
    path = save_meta(meta, tmp_path / "meta.safetensors", training={"held_out": ["udnie"]})
    loaded = load_meta(path)
    stats = random_stats(meta)
    a, b = meta(stats), loaded(stats)
    assert all(torch.allclose(a[k], b[k]) for k in a)
    assert loaded.training_info["held_out"] == ["udnie"]
    with pytest.raises(ModelError, match="not a painterly meta network"):
        load_meta(_decoder_file(tmp_path))
    with pytest.raises(ModelError, match="not found"):
        load_meta(tmp_path / "nope.safetensors")


def _decoder_file(tmp_path):
    from painterly.models.adain import AdaINDecoder, AdaINDecoderConfig, save_decoder

    return save_decoder(AdaINDecoder(AdaINDecoderConfig(width=0.125)), tmp_path / "dec.safetensors")


def test_with_clamp_output_scales_the_output_layer_and_clamps_only_in_eval():
    assert MetaConfig().transformer_config().output == "clamp"
    sigmoid = replace(TransformerConfig.preset("slim"), output="sigmoid").to_dict()
    meta = MetaNetwork(MetaConfig(transformer=sigmoid, group_hidden=8))
    clamped = with_clamp_output(meta)
    assert clamped.config.transformer_config().output == "clamp" and with_clamp_output(clamped) is clamped
    assert meta.config.transformer_config().output == "sigmoid"  # the original is left alone
    stats = random_stats(meta)
    a, b = meta(stats), clamped(stats)
    for name in a:
        scale = 0.25 if name.startswith("head.") else 1.0
        assert torch.allclose(b[name], scale * a[name], atol=1e-6), name
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        # 0.5 + z/4 follows sigmoid(z) where the sigmoid is not saturated
        assert float((clamped.eval().run(b, 0, x) - meta.eval().run(a, 0, x)).abs().mean()) < 0.05
        b["head.bias"] += 2.0  # push every pixel past 1
        y_train = clamped.train().run(b, 0, x)
        y_eval = clamped.eval().run(b, 0, x)
    assert float(y_train.min()) > 1.0  # unbounded in training: the loss still sees (and fixes) such pixels
    assert torch.equal(y_eval, y_train.clamp(0, 1))
    assert clamped.transformer(b).config.output == "clamp"


def test_with_upsample_switches_the_mode_and_keeps_the_weights():
    meta = MetaNetwork(MetaConfig(group_hidden=8))
    assert meta.config.transformer_config().upsample == "nearest"
    bil = with_upsample(meta, "bilinear")
    assert bil.config.transformer_config().upsample == "bilinear" and with_upsample(bil, "bilinear") is bil
    assert meta.config.transformer_config().upsample == "nearest"  # the original is left alone
    stats = random_stats(meta)
    a, b = meta(stats), bil(stats)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert bil.transformer(b).config.upsample == "bilinear" and bil.transformer(b).up1.upsample == "bilinear"
    with pytest.raises(ValueError, match="upsample"):
        with_upsample(meta, "cubic")


def _perturbed(meta: MetaNetwork, seed: int = 0) -> MetaNetwork:
    """``meta`` with random head weights and biases of a trained-looking size (style-dependent and
    different in every channel, unlike the default initialisation's ones and zeros)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for head in meta.heads:
            head.weight.add_(0.05 * torch.randn(head.weight.shape, generator=g))
            head.bias.add_(0.2 * torch.randn(head.bias.shape, generator=g))
    return meta


def test_widen_computes_the_same_function_for_every_style():
    meta = _perturbed(with_upsample(MetaNetwork(MetaConfig(group_hidden=8)), "bilinear")).eval()
    wide = widen(meta, 2, noise=0.0)
    assert meta.config.transformer_config().widths == (16, 16, 16)
    assert wide.config.transformer_config().widths == (32, 32, 32)
    assert wide.config.transformer_config().upsample == "bilinear" and widen(meta, 1) is meta
    stats = random_stats(meta, 3)
    pa, pb = meta(stats), wide(stats)
    assert pb["res.0.a.conv.weight"].shape == (3, 32, 32, 3, 3) and pb["stem.conv.weight"].shape == (3, 32, 3, 9, 9)
    x = torch.rand(2, 3, 32, 40)
    with torch.no_grad():
        for i in range(3):
            a, b = meta.run(pa, i, x), wide.run(pb, i, x)
            assert float((a - b).abs().max()) < 1e-4, i
        assert float((meta.run(pa, 0, x) - meta.run(pa, 1, x)).abs().max()) > 1e-2  # the styles do differ
    # the standalone generated network is the wider one, with the same output
    net = wide.transformer(pb, 1)
    assert net.config.widths == (32, 32, 32)
    with torch.no_grad():
        assert float((net(x) - meta.run(pa, 1, x)).abs().max()) < 1e-4


def test_widen_noise_makes_the_copies_differ_and_keeps_the_output_close():
    meta = _perturbed(MetaNetwork(MetaConfig(group_hidden=8))).eval()
    wide = widen(meta, 2, noise=0.01)
    stats = random_stats(meta)
    pa, pb = meta(stats), wide(stats)
    w = pb["res.0.a.conv.weight"][0]
    assert not torch.allclose(w[:16], w[16:])  # copies of a channel differ, so training can tell them apart
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        diff = float((meta.run(pa, 0, x) - wide.run(pb, 0, x)).abs().mean())
    assert 0 < diff < 0.05
    assert torch.equal(widen(meta, 2, noise=0.01).heads[0].bias, wide.heads[0].bias)  # seeded
    for bad in (0, 1.5):
        with pytest.raises(ValueError, match="factor"):
            widen(meta, bad)


def test_style_statistics_shape():
    feats = {"relu1_1": torch.rand(2, 64, 8, 8), "relu2_1": torch.rand(2, 128, 4, 4)}
    s = style_statistics(feats, ["relu1_1", "relu2_1"])
    assert s.shape == (2, 2 * (64 + 128)) and torch.isfinite(s).all()


def _dataset(tmp_path):
    rng = np.random.default_rng(0)
    photos, styles = tmp_path / "photos", tmp_path / "styles"
    photos.mkdir()
    styles.mkdir()
    for i in range(3):
        Image.fromarray(rng.integers(0, 255, (40, 48, 3), dtype=np.uint8)).save(photos / f"p{i}.png")
    for name in ("a", "b", "the-scream", "udnie"):
        Image.fromarray(rng.integers(0, 255, (44, 36, 3), dtype=np.uint8)).save(styles / f"{name}.png")
    return photos, styles


def _options(steps: int, resume: bool = False, **kw) -> TrainOptions:
    return TrainOptions(steps=steps, batch_size=2, size=32, lr=1e-4, device="cpu", checkpoint_every=1,
                        progress=False, resume=resume, log_every=1, **kw)


def test_meta_training_runs_and_resumes(tmp_path):
    photos, styles = _dataset(tmp_path)
    out = tmp_path / "meta.safetensors"
    cfg = MetaTrainConfig(group_hidden=4, styles_per_step=2)
    first = train_meta(photos, styles, out, cfg, _options(2, log_csv=str(tmp_path / "log.csv")),
                       encoder_weights=None)
    assert first.result.step == 2 and first.held_out == ["the-scream", "udnie"]
    meta = load_meta(out)
    assert meta.training_info["held_out"] == ["the-scream", "udnie"]
    assert set(meta.training_info["evaluation"]) == {"trained_styles", "held_out_styles"}
    resumed = train_meta(photos, styles, out, cfg, _options(3, resume=True), encoder_weights=None)
    assert resumed.result.step == 3
    _, header = read_checkpoint(tmp_path / "meta.ckpt.safetensors")
    assert header["step"] == 3
    assert (tmp_path / "log.csv").read_text().count("\n") == 3  # header + 2 steps


def test_meta_training_continues_a_network(tmp_path):
    photos, styles = _dataset(tmp_path)
    first = tmp_path / "first.safetensors"
    train_meta(photos, styles, first, MetaTrainConfig(group_hidden=4, styles_per_step=2), _options(1),
               encoder_weights=None)
    # lr 0: the continued network is exactly the one it started from, input standardization included
    # (it is not refitted), with its own architecture whatever the config says
    still = tmp_path / "still.safetensors"
    train_meta(photos, styles, still, MetaTrainConfig(group_hidden=8, styles_per_step=2),
               replace(_options(1), lr=0.0, seed=7), encoder_weights=None, init=first)
    a, b = load_meta(first), load_meta(still)
    assert b.config.group_hidden == 4
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        assert ka == kb and torch.equal(va, vb), ka
    assert len(b.training_info["continued"]) == 1 and b.training_info["steps"] == 1
    with pytest.raises(PainterlyError, match="held-out"):
        train_meta(photos, styles, tmp_path / "x.safetensors", MetaTrainConfig(hold_out=()), _options(1),
                   encoder_weights=None, init=first)
    with pytest.raises(PainterlyError, match="clamped output"):
        train_meta(photos, styles, tmp_path / "x.safetensors", MetaTrainConfig(output="sigmoid"), _options(1),
                   encoder_weights=None, init=first)


def _continued(tmp_path, photos, styles, name, init, **config):
    """``init`` continued for one step at lr 0 with ``config``: only the conversions change it."""
    out = tmp_path / f"{name}.safetensors"
    train_meta(photos, styles, out, MetaTrainConfig(styles_per_step=2, **config), replace(_options(1), lr=0.0),
               encoder_weights=None, init=init)
    return load_meta(out)


def test_continuing_a_sigmoid_meta_network_converts_it_to_a_clamped_output(tmp_path):
    photos, styles = _dataset(tmp_path)
    first = tmp_path / "first.safetensors"
    train_meta(photos, styles, first, MetaTrainConfig(group_hidden=4, styles_per_step=2, output="sigmoid"),
               _options(1), encoder_weights=None)
    assert load_meta(first).config.transformer_config().output == "sigmoid"
    # a sigmoid network stays one when asked to
    kept = _continued(tmp_path, photos, styles, "kept", first, output="sigmoid")
    assert kept.config.transformer_config().output == "sigmoid"
    a, b = load_meta(first), _continued(tmp_path, photos, styles, "converted", first)
    assert b.config.transformer_config().output == "clamp"
    stats = random_stats(a)
    pa, pb = a(stats), b(stats)
    assert torch.allclose(pb["head.weight"], 0.25 * pa["head.weight"], atol=1e-6)
    assert torch.equal(pb["res.0.a.conv.weight"], pa["res.0.a.conv.weight"])
    assert a.config.transformer_config().upsample == "bilinear"  # new networks: bilinear
    # continuing a nearest network switches it to bilinear unless asked to keep it
    nearest = _continued(tmp_path, photos, styles, "nearest", first, upsample="nearest")
    assert nearest.config.transformer_config().upsample == "nearest"
    switched = _continued(tmp_path, photos, styles, "switched", tmp_path / "nearest.safetensors")
    assert switched.config.transformer_config().upsample == "bilinear"


def test_continuing_with_widen_trains_the_wider_network(tmp_path):
    photos, styles = _dataset(tmp_path)
    first = tmp_path / "first.safetensors"
    train_meta(photos, styles, first, MetaTrainConfig(group_hidden=4, styles_per_step=2), _options(1),
               encoder_weights=None)
    wide = _continued(tmp_path, photos, styles, "wide", first, widen=2)
    assert wide.config.transformer_config().widths == (32, 32, 32)
    assert wide.training_info["continued"][-1]["config"]["widen"] == 2
    # continuing the wider network keeps its width (no second widening unless asked)
    again = _continued(tmp_path, photos, styles, "again", tmp_path / "wide.safetensors")
    assert again.config.transformer_config().widths == (32, 32, 32)
    with pytest.raises(PainterlyError, match="--widen"):
        train_meta(photos, styles, tmp_path / "x.safetensors", MetaTrainConfig(styles_per_step=2, widen=2),
                   _options(1), encoder_weights=None)


def test_train_meta_cli_and_bad_batch_split(tmp_path, capsys):
    from painterly.cli import main

    photos, styles = _dataset(tmp_path)
    out = tmp_path / "m.safetensors"
    base = ["train-meta", "--content-dir", str(photos), "--style-dir", str(styles), "--out", str(out),
            "--size", "32", "--group-hidden", "4", "--quiet"]
    assert main([*base, "--steps", "1", "--batch-size", "2", "--styles-per-step", "2"]) == 0
    assert load_meta(out).training_info["steps"] == 1
    capsys.readouterr()
    assert main([*base, "--steps", "1", "--batch-size", "3", "--styles-per-step", "2"]) == 2
    assert "multiple of --styles-per-step" in capsys.readouterr().err
    assert main([*base, "--steps", "1", "--batch-size", "2", "--init", str(tmp_path / "missing.safetensors")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "not found" in err
    assert main([*base, "--steps", "1", "--batch-size", "2", "--styles-per-step", "2", "--init", str(out),
                 "--widen", "0"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--widen must be a positive integer" in err


@pytest.mark.slow
def test_launcher_trains_both_models_within_a_budget(tmp_path):
    import json
    import subprocess
    import sys
    from pathlib import Path

    photos, styles = _dataset(tmp_path)
    script = Path(__file__).resolve().parent.parent / "experiments" / "train_arbitrary.py"
    out = tmp_path / "run"
    proc = subprocess.run([sys.executable, str(script), "--content-dir", str(photos), "--style-dir", str(styles),
                           "--out-dir", str(out), "--budget", "30", "--device", "cpu", "--size", "32",
                           "--adain-batch", "2", "--meta-batch", "2", "--width", "0.125"],
                          capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["adain"]["steps"] >= 1 and summary["meta"]["steps"] >= 1
    assert summary["adain"]["held_out"] == ["the-scream", "udnie"]
    assert load_meta(out / "meta.safetensors").training_info["stop_reason"] == "time_limit"
