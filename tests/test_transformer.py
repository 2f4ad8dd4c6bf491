"""TransformerNet, conditional instance norm, and model files."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F

from painterly.errors import ModelError, StyleNotFoundError
from painterly.models.io import StylizationModel, load_model, save_model
from painterly.models.transformer import (
    ConditionalInstanceNorm2d,
    NormStats,
    TransformerConfig,
    TransformerNet,
    head_conv,
    instance_norm_affine,
    pad_to_multiple,
    reflect_pad,
    subpixel_weights,
)
from painterly.styles import StyleInfo

TINY = TransformerConfig(channels=(8, 8, 8), num_residual=1, num_styles=3, stem_kernel=3)


def _randomize(net: TransformerNet, seed: int = 0) -> TransformerNet:
    gen = torch.Generator().manual_seed(seed)
    for m in net.norms():
        m.gamma.data = torch.rand(m.gamma.shape, generator=gen) + 0.5
        m.beta.data = torch.rand(m.beta.shape, generator=gen) - 0.5
    return net


def test_shapes_range_and_widths():
    net = TransformerNet(TransformerConfig(num_residual=2, alpha=0.25, num_styles=2)).eval()
    assert net.config.widths == (8, 16, 32)
    assert net.stem.conv.out_channels == 8 and net.down2.conv.out_channels == 32 and len(net.res) == 2
    x = torch.rand(2, 3, 36, 44)
    y = net(x, torch.tensor([[1.0, 0.0], [0.0, 1.0]]))
    assert y.shape == x.shape
    y = y.detach()
    assert float(y.min()) >= 0.0 and float(y.max()) <= 1.0


def test_clamp_output_trains_unbounded_and_infers_in_range():
    net = TransformerNet(TransformerConfig(channels=(4, 4, 4), num_residual=0, output="clamp"))
    with torch.no_grad():
        net.head.bias.fill_(2.0)  # pre-activation far above 1
        x = torch.rand(1, 3, 8, 8)
        assert float(net.train()(x).min()) > 1.0  # no saturation while training: gradients keep flowing
        assert torch.equal(net.eval()(x), torch.ones(1, 3, 8, 8))
    with pytest.raises(ValueError):
        TransformerConfig(output="tanh")


def test_presets():
    slim = TransformerConfig.preset("slim", num_styles=4)
    assert slim.widths == (16, 16, 16) and slim.num_residual == 3 and slim.num_styles == 4
    full = TransformerConfig.preset("full")
    assert full.widths == (32, 64, 128) and full.num_residual == 5
    assert sum(p.numel() for p in TransformerNet(slim).parameters()) < sum(
        p.numel() for p in TransformerNet(full).parameters()) / 10
    with pytest.raises(ValueError):
        TransformerConfig.preset("huge")
    with pytest.raises(ValueError):
        TransformerConfig(channels=(8, 8))


def test_config_round_trip():
    cfg = TransformerConfig(channels=(8, 16, 24), num_residual=2, num_styles=5, alpha=0.5)
    assert TransformerConfig.from_dict(cfg.to_dict()) == cfg


def test_bilinear_upsampling_option():
    """Same weights, another 2x upsampling: outputs differ, shapes and the [0, 1] range do not; the
    mode is part of the config (files from before it load as nearest)."""
    near = _randomize(TransformerNet(TINY)).eval()
    bil = TransformerNet(replace(TINY, upsample="bilinear")).eval()
    bil.load_state_dict(near.state_dict())
    x = torch.rand(1, 3, 24, 32)
    with torch.no_grad():
        a, b = near(x), bil(x)
    assert a.shape == b.shape and float(b.min()) >= 0 and float(b.max()) <= 1
    assert not torch.allclose(a, b, atol=1e-4)
    assert TransformerConfig.from_dict(bil.config.to_dict()).upsample == "bilinear"
    old = {k: v for k, v in TINY.to_dict().items() if k != "upsample"}
    assert TransformerConfig.from_dict(old).upsample == "nearest"
    with pytest.raises(ValueError, match="upsample"):
        TransformerConfig(upsample="bicubic")


def test_onnx_export_of_a_bilinear_network(tmp_path):
    pytest.importorskip("onnxscript")
    ort = pytest.importorskip("onnxruntime")
    net = _randomize(TransformerNet(replace(TINY, upsample="bilinear"))).eval()
    x, style = torch.rand(2, 3, 16, 16), torch.tensor([[0.0, 1.0, 0.0], [0.5, 0.5, 0.0]])
    path = tmp_path / "net.onnx"
    torch.onnx.export(net, (x, style), str(path), dynamo=True, input_names=["image", "style"], output_names=["out"],
                      dynamic_shapes=({0: "batch", 2: "height", 3: "width"}, {0: "batch"}), verbose=False)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x2, style2 = torch.rand(1, 3, 20, 28), torch.tensor([[0.2, 0.3, 0.5]])
    got = session.run(None, {"image": x2.numpy(), "style": style2.numpy()})[0]
    with torch.no_grad():
        torch.testing.assert_close(torch.from_numpy(got), net(x2, style2), atol=1e-4, rtol=1e-4)


def test_cin_mixing_is_convex_combination():
    torch.manual_seed(0)
    cin = ConditionalInstanceNorm2d(4, num_styles=3)
    cin.gamma.data.uniform_(0.5, 2.0)
    cin.beta.data.uniform_(-1.0, 1.0)
    x = torch.randn(1, 4, 8, 8) * 3 + 1
    w = torch.tensor([[0.2, 0.5, 0.3]])
    mixed = cin(x, w)
    parts = [cin(x, torch.eye(3)[i : i + 1]) for i in range(3)]
    expected = sum(w[0, i] * parts[i] for i in range(3))
    torch.testing.assert_close(mixed, expected, atol=1e-5, rtol=1e-5)
    # one-hot selects exactly that style's affine on the instance-normalised input
    normed = (x - x.mean((2, 3), keepdim=True)) / (x.var((2, 3), unbiased=False, keepdim=True) + 1e-5).sqrt()
    torch.testing.assert_close(parts[1], normed * cin.gamma[1].view(1, 4, 1, 1) + cin.beta[1].view(1, 4, 1, 1),
                               atol=1e-5, rtol=1e-5)
    # batched path (per-sample styles) agrees with the single-image path
    both = cin(torch.cat([x, x]), torch.cat([w, torch.eye(3)[:1]]))
    torch.testing.assert_close(both[:1], mixed, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(both[1:], parts[0], atol=1e-5, rtol=1e-5)


def test_instance_norm_affine_gradient():
    """The training-path norm's hand-written backward is exact (fp64 gradcheck)."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, 5, 4, dtype=torch.float64, generator=gen).requires_grad_(True)
    g = torch.randn(2, 3, dtype=torch.float64, generator=gen).requires_grad_(True)
    b = torch.randn(2, 3, dtype=torch.float64, generator=gen).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda *t: instance_norm_affine(*t, 1e-5), (x, g, b))
    ref = F.instance_norm(x, eps=1e-5) * g[:, :, None, None] + b[:, :, None, None]
    torch.testing.assert_close(instance_norm_affine(x, g, b), ref)


