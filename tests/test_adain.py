"""AdaIN: the layer, the decoder, feature-space controls (alpha, interpolation, masks), files, style pool."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
from PIL import Image

from painterly.encoders import VGGEncoder
from painterly.errors import ModelError, PainterlyError
from painterly.losses import calc_mean_std
from painterly.models.adain import (
    ADAIN_LAYER,
    AdaIN,
    AdaINDecoder,
    AdaINDecoderConfig,
    adaptive_instance_normalization,
    load_decoder,
    masked_mean_std,
    normalize_weights,
    save_decoder,
    stylize_features,
)
from painterly.training.common import TrainOptions
from painterly.training.objectives.adain import AdaINTrainConfig, train_adain
from painterly.training.style_pool import StylePool, color_jitter

torch.set_num_threads(1)


def tiny_adain(seed: int = 0) -> AdaIN:
    """Random encoder and small decoder, He-initialised so signals survive the depth."""
    torch.manual_seed(seed)
    model = AdaIN(AdaINDecoder(AdaINDecoderConfig(width=0.125)), encoder=VGGEncoder([ADAIN_LAYER], weights=None))
    for m in model.modules():
        if isinstance(m, torch.nn.Conv2d):
            torch.nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
    return model


def stats_of(t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    mean, std = calc_mean_std(t)
    return mean, std


def test_adain_output_statistics_match_the_style_per_channel():
    torch.manual_seed(0)
    content = torch.randn(2, 16, 12, 10) * 3 + 1
    scale, shift = torch.linspace(0.1, 5, 16).view(1, 16, 1, 1), torch.arange(16.0).view(1, 16, 1, 1)
    style = torch.rand(2, 16, 7, 9) * scale + shift
    out = adaptive_instance_normalization(content, style)
    om, os_ = stats_of(out)
    sm, ss = stats_of(style)
    assert torch.allclose(om, sm, atol=1e-4)
    assert torch.allclose(os_, ss, rtol=1e-3, atol=1e-3)
    cm, _ = stats_of(content)
    assert not torch.allclose(om, cm, atol=1e-2)  # it really changed something


def test_adain_keeps_the_normalized_content_structure():
    content = torch.randn(1, 8, 6, 6)
    out = adaptive_instance_normalization(content, torch.randn(1, 8, 5, 5) * 4 + 2)
    corr = torch.corrcoef(torch.stack([content[0, 3].flatten(), out[0, 3].flatten()]))[0, 1]
    assert corr > 0.999  # per channel an affine map of the content


def test_alpha_zero_decodes_the_content_features():
    model = tiny_adain().eval()
    content, style = torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        out = model(content, style, alpha=0.0)
        direct = model.decoder(model.encode(content))
        full = model(content, style, alpha=1.0)
        half = model(content, style, alpha=0.5)
    assert torch.equal(out, direct)
    assert not torch.allclose(full, direct)
    feats = model.encode(content)
    s = model.style_stats(style)
    assert torch.allclose(stylize_features(feats, [s], alpha=0.5),
                          0.5 * stylize_features(feats, [s]) + 0.5 * feats, atol=1e-6)
    assert half.shape == out.shape == (1, 3, 32, 32)


def test_alpha_out_of_range_is_refused():
    with pytest.raises(ValueError, match="alpha"):
        stylize_features(torch.rand(1, 4, 2, 2), [(torch.zeros(1, 4, 1, 1), torch.ones(1, 4, 1, 1))], alpha=1.5)


def test_interpolation_weights_are_normalized():
    torch.manual_seed(1)
    feats = torch.randn(1, 8, 5, 5)
    s1 = (torch.randn(1, 8, 1, 1), torch.rand(1, 8, 1, 1) + 0.5)
    s2 = (torch.randn(1, 8, 1, 1), torch.rand(1, 8, 1, 1) + 0.5)
    a = stylize_features(feats, [s1, s2], [2.0, 2.0])
    b = stylize_features(feats, [s1, s2], [0.5, 0.5])
    c = stylize_features(feats, [s1, s2])  # default: equal shares
    assert torch.allclose(a, b) and torch.allclose(a, c)
    only_first = stylize_features(feats, [s1, s2], [3.0, 0.0])
    assert torch.allclose(only_first, stylize_features(feats, [s1]), atol=1e-6)
    # the mix has the mixed statistics
    m, s = stats_of(stylize_features(feats, [s1, s2], [1.0, 3.0]))
    assert torch.allclose(m, 0.25 * s1[0] + 0.75 * s2[0], atol=1e-4)
    assert torch.allclose(s, 0.25 * s1[1] + 0.75 * s2[1], atol=1e-3)
    assert normalize_weights([1, 3], 2) == [0.25, 0.75]
    for bad in ([1.0], [-1.0, 2.0], [0.0, 0.0], [float("nan"), 1.0]):
        with pytest.raises(ValueError):
            normalize_weights(bad, 2)


def test_mask_regions_receive_their_styles():
    torch.manual_seed(2)
    feats = torch.randn(1, 6, 8, 8)
    s1 = (torch.full((1, 6, 1, 1), 5.0), torch.full((1, 6, 1, 1), 0.5))
    s2 = (torch.full((1, 6, 1, 1), -3.0), torch.full((1, 6, 1, 1), 2.0))
    regions = torch.zeros(1, 2, 64, 64)  # image-resolution mask, 8x the features; left half -> style 1
    regions[:, 0, :, :32] = 1
    regions[:, 1, :, 32:] = 1
    out = stylize_features(feats, [s1, s2], regions=regions)
    left_m, left_s = stats_of(out[..., :4])
    right_m, right_s = stats_of(out[..., 4:])
    assert torch.allclose(left_m, s1[0], atol=1e-4) and torch.allclose(left_s, s1[1], atol=1e-3)
    assert torch.allclose(right_m, s2[0], atol=1e-4) and torch.allclose(right_s, s2[1], atol=1e-3)
    # one style + mask: the second region keeps the photo's features
    kept = stylize_features(feats, [s1, None], regions=regions)
    assert torch.equal(kept[..., 4:], feats[..., 4:])
    with pytest.raises(ValueError, match="regions"):
        stylize_features(feats, [s1], regions=regions)


def test_masked_mean_std_matches_the_plain_one_on_the_region():
    feats = torch.randn(1, 3, 4, 6)
    w = torch.zeros(1, 1, 4, 6)
    w[..., :3] = 1
    m, s = masked_mean_std(feats, w)
    rm, rs = calc_mean_std(feats[..., :3])
    assert torch.allclose(m, rm, atol=1e-5) and torch.allclose(s, rs, atol=1e-4)


def test_decoder_is_a_mirror_of_the_encoder():
    dec = AdaINDecoder(AdaINDecoderConfig(width=0.25))
    convs = [m for m in dec.modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == 9  # conv4_1 and the 8 convs of blocks 1-3 of VGG19
    assert all(c.padding_mode == "reflect" and c.kernel_size == (3, 3) for c in convs)
    assert not any(isinstance(m, (torch.nn.BatchNorm2d, torch.nn.InstanceNorm2d)) for m in dec.modules())
    assert dec(torch.rand(2, 512, 4, 5)).shape == (2, 3, 32, 40)


def test_decoder_inference_form_is_the_trained_decoder():
    """Without grad the upsample + conv pairs run as sub-pixel convs: the same image as the training form."""
    torch.manual_seed(0)
    dec = AdaINDecoder(AdaINDecoderConfig(in_channels=16, width=0.1)).eval()
    feat = torch.rand(1, 16, 5, 7) * 2
    ref = dec(feat)  # grad enabled: nn.Upsample + reflection-padded conv
    with torch.no_grad():
        out = dec(feat)
    assert out.shape == ref.shape == (1, 3, 40, 56)
    torch.testing.assert_close(out, ref.detach(), atol=1e-5, rtol=1e-5)


def test_decoder_file_round_trip_and_errors(tmp_path):
    dec = AdaINDecoder(AdaINDecoderConfig(width=0.125))
    path = save_decoder(dec, tmp_path / "d.safetensors", training={"steps": 3, "held_out": ["udnie"]}, half=True)
    loaded = load_decoder(path)
    assert loaded.config == dec.config
    assert loaded.training_info["held_out"] == ["udnie"]
    x = torch.rand(1, 512, 3, 3)
    assert torch.allclose(loaded(x), dec(x), atol=2e-2)  # fp16 storage
    with pytest.raises(ModelError, match="not found"):
        load_decoder(tmp_path / "missing.safetensors")
    (tmp_path / "junk.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(ModelError, match="not a valid"):
        load_decoder(tmp_path / "junk.safetensors")


def _write_images(folder, names, size=(40, 32), seed=0):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for n in names:
        Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)).save(folder / f"{n}.png")
    return folder


def test_style_pool_holds_paintings_out_and_augments(tmp_path):
    styles = _write_images(tmp_path / "styles", ["a", "b", "the-scream", "udnie"])
    pool = StylePool(styles, size=16, hold_out=("the-scream", "udnie"), jitter=1.0)
    assert sorted(pool.names) == ["a", "b"] and sorted(pool.held_out) == ["the-scream", "udnie"]
    x1 = pool.sample(5, torch.Generator().manual_seed(3))
    x2 = pool.sample(5, torch.Generator().manual_seed(3))
    assert x1.shape == (5, 3, 16, 16) and torch.equal(x1, x2)  # a pure function of the generator
    assert float(x1.min()) >= 0 and float(x1.max()) <= 1
    with pytest.warns(UserWarning, match="not found"):
        StylePool(styles, size=16, hold_out=("nope",))


def test_color_jitter_changes_colors_within_range():
    x = torch.rand(4, 3, 8, 8)
    y = color_jitter(x, torch.Generator().manual_seed(0), prob=1.0)
    assert y.shape == x.shape and float(y.min()) >= 0 and float(y.max()) <= 1
    assert not torch.allclose(x, y)
    assert torch.equal(color_jitter(x, torch.Generator().manual_seed(0), prob=0.0), x)


def _train_options(steps: int, resume: bool = False) -> TrainOptions:
    return TrainOptions(steps=steps, batch_size=2, size=32, lr=1e-4, device="cpu", checkpoint_every=1,
                        progress=False, resume=resume, log_every=1)


def test_adain_training_runs_and_resumes_exactly(tmp_path):
    photos = _write_images(tmp_path / "photos", ["p0", "p1", "p2"], size=(48, 40), seed=1)
    styles = _write_images(tmp_path / "styles", ["a", "b", "the-scream", "udnie"], size=(36, 44), seed=2)
    cfg = AdaINTrainConfig(width=0.125)
    # two steps in one go ...
    straight = train_adain(photos, styles, tmp_path / "a.safetensors", cfg, _train_options(2), encoder_weights=None)
    # ... equal one step, then a resumed second step
    train_adain(photos, styles, tmp_path / "b.safetensors", cfg, _train_options(1), encoder_weights=None)
    resumed = train_adain(photos, styles, tmp_path / "b.safetensors", cfg, _train_options(2, resume=True),
                          encoder_weights=None)
    assert straight.result.step == resumed.result.step == 2
    a, b = load_decoder(tmp_path / "a.safetensors"), load_decoder(tmp_path / "b.safetensors")
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        assert ka == kb and torch.equal(va, vb), ka
    info = a.training_info
    assert info["held_out"] == ["the-scream", "udnie"] and sorted(info["trained_styles"]) == ["a", "b"]
    # changed settings are refused on resume
    with pytest.raises(Exception, match="different settings"):
        train_adain(photos, styles, tmp_path / "b.safetensors", AdaINTrainConfig(width=0.125, style_weight=3.0),
                    _train_options(3, resume=True), encoder_weights=None)


def test_adain_training_continues_a_decoder(tmp_path):
    photos = _write_images(tmp_path / "photos", ["p0", "p1"], size=(48, 40), seed=5)
    styles = _write_images(tmp_path / "styles", ["a", "the-scream", "udnie"], size=(36, 44), seed=6)
    first = tmp_path / "first.safetensors"
    train_adain(photos, styles, first, AdaINTrainConfig(width=0.125), _train_options(2), encoder_weights=None)
    # lr 0: the continued decoder is exactly the one it started from (its width, not the config's)
    still = tmp_path / "still.safetensors"
    train_adain(photos, styles, still, AdaINTrainConfig(width=0.5), replace(_train_options(1), lr=0.0),
                encoder_weights=None, init=first)
    a, b = load_decoder(first), load_decoder(still)
    assert b.config.width == 0.125
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        assert ka == kb and torch.equal(va, vb), ka
    info = b.training_info
    assert info["steps"] == 2 and len(info["continued"]) == 1 and info["continued"][0]["steps"] == 1
    assert info["continued"][0]["config"]["init"] == str(first)
    # a real step changes it, and the history grows
    moved = tmp_path / "moved.safetensors"
    train_adain(photos, styles, moved, AdaINTrainConfig(width=0.125), _train_options(1), encoder_weights=None,
                init=still)
    c = load_decoder(moved)
    assert any(not torch.equal(va, vc)
               for va, vc in zip(a.state_dict().values(), c.state_dict().values(), strict=True))
    assert len(c.training_info["continued"]) == 2
    # a new hold-out must be paintings it never trained on ("a" was trained on; udnie never was)
    with pytest.raises(PainterlyError, match="hold-out paintings: it trained on a"):
        train_adain(photos, styles, tmp_path / "x.safetensors", AdaINTrainConfig(hold_out=("a", "udnie")),
                    _train_options(1), encoder_weights=None, init=first)
    wider = train_adain(photos, styles, tmp_path / "w.safetensors", AdaINTrainConfig(hold_out=("udnie",)),
                        _train_options(1), encoder_weights=None, init=first)
    assert wider.held_out == ["udnie"] and wider.trained_styles == ["a", "the-scream"]


def test_train_adain_cli_trains_resumes_and_reports_errors(tmp_path, capsys):
    from painterly.cli import main

    photos = _write_images(tmp_path / "photos", ["p0", "p1"], size=(48, 40), seed=3)
    styles = _write_images(tmp_path / "styles", ["a", "the-scream", "udnie"], size=(36, 44), seed=4)
    out = tmp_path / "dec.safetensors"
    base = ["train-adain", "--content-dir", str(photos), "--style-dir", str(styles), "--out", str(out),
            "--batch-size", "2", "--size", "32", "--width", "0.125", "--quiet", "--log-every", "1"]
    assert main([*base, "--steps", "2"]) == 0
    assert load_decoder(out).training_info["steps"] == 2
    assert (tmp_path / "dec.log.csv").is_file()
    assert main([*base, "--steps", "3", "--resume"]) == 0
    assert load_decoder(out).training_info["steps"] == 3
    more = tmp_path / "more.safetensors"
    assert main([*base[:-10], str(more), "--batch-size", "2", "--size", "32", "--quiet", "--steps", "2",
                 "--init", str(out), "--lr-schedule", "cosine", "--warmup-steps", "1"]) == 0
    cont = load_decoder(more).training_info["continued"][-1]
    assert cont["steps"] == 2 and cont["config"]["lr_schedule"] == "cosine" and cont["config"]["warmup_steps"] == 1
    assert "wrote" in capsys.readouterr().out
    rc = main(["train-adain", "--content-dir", str(tmp_path / "nowhere"), "--style-dir", str(styles),
               "--out", str(tmp_path / "x.safetensors"), "--steps", "1", "--quiet"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and "nowhere" in err


def test_end_of_run_evaluation_spreads_a_large_pool():
    from painterly.training.objectives.arbitrary import EVAL_PAINTINGS, spread

    assert spread(["a", "b"], 5) == ["a", "b"]
    picked = spread([f"p{i:03d}" for i in range(800)], EVAL_PAINTINGS)
    assert len(picked) == EVAL_PAINTINGS and picked[0] == "p000" and picked[-1] > "p780"
    assert len(set(picked)) == EVAL_PAINTINGS and picked == sorted(picked)
