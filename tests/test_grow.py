"""Function-preserving growth of a transformer network."""

import pytest
import torch

from painterly.models.grow import grow_transformer
from painterly.models.transformer import TransformerConfig, TransformerNet


def _small() -> TransformerNet:
    torch.manual_seed(1)
    net = TransformerNet(TransformerConfig(channels=(4, 8, 8), num_residual=1, num_styles=3, stem_kernel=5,
                                           output="clamp"))
    with torch.no_grad():  # styles that differ, as after training
        for norm in net.norms():
            norm.gamma.add_(0.3 * torch.randn_like(norm.gamma))
            norm.beta.add_(0.3 * torch.randn_like(norm.beta))
    return net.eval()


def test_grown_network_computes_the_same_outputs():
    net = _small()
    big = grow_transformer(net, (6, 12, 16), 3).eval()
    assert big.config.widths == (6, 12, 16) and len(big.res) == 3
    assert sum(p.numel() for p in big.parameters()) > 2 * sum(p.numel() for p in net.parameters())
    x = torch.rand(2, 3, 32, 24)
    for style in (net.style_vector(0, 2), torch.tensor([[0.2, 0.5, 0.3], [0.0, 0.0, 1.0]])):
        torch.testing.assert_close(big(x, style), net(x, style), atol=1e-5, rtol=0)
    # in training mode too (unclamped output, the training path of the norms)
    torch.testing.assert_close(big.train()(x), net.train()(x), atol=1e-5, rtol=0)


def test_new_channels_and_blocks_get_gradients():
    big = grow_transformer(_small(), (6, 12, 16), 2).train()
    x = torch.rand(2, 3, 32, 32)
    (big(x) - x).square().mean().backward()
    # the weights that read the new channels and the new block's last norm can switch them on
    assert big.res[0].a.conv.weight.grad[:, 8:].abs().sum() > 0
    assert big.up1.conv.weight.grad[:, 8:].abs().sum() > 0
    assert big.head.weight.grad[:, 4:].abs().sum() > 0
    assert big.res[1].b.norm.gamma.grad[0].abs().sum() > 0


def test_growth_cannot_shrink():
    net = _small()
    with pytest.raises(ValueError, match="at least as wide"):
        grow_transformer(net, (4, 6, 8), 1)
    with pytest.raises(ValueError, match="residual blocks"):
        grow_transformer(net, (4, 8, 8), 0)