def test_cin_training_and_inference_paths_agree():
    """Training (custom autograd, bf16 channels_last) and inference (group_norm) give the same output."""
    cin = ConditionalInstanceNorm2d(6, num_styles=2)
    cin.gamma.data = torch.rand(2, 6) + 0.5
    cin.beta.data = torch.rand(2, 6) - 0.5
    x = (torch.randn(3, 6, 9, 8) * 3 + 1).contiguous(memory_format=torch.channels_last)
    style = torch.tensor([[1.0, 0.0], [0.3, 0.7], [0.0, 1.0]])
    with torch.no_grad():
        ref = cin(x, style)
    out = cin(x.requires_grad_(True), style)
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)
    out.sum().backward()
    assert x.grad.is_contiguous(memory_format=torch.channels_last) and cin.gamma.grad is not None
    x16 = x.detach().bfloat16().requires_grad_(True)
    out16 = cin(x16, style)
    assert out16.dtype == torch.bfloat16 and out16.is_contiguous(memory_format=torch.channels_last)
    assert (out16.float() - ref).abs().max() < 0.05


@pytest.mark.parametrize("shape", [(5, 7), (1, 1), (2, 9)])
def test_subpixel_conv_is_upsample_pad_conv(shape):
    """Nearest 2x upsampling + reflection pad 1 + 3x3 conv == edge pad + the sub-pixel conv + pixel_shuffle."""
    gen = torch.Generator().manual_seed(1)
    conv = torch.nn.Conv2d(4, 6, 3)
    x = torch.randn(2, 4, *shape, generator=gen)
    ref = conv(F.pad(F.interpolate(x, scale_factor=2.0, mode="nearest"), (1, 1, 1, 1), mode="reflect"))
    w, b = subpixel_weights(conv.weight, conv.bias)
    assert w.shape == (24, 4, 3, 3) and b.shape == (24,)
    out = F.pixel_shuffle(F.conv2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), w, b), 2)
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError):
        subpixel_weights(torch.nn.Conv2d(4, 6, 5).weight, None)


