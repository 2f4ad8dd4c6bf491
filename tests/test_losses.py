"""Loss math against values computed by hand on tiny tensors (see the comments for the arithmetic)."""

from __future__ import annotations

import math

import pytest
import torch

from painterly.losses import (
    PerceptualLoss,
    calc_mean_std,
    content_loss,
    gram_matrix,
    mean_std_loss,
    style_loss,
    total_variation,
)


def feat(*channels: list[float], h: int = 1) -> torch.Tensor:
    """(1, C, h, W) features from per-channel value lists."""
    t = torch.tensor(channels, dtype=torch.float32)
    return t.view(1, len(channels), h, -1)


# F has channels c0 = [1, 2], c1 = [3, 4]; C*H*W = 2*1*2 = 4.
# F F^T = [[1+4, 3+8], [3+8, 9+16]] = [[5, 11], [11, 25]];  / 4 -> [[1.25, 2.75], [2.75, 6.25]]
F = feat([1.0, 2.0], [3.0, 4.0])
G = torch.tensor([[1.25, 2.75], [2.75, 6.25]])


def test_gram_matrix():
    g = gram_matrix(F)
    assert g.shape == (1, 2, 2)
    torch.testing.assert_close(g[0], G)


def test_gram_matrix_batch_and_dtype():
    batch = torch.cat([F, 2 * F])
    g = gram_matrix(batch.bfloat16())
    assert g.dtype == torch.float32  # returned in fp32 even for bf16 features
    torch.testing.assert_close(g[0], G)
    torch.testing.assert_close(g[1], 4 * G)  # Gram is quadratic in the features


@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last])
def test_gram_matrix_gradient_and_layout(layout):
    """The hand-written backward is exact, and the gradient keeps the features' memory layout."""
    x = torch.randn(2, 3, 4, 5, dtype=torch.float64).contiguous(memory_format=layout).requires_grad_(True)
    assert torch.autograd.gradcheck(gram_matrix, (x,))
    ref = torch.einsum("bchw,bdhw->bcd", x, x) / (3 * 4 * 5)
    torch.testing.assert_close(gram_matrix(x), ref)
    gram_matrix(x).pow(2).sum().backward()
    assert x.grad.is_contiguous(memory_format=layout)


def test_gram_matrix_under_autocast():
    x = torch.randn(2, 8, 6, 6, requires_grad=True)
    with torch.autocast("cpu", torch.bfloat16):
        g = gram_matrix(x)
    assert g.dtype == torch.float32
    ref = gram_matrix(x.detach())
    assert ((g - ref).norm() / ref.norm()) < 1e-2


def test_gram_matrix_is_size_invariant():
    """Normalising by C*H*W: the same texture at twice the size has the same Gram matrix."""
    x = torch.randn(1, 3, 4, 5)
    tiled = x.repeat(1, 1, 2, 2)
    torch.testing.assert_close(gram_matrix(tiled), gram_matrix(x))


def test_content_loss():
    # sum((F - P)^2) / sum(P^2) = (0 + 1 + 4) / (1 + 1 + 1) = 5/3
    f = torch.tensor([1.0, 2.0, 3.0]).view(1, 3, 1, 1)
    p = torch.ones(1, 3, 1, 1)
    assert content_loss(f, p).item() == pytest.approx(5 / 3, rel=1e-6)
    # batch: second image equals its target -> mean of 5/3 and 0
    assert content_loss(torch.cat([f, p]), torch.cat([p, p])).item() == pytest.approx(5 / 6, rel=1e-6)
    # relative: scaling features and target together does not change it; zero image -> 1.0
    assert content_loss(10 * f, 10 * p).item() == pytest.approx(5 / 3, rel=1e-6)
    assert content_loss(torch.zeros_like(p), p).item() == pytest.approx(1.0, rel=1e-6)
    assert content_loss(p, p).item() == 0.0


def test_content_loss_is_size_invariant():
    f, p = torch.randn(1, 4, 3, 3), torch.randn(1, 4, 3, 3)
    torch.testing.assert_close(content_loss(f.repeat(1, 1, 2, 2), p.repeat(1, 1, 2, 2)), content_loss(f, p))


