"""Pruning a TransformerNet to fewer channels and blocks (the start of a distilled student)."""

from __future__ import annotations

import pytest
import torch

from painterly.errors import PainterlyError
from painterly.models.adain import AdaINDecoder, AdaINDecoderConfig
from painterly.models.io import StylizationModel
from painterly.models.prune import prune_decoder, prune_transformer
from painterly.models.transformer import TransformerConfig, TransformerNet
from painterly.styles import StyleInfo
from painterly.training.objectives.distill import pruned_student

pytestmark = pytest.mark.usefixtures("one_thread")


def _net(**kw) -> TransformerNet:
    torch.manual_seed(0)
    net = TransformerNet(TransformerConfig(channels=(8, 12, 16), num_residual=3, num_styles=3, stem_kernel=3, **kw))
    with torch.no_grad():  # style rows that differ, as in a trained network
        for m in net.norms():
            m.gamma.normal_(1.0, 0.3)
            m.beta.normal_(0.0, 0.3)
    return net.eval()


def test_pruning_to_the_same_shape_is_the_same_network():
    net = _net()
    same = prune_transformer(net, (8, 12, 16), 3)
    x = torch.rand(2, 3, 24, 32)
    for s in range(3):
        style = net.style_vector(s, 2)
        torch.testing.assert_close(same(x, style), net(x, style), atol=1e-5, rtol=0)


def test_pruning_drops_the_channels_and_blocks_that_carry_least():
    net = _net()
    with torch.no_grad():
        net.stem.norm.gamma[:, 5] = 0.0  # stem channel 5 carries nothing
        net.stem.norm.beta[:, 5] = -1.0
        net.res[1].b.norm.gamma.zero_()  # block 1 adds nothing to the stream
        net.res[1].b.norm.beta.zero_()
    small = prune_transformer(net, (7, 10, 12), 2)
    assert small.config.widths == (7, 10, 12) and len(small.res) == 2
    kept_stem = [c for c in range(8) if any(torch.equal(net.stem.conv.weight[c], w) for w in small.stem.conv.weight)]
    assert 5 not in kept_stem and len(kept_stem) == 7
    # blocks 0 and 2 are kept: the first kept block's second conv reads the same weights as block 0's
    assert any(torch.equal(small.res[1].a.norm.gamma[:, i], net.res[2].a.norm.gamma[:, j])
               for i in range(12) for j in range(16))
    assert not any(torch.equal(small.res[0].b.norm.gamma[:, i], net.res[1].b.norm.gamma[:, 0]) for i in range(12))
    y = small(torch.rand(1, 3, 16, 20), small.style_vector(1))
    assert y.shape == (1, 3, 16, 20) and torch.isfinite(y).all()


def test_pruning_rejects_impossible_shapes():
    net = _net()
    with pytest.raises(ValueError, match="channels"):
        prune_transformer(net, (9, 12, 16))
    with pytest.raises(ValueError, match="blocks"):
        prune_transformer(net, (8, 12, 16), 4)
    teacher = StylizationModel(net, [StyleInfo(n) for n in "abc"], {})
    with pytest.raises(PainterlyError, match="--stem-kernel 3"):
        pruned_student(teacher, TransformerConfig(channels=(4, 4, 8), num_residual=1, num_styles=3, stem_kernel=5))
    student = pruned_student(teacher, TransformerConfig(channels=(4, 6, 8), num_residual=1, num_styles=3,
                                                        stem_kernel=3))
    assert student.names == ["a", "b", "c"] and student.net.config.widths == (4, 6, 8)


def test_distill_can_start_from_the_pruned_teacher(tmp_path):
    from test_loop import TINY, _distill_opts, _photos, _teacher

    from painterly.models.io import load_model
    from painterly.training.objectives.distill import distill

    teacher = _teacher(tmp_path)
    run = distill(teacher, _photos(tmp_path), tmp_path / "s.safetensors", TINY, _distill_opts(1, lr=0.0),
                  encoder_weights=None, init="pruned")
    student = load_model(run.output)
    expected = prune_transformer(load_model(teacher).net, (4, 4, 8), 1)
    assert student.training["distill"]["init"] == "pruned"
    for (k, va), vb in zip(student.net.state_dict().items(), expected.state_dict().values(), strict=True):
        assert torch.equal(va, vb), k


def test_decoder_pruning_keeps_the_important_channels():
    torch.manual_seed(0)
    dec = AdaINDecoder(AdaINDecoderConfig(in_channels=32, width=0.5)).eval()
    feat = torch.rand(1, 32, 6, 5)
    with torch.no_grad():
        assert torch.equal(prune_decoder(dec, 0.5)(feat), dec(feat))  # same width: the same decoder
        convs = [m for m in dec.body if isinstance(m, torch.nn.Conv2d)]
        # make four channels of the first conv matter downstream and silence the rest: they must survive
        convs[1].weight[:, 4:] *= 1e-3
        small = prune_decoder(dec, 0.125)
    assert small.config.channels() == AdaINDecoder(AdaINDecoderConfig(in_channels=32, width=0.125)).config.channels()
    first = [m for m in small.body if isinstance(m, torch.nn.Conv2d)][0]
    assert first.weight.shape[0] == small.config.channels()[0] < convs[0].weight.shape[0]
    assert torch.equal(first.weight[:4], convs[0].weight[:4])
    with pytest.raises(ValueError):
        prune_decoder(small, 0.5)  # widening is not pruning