def test_unshuffled_head_conv_is_the_conv(monkeypatch):
    """fp32 CPU inference runs the 9x9 output conv unshuffled: the same numbers as the plain conv."""
    gen = torch.Generator().manual_seed(2)
    head = torch.nn.Conv2d(6, 3, 9)
    x = torch.randn(1, 6, 24, 30, generator=gen)
    ref = head(x).detach()
    calls = []
    monkeypatch.setattr(F, "pixel_unshuffle", lambda *a: calls.append(1) or torch.pixel_unshuffle(*a))
    with torch.no_grad():
        torch.testing.assert_close(head_conv(head, x), ref, atol=1e-5, rtol=1e-5)
        assert calls  # the unshuffled form ran
        calls.clear()
        torch.testing.assert_close(head_conv(head, x[..., :23, :]), ref[..., :15, :], atol=1e-5, rtol=1e-5)
        assert not calls  # odd height: the plain conv
    head_conv(head, x)  # with grad: the plain conv (training)
    assert not calls


def test_inference_path_matches_training_path():
    """No grad: the up-convs run as sub-pixel convs, with the same output as the training form (and the same
    frozen-statistics behaviour for tiles)."""
    net = _randomize(TransformerNet(replace(TINY, upsample="nearest"))).eval()
    x = torch.rand(1, 3, 20, 28)
    style = torch.tensor([0.2, 0.5, 0.3])
    ref = net(x, style)  # grad enabled: interpolate + reflect pad + conv
    with torch.no_grad():
        out = net(x, style)
        norm = NormStats("collect")
        net(x, style, norm)
        tile = net(x[..., 4:16, 8:24], style, norm.replay())
    torch.testing.assert_close(out, ref.detach(), atol=1e-5, rtol=1e-5)
    ref_norm = NormStats("collect")
    net(x, style, ref_norm)
    ref_tile = net(x[..., 4:16, 8:24], style, ref_norm.replay())
    torch.testing.assert_close(tile, ref_tile.detach(), atol=1e-5, rtol=1e-5)


def test_single_style_is_instance_norm_with_affine():
    cin = ConditionalInstanceNorm2d(3, num_styles=1)
    x = torch.randn(2, 3, 5, 7)
    torch.testing.assert_close(cin(x, torch.ones(2, 1)), F.instance_norm(x, eps=1e-5), atol=1e-5, rtol=1e-5)
    net = TransformerNet(TransformerConfig(channels=(4, 4, 4), num_residual=0))
    assert net(torch.rand(1, 3, 8, 8)).shape == (1, 3, 8, 8)  # style defaults to the only one