def test_style_loss():
    # A = [[1, 2], [2, 6]];  G - A = [[.25, .75], [.75, .25]]
    # sum((G - A)^2) = .0625 + .5625 + .5625 + .0625 = 1.25;  sum(A^2) = 1 + 4 + 4 + 36 = 45
    a = torch.tensor([[1.0, 2.0], [2.0, 6.0]])
    assert style_loss(F, a).item() == pytest.approx(1.25 / 45, rel=1e-6)
    assert style_loss(F, a[None]).item() == pytest.approx(1.25 / 45, rel=1e-6)  # (B, C, C) target
    assert style_loss(F, G).item() == pytest.approx(0.0, abs=1e-9)
    assert style_loss(torch.zeros_like(F), G).item() == pytest.approx(1.0, rel=1e-6)  # zero image -> 1


def test_style_loss_broadcasts_one_target_over_batch():
    # image 0 matches (loss 0); image 1 = 2F has Gram 4G: sum((3G)^2) / sum(G^2) = 9
    loss = style_loss(torch.cat([F, 2 * F]), G)
    assert loss.item() == pytest.approx((0 + 9) / 2, rel=1e-6)


def test_style_loss_gradient_flows():
    x = F.clone().requires_grad_(True)
    style_loss(x, torch.eye(2)).backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_calc_mean_std():
    # one channel [1, 2, 3, 4]: mean 2.5, biased variance (2.25 + .25 + .25 + 2.25) / 4 = 1.25
    x = torch.tensor([1.0, 2.0, 3.0, 4.0]).view(1, 1, 2, 2)
    mean, std = calc_mean_std(x)
    assert mean.shape == std.shape == (1, 1, 1, 1)
    assert mean.item() == pytest.approx(2.5)
    assert std.item() == pytest.approx(math.sqrt(1.25 + 1e-5), rel=1e-6)
    _, std0 = calc_mean_std(x, eps=0.0)
    assert std0.item() == pytest.approx(math.sqrt(1.25), rel=1e-6)


def test_calc_mean_std_per_channel_and_image():
    x = torch.stack([torch.full((2, 3, 3), 1.0), torch.full((2, 3, 3), 5.0)])  # (2, 2, 3, 3)
    x[1, 1] = torch.arange(9.0).view(3, 3)  # mean 4, variance 60/9
    mean, std = calc_mean_std(x, eps=0.0)
    assert mean.shape == (2, 2, 1, 1)
    assert mean.flatten().tolist() == pytest.approx([1.0, 1.0, 5.0, 4.0])
    assert std.flatten().tolist() == pytest.approx([0.0, 0.0, 0.0, math.sqrt(60 / 9)], abs=1e-6)


@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last])
def test_calc_mean_std_gradient_and_layout(layout):
    """The hand-written backward is exact (both outputs, each alone) and keeps the memory layout."""
    x = torch.randn(2, 3, 4, 5, dtype=torch.float64).contiguous(memory_format=layout).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda t: calc_mean_std(t), (x,))
    assert torch.autograd.gradcheck(lambda t: calc_mean_std(t)[0], (x,))
    assert torch.autograd.gradcheck(lambda t: calc_mean_std(t)[1], (x,))
    mean, std = calc_mean_std(x)
    flat = x.detach().flatten(2)
    torch.testing.assert_close(mean.flatten(1), flat.mean(2))
    torch.testing.assert_close(std.flatten(1), (flat.var(2, unbiased=False) + 1e-5).sqrt())
    (mean.sum() + std.pow(2).sum()).backward()
    assert x.grad.is_contiguous(memory_format=layout)


def test_calc_mean_std_bf16_gradient_close_to_fp32():
    x = torch.randn(2, 8, 6, 6).abs().contiguous(memory_format=torch.channels_last)
    target = torch.rand(2, 8, 1, 1)
    grads = []
    for dtype in (torch.float32, torch.bfloat16):
        xi = x.to(dtype).detach().requires_grad_(True)
        m, s = calc_mean_std(xi)
        assert m.dtype == s.dtype == torch.float32
        ((m - target).pow(2).sum() + (s - target).pow(2).sum()).backward()
        assert xi.grad.dtype == dtype
        grads.append(xi.grad.float())
    assert ((grads[1] - grads[0]).norm() / grads[0].norm()) < 2e-2


def test_mean_std_loss():
    # features: c0 = [1, 3] (mean 2, std 1), c1 = [2, 2] (mean 2, std 0)
    # target:   c0 = [0, 0] (mean 0, std 0), c1 = [4, 4] (mean 4, std 0)
    # mse(means) = ((2-0)^2 + (2-4)^2) / 2 = 4
    # mse(stds)  = ((sqrt(1+eps) - sqrt(eps))^2 + 0) / 2 with eps = 1e-5
    f = feat([1.0, 3.0], [2.0, 2.0])
    t = feat([0.0, 0.0], [4.0, 4.0])
    eps = 1e-5
    expected = 4.0 + (math.sqrt(1 + eps) - math.sqrt(eps)) ** 2 / 2
    assert mean_std_loss(f, t).item() == pytest.approx(expected, rel=1e-5)
    assert mean_std_loss(f, f).item() == pytest.approx(0.0, abs=1e-9)