def test_net_mixing_and_style_selection_differ():
    net = _randomize(TransformerNet(TINY)).eval()
    x = torch.rand(1, 3, 16, 16)
    a, b = net(x, net.style_vector(0)), net(x, net.style_vector(1))
    assert (a - b).abs().max() > 1e-3
    torch.testing.assert_close(net(x, torch.tensor([1.0, 0.0, 0.0])), a)


def test_add_styles_keeps_old_rows():
    net = _randomize(TransformerNet(TINY))
    before = [(m.gamma.detach().clone(), m.beta.detach().clone()) for m in net.norms()]
    x = torch.rand(1, 3, 16, 16)
    out0 = net(x, net.style_vector(2))
    net.add_styles(2)
    assert net.num_styles == 5
    for m, (g, b) in zip(net.norms(), before, strict=True):
        assert m.gamma.shape == (5, g.shape[1])
        assert torch.equal(m.gamma[:3], g) and torch.equal(m.beta[:3], b)
        torch.testing.assert_close(m.gamma[3], g.mean(0))
    assert torch.equal(net(x, net.style_vector(2)), out0)


def test_model_subset_keeps_chosen_styles_outputs():
    net = _randomize(TransformerNet(TINY)).eval()
    model = StylizationModel(net, [StyleInfo(n) for n in ("a", "b", "c")], {"steps": 5})
    x = torch.rand(1, 3, 16, 16)
    small = model.subset(["c", "a"])
    assert small.names == ["c", "a"] and small.net.num_styles == 2 and model.net.num_styles == 3
    assert torch.equal(small.net(x, small.net.style_vector(0)), net(x, net.style_vector(2)))
    assert torch.equal(small.net(x, small.net.style_vector(1)), net(x, net.style_vector(0)))
    assert small.training["subset_of"] == ["a", "b", "c"]
    with pytest.raises(StyleNotFoundError):
        model.subset(["nope"])
    with pytest.raises(ModelError):
        model.subset(["a", "a"])


def test_reflect_pad_and_pad_to_multiple():
    x = torch.randn(1, 3, 9, 11)
    assert torch.equal(reflect_pad(x, 4), F.pad(x, (4, 4, 4, 4), mode="reflect"))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert reflect_pad(x.bfloat16(), 1).dtype == torch.bfloat16
    y, (h, w) = pad_to_multiple(x, 4)
    assert y.shape[-2:] == (12, 12) and (h, w) == (9, 11)
    assert torch.equal(y[..., :9, :11], x)


def test_frozen_norm_stats_reproduce_forward():
    net = _randomize(TransformerNet(TINY)).eval()
    x = torch.rand(1, 3, 24, 20)
    style = torch.tensor([0.3, 0.7, 0.0])
    with torch.no_grad():
        ref = net(x, style)
        stats = NormStats("collect")
        collected = net(x, style, stats)
        replayed = net(x, style, stats.replay())
    assert len(stats.stats) == len(net.norms())
    torch.testing.assert_close(collected, ref, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(replayed, ref, atol=1e-5, rtol=1e-5)


def test_exportable_graph():
    """ONNX export goes through torch.export: no data-dependent Python control flow allowed, and
    the graph takes any batch size and image size (example batch 2: torch.export specializes 0/1)."""
    net = _randomize(TransformerNet(TINY)).eval()
    x, style = torch.rand(2, 3, 16, 16), torch.tensor([[0.0, 1.0, 0.0], [0.5, 0.5, 0.0]])
    batch, side = torch.export.Dim("batch", max=64), torch.export.Dim("side", max=1024)
    exported = torch.export.export(net, (x, style), dynamic_shapes=({0: batch, 2: 4 * side, 3: 4 * side},
                                                                    {0: batch}))
    x2, style2 = torch.rand(1, 3, 24, 24), torch.tensor([[0.2, 0.3, 0.5]])
    with torch.no_grad():
        torch.testing.assert_close(exported.module()(x, style), net(x, style), atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(exported.module()(x2, style2), net(x2, style2), atol=1e-5, rtol=1e-5)


def test_onnx_export_runs_in_onnxruntime(tmp_path):
    """The network exports to ONNX (dynamic batch and size) and onnxruntime reproduces it."""
    pytest.importorskip("onnxscript")
    ort = pytest.importorskip("onnxruntime")
    net = _randomize(TransformerNet(TINY)).eval()
    x, style = torch.rand(2, 3, 16, 16), torch.tensor([[0.0, 1.0, 0.0], [0.5, 0.5, 0.0]])
    path = tmp_path / "net.onnx"
    torch.onnx.export(net, (x, style), str(path), dynamo=True, input_names=["image", "style"], output_names=["out"],
                      dynamic_shapes=({0: "batch", 2: "height", 3: "width"}, {0: "batch"}), verbose=False)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for x2, style2 in ((torch.rand(1, 3, 20, 28), torch.tensor([[0.2, 0.3, 0.5]])),
                       (torch.rand(3, 3, 12, 12), torch.eye(3))):
        got = session.run(None, {"image": x2.numpy(), "style": style2.numpy()})[0]
        with torch.no_grad():
            torch.testing.assert_close(torch.from_numpy(got), net(x2, style2), atol=1e-4, rtol=1e-4)


def _model(tmp_path, half=False):
    net = _randomize(TransformerNet(TINY)).eval()
    styles = [StyleInfo("a", "Alpha", "Ann"), StyleInfo("b", "Beta", "Bob"), StyleInfo("c")]
    m = StylizationModel(net, styles, {"steps": 3})
    return m, save_model(m, tmp_path / "m.safetensors", half=half)


def test_model_round_trip(tmp_path):
    m, path = _model(tmp_path)
    loaded = load_model(path)
    assert loaded.names == ["a", "b", "c"] and loaded.styles[0].title == "Alpha" and loaded.training == {"steps": 3}
    assert loaded.net.config == m.net.config
    for (k, v), (k2, v2) in zip(m.net.state_dict().items(), loaded.net.state_dict().items(), strict=True):
        assert k == k2 and torch.equal(v, v2)
    half = save_model(m, tmp_path / "h.safetensors", half=True)
    assert half.stat().st_size < path.stat().st_size * 0.6
    lh = load_model(half)
    assert all(v.dtype == torch.float32 for v in lh.net.state_dict().values())
    torch.testing.assert_close(lh.net.stem.conv.weight, m.net.stem.conv.weight, atol=1e-3, rtol=1e-3)


def test_style_weights_normalised_and_unknown(tmp_path):
    m, _ = _model(tmp_path)
    torch.testing.assert_close(m.style_weights({"a": 3, "c": 1}), torch.tensor([0.75, 0.0, 0.25]))
    torch.testing.assert_close(m.style_weights(["a", "b"]), torch.tensor([0.5, 0.5, 0.0]))
    with pytest.raises(StyleNotFoundError, match="available: a, b, c"):
        m.style_weights("zzz")
    with pytest.raises(ModelError):
        m.style_weights({"a": 0.0})
    with pytest.raises(ModelError):
        m.style_weights({"a": -1.0})


def test_bad_model_files(tmp_path):
    with pytest.raises(ModelError, match="not found"):
        load_model(tmp_path / "missing.safetensors")
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"\x00\x01garbage" * 10)
    with pytest.raises(ModelError, match="not a valid"):
        load_model(junk)
    from safetensors.torch import save_file

    foreign = tmp_path / "foreign.safetensors"
    save_file({"w": torch.zeros(2)}, str(foreign))
    with pytest.raises(ModelError, match="not a painterly"):
        load_model(foreign)
    _, path = _model(tmp_path)
    data = bytearray(path.read_bytes())
    truncated = tmp_path / "trunc.safetensors"
    truncated.write_bytes(bytes(data[: len(data) // 2]))
    with pytest.raises(ModelError):
        load_model(truncated)