def test_total_variation():
    # [[0, 1, 3], [2, 2, 2]]: vertical |2-0|, |2-1|, |2-3| -> mean 4/3;
    # horizontal |1-0|, |3-1|, 0, 0 -> mean 3/4;  total 4/3 + 3/4 = 25/12
    img = torch.tensor([[0.0, 1.0, 3.0], [2.0, 2.0, 2.0]]).view(1, 1, 2, 3)
    assert total_variation(img).item() == pytest.approx(25 / 12, rel=1e-6)
    assert total_variation(torch.full((1, 3, 4, 4), 0.7)).item() == 0.0
    # a mean, so the same pattern at any size/channel count gives the same value
    stripes = torch.tensor([0.0, 1.0]).repeat(4).view(1, 1, 1, 8).expand(1, 3, 8, 8)
    assert total_variation(stripes).item() == pytest.approx(1.0)


# --------------------------------------------------------------------------- PerceptualLoss


def test_default_layers_and_normalised_weights():
    loss = PerceptualLoss()
    assert loss.content_layers == {"relu4_2": 1.0}
    assert list(loss.style_layers) == ["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"]
    assert all(w == pytest.approx(0.2) for w in loss.style_layers.values())
    assert loss.layers == ["relu4_2", "relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"]


def test_layer_weights_are_normalised():
    loss = PerceptualLoss(content_layers={"a": 1.0, "b": 3.0}, style_layers=["a", "c"])
    assert loss.content_layers == {"a": 0.25, "b": 0.75}
    assert loss.style_layers == {"a": 0.5, "c": 0.5}
    assert loss.layers == ["a", "b", "c"]
    with pytest.raises(ValueError):
        PerceptualLoss(content_layers={"a": 0.0})


def test_perceptual_loss_weighting():
    # content: layer a: F vs P -> 5/3 (see test_content_loss); layer b: matches -> 0
    #   weighted: 0.25 * 5/3 + 0.75 * 0 = 5/12;  times content_weight 2 -> 5/6
    # style: layer a: 0 (F matches G); layer c: 1.25/45 (see test_style_loss), each weight 0.5
    #   -> 0.5 * 1.25/45 = 1/72;  times style_weight 100 -> 100/72
    # tv: image [[0, 1, 3], [2, 2, 2]] -> 25/12;  times tv_weight 0.1 -> 25/120
    f_a = torch.tensor([1.0, 2.0, 3.0]).view(1, 3, 1, 1)
    p_a = torch.ones(1, 3, 1, 1)
    loss = PerceptualLoss(content_layers={"a": 1.0, "b": 3.0}, style_layers={"s1": 1.0, "s2": 1.0},
                          content_weight=2.0, style_weight=100.0, tv_weight=0.1)
    feats = {"a": f_a, "b": p_a, "s1": F, "s2": F}
    content_targets = {"a": p_a, "b": p_a}
    grams = {"s1": G, "s2": torch.tensor([[1.0, 2.0], [2.0, 6.0]])}
    image = torch.tensor([[0.0, 1.0, 3.0], [2.0, 2.0, 2.0]]).view(1, 1, 2, 3)
    out = loss(image, feats, content_targets, grams)
    assert set(out) == {"content", "style", "tv", "total"}
    assert out["content"].item() == pytest.approx(5 / 6, rel=1e-5)
    assert out["style"].item() == pytest.approx(100 / 72, rel=1e-5)
    assert out["tv"].item() == pytest.approx(25 / 120, rel=1e-5)
    assert out["total"].item() == pytest.approx(5 / 6 + 100 / 72 + 25 / 120, rel=1e-5)


def test_perceptual_loss_without_tv_and_differentiable():
    loss = PerceptualLoss(content_layers={"a": 1.0}, style_layers={"a": 1.0}, style_weight=10.0)
    x = torch.rand(1, 2, 3, 3, requires_grad=True)
    target = torch.rand(1, 2, 3, 3)
    out = loss(x, {"a": x}, {"a": target}, {"a": gram_matrix(target)[0]})
    assert out["tv"].item() == 0.0
    torch.testing.assert_close(out["total"], out["content"] + out["style"])
    out["total"].backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
