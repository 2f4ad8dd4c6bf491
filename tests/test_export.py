"""ONNX export: graph wrappers match the torch models, written files validate, metadata round-trips,
bad files and bad CLI input give one clear line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

from painterly.cli import main  # noqa: E402
from painterly.errors import ModelError  # noqa: E402
from painterly.export.graphs import DecoderGraph, StylizeGraph, UnshuffledConv, output_conv, stats_size  # noqa: E402
from painterly.export.onnx import decoder_spec, encoder_spec, export_graph, pipeline_spec, stylize_spec  # noqa: E402
from painterly.models.adain import AdaINDecoder, AdaINDecoderConfig  # noqa: E402
from painterly.models.io import StylizationModel, save_model  # noqa: E402
from painterly.models.transformer import NormStats, TransformerConfig, TransformerNet  # noqa: E402
from painterly.onnxfile import open_session, read_onnx_metadata  # noqa: E402
from painterly.styles import StyleInfo  # noqa: E402


def _tiny_model(output: str = "sigmoid", upsample: str = "nearest", channels=(4, 8, 8)) -> StylizationModel:
    torch.manual_seed(0)
    config = TransformerConfig(channels=channels, num_residual=1, num_styles=2, stem_kernel=3, output=output,
                               upsample=upsample)
    net = TransformerNet(config)
    for m in net.norms():
        m.gamma.data.uniform_(0.5, 1.5)
        m.beta.data.uniform_(-0.5, 0.5)
    return StylizationModel(net.eval(), [StyleInfo("udnie", "Udnie", "Picabia"), StyleInfo("plain")])


def _images(*sizes: tuple[int, int]) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return [torch.rand(1, 3, h, w, generator=g) for h, w in sizes]


@pytest.fixture(scope="module")
def tiny() -> StylizationModel:
    return _tiny_model()


@pytest.fixture(scope="module")
def fp32_file(tiny, tmp_path_factory) -> tuple[Path, dict]:
    spec = stylize_spec(tiny, images=_images((32, 48), (40, 24)))
    path = tmp_path_factory.mktemp("onnx") / "tiny.onnx"
    return path, export_graph(spec, path, "fp32", half_weights=False)


@pytest.mark.parametrize("output,upsample", [("sigmoid", "nearest"), ("clamp", "bilinear")])
def test_stylize_graph_matches_forward_and_norm_stats(output, upsample):
    net = _tiny_model(output, upsample).net
    graph = StylizeGraph(net)
    x, tile = _images((32, 40), (16, 24))
    style = torch.tensor([[0.3, 0.7]])
    s = stats_size(net)
    assert s == 2 * (4 + 8 + 8 + 2 * 8 + 8 + 4)
    with torch.no_grad():
        y, stats = graph(x, style, torch.zeros(1, s), torch.zeros(1))
        assert (y - net(x, style)).abs().max() < 1e-5
        norm = NormStats("collect")
        net(x, style, norm)
        flat = torch.cat([t.flatten(1) for pair in norm.stats for t in pair], 1)
        assert torch.allclose(stats, flat, rtol=1e-5, atol=1e-6)
        yt, _ = graph(tile, style, stats, torch.ones(1))  # frozen statistics: the NormStats apply path
        assert (yt - net(tile, style, norm.replay())).abs().max() < 1e-5
        yo, _ = graph(tile, style, stats, torch.zeros(1))
        assert (yo - yt).abs().max() > 1e-3  # use_stats=0 really ignores the given statistics


@pytest.mark.parametrize("kernel,block", [(9, 4), (9, 2), (5, 4), (3, 2)])
def test_unshuffled_conv_is_the_conv(kernel, block):
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(6, 3, kernel)
    fast = UnshuffledConv(conv, block)
    x = torch.randn(2, 6, 16 + kernel - 1, 24 + kernel - 1)
    with torch.no_grad():
        assert (fast(x) - conv(x)).abs().max() < 1e-5
    assert fast.weight.shape == conv.weight.shape  # the small kernel is what gets stored


def test_output_conv_block_follows_the_kernel():
    assert output_conv(TransformerNet(TransformerConfig(stem_kernel=9))).block == 4
    assert output_conv(TransformerNet(TransformerConfig(stem_kernel=3))).block == 2


def test_export_stores_the_small_output_kernel(fp32_file, tiny):
    import onnx

    model = onnx.load(str(fp32_file[0]))
    shapes = [tuple(t.dims) for t in model.graph.initializer]
    assert tuple(tiny.net.head.weight.shape) in shapes
    assert not any(len(s) == 4 and s[0] == 3 * 4 for s in shapes)  # no rearranged (12, C*4, K, K) copy
    ops = [n.op_type for n in model.graph.node]
    assert "SpaceToDepth" in ops and "Resize" not in ops  # fast unshuffle; nearest up-convs as sub-pixel convs
    tensors = {t for n in model.graph.node for t in [*n.input, *n.output]} - {"image", "style", "stats", "use_stats",
                                                                             "output", "stats_out", ""}
    assert tensors and max(len(t) for t in tensors) <= 5  # compact tensor names (t<hex>)


def test_export_fp32_validates_and_metadata_round_trips(fp32_file, tiny):
    path, meta = fp32_file
    v = meta["validation"]
    assert v["passed"] and v["max_abs"] < 1e-4 and v["psnr"] > 60 and v["stats_max_rel"] < 1e-4
    assert v["cases"] == 3  # two photos and one tile with frozen statistics
    read = read_onnx_metadata(path, "stylize")
    assert read == meta
    assert read["format"] == "painterly.onnx.stylize.v1" and read["precision"] == "fp32"
    assert [s["name"] for s in read["styles"]] == ["udnie", "plain"]
    assert read["stats_size"] == stats_size(tiny.net)
    assert TransformerConfig.from_dict(read["config"]) == tiny.net.config
    with pytest.raises(ModelError, match="not a decoder graph"):
        read_onnx_metadata(path, "decoder")


def test_exported_graph_takes_other_sizes_and_mixes(fp32_file, tiny):
    path, meta = fp32_file
    session, _ = open_session(path, "stylize", threads=1)
    (x,) = _images((20, 60))
    style = np.array([[0.5, 0.5]], np.float32)
    out, stats = session.run(None, {"image": x.numpy(), "style": style,
                                    "stats": np.zeros((1, meta["stats_size"]), np.float32),
                                    "use_stats": np.zeros(1, np.float32)})
    with torch.no_grad():
        ref = tiny.net(x, torch.from_numpy(style))
    assert out.shape == (1, 3, 20, 60) and np.abs(out - ref.numpy()).max() < 1e-4
    assert stats.shape == (1, meta["stats_size"])


def test_int8_export_of_a_tiny_model(tiny, tmp_path):
    import onnx

    spec = stylize_spec(tiny, images=_images((32, 48)))
    path = tmp_path / "tiny.int8.onnx"
    meta = export_graph(spec, path, "int8", calibration=_images((32, 32), (24, 40), (40, 40)), strict=False)
    ops = {n.op_type for n in onnx.load(str(path)).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    assert meta["precision"] == "int8" and meta["quantization"]["format"] == "QDQ"
    assert meta["validation"]["psnr"] > 15  # a random tiny net quantizes poorly, but it is still the same picture
    assert read_onnx_metadata(path)["precision"] == "int8"


def test_half_weights_halve_the_file_and_keep_the_numbers(tmp_path):
    spec = stylize_spec(_tiny_model(channels=(16, 32, 64)), images=_images((32, 32)))
    full = export_graph(spec, tmp_path / "full.onnx", "fp32", half_weights=False)
    half = export_graph(spec, tmp_path / "half.onnx", "fp32", half_weights=True)
    assert half["validation"]["max_abs"] < 2e-3 and full["validation"]["max_abs"] < 1e-4
    assert (tmp_path / "half.onnx").stat().st_size < 0.75 * (tmp_path / "full.onnx").stat().st_size


def test_decoder_graph_is_the_clamped_decoder():
    torch.manual_seed(0)
    dec = AdaINDecoder(AdaINDecoderConfig(in_channels=16, width=0.05)).eval()
    feats = [torch.rand(1, 16, 4, 6) * 3, torch.rand(1, 16, 5, 3)]
    with torch.no_grad():
        assert (DecoderGraph(dec)(feats[0]) - dec.body(feats[0]).clamp(0, 1)).abs().max() == 0
        assert (DecoderGraph(dec)(feats[0]) - dec(feats[0]).clamp(0, 1)).abs().max() < 1e-5  # sub-pixel form


@pytest.mark.slow
def test_encoder_and_decoder_export(tmp_path):
    from painterly.encoders import VGGEncoder

    torch.manual_seed(0)
    enc = VGGEncoder(["relu4_1"], weights=None)
    dec = AdaINDecoder(AdaINDecoderConfig(width=0.05)).eval()
    images = _images((32, 48))
    meta = export_graph(encoder_spec(enc, images=images), tmp_path / "enc.onnx", "fp32")
    assert meta["validation"]["passed"] and read_onnx_metadata(tmp_path / "enc.onnx", "encoder")["kind"] == "encoder"
    meta = export_graph(decoder_spec(dec, enc, size=32, images=images), tmp_path / "dec.onnx", "fp32")
    assert meta["validation"]["passed"]
    meta = export_graph(decoder_spec(dec, enc, size=32, images=images), tmp_path / "dec16.onnx", "fp16")
    assert meta["validation"]["passed"] and read_onnx_metadata(tmp_path / "dec16.onnx")["precision"] == "fp16"
    meta = export_graph(pipeline_spec(dec, enc, size=32, images=images), tmp_path / "pipe.onnx", "fp32")
    assert meta["validation"]["passed"] and meta["kind"] == "pipeline"


# --------------------------------------------------------------------------------------------
# Bad files and bad input
# --------------------------------------------------------------------------------------------


def test_corrupt_missing_and_foreign_onnx_files(tmp_path):
    import onnx
    from onnx import TensorProto, helper

    with pytest.raises(ModelError, match="not found"):
        read_onnx_metadata(tmp_path / "missing.onnx")
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x00\xffnot an onnx file" * 50)
    with pytest.raises(ModelError, match="not a valid ONNX file"):
        read_onnx_metadata(bad)
    with pytest.raises(ModelError):
        open_session(bad)
    node = helper.make_node("Relu", ["x"], ["y"])
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
    foreign = tmp_path / "foreign.onnx"
    onnx.save(helper.make_model(graph), str(foreign))
    with pytest.raises(ModelError, match="not a painterly model"):
        read_onnx_metadata(foreign)
    with pytest.raises(ModelError, match="not a painterly model"):
        open_session(foreign)


def test_truncated_export_is_refused(fp32_file, tmp_path):
    path, _ = fp32_file
    cut = tmp_path / "cut.onnx"
    cut.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(ModelError):
        read_onnx_metadata(cut)


def _cli(capsys, argv: list[str]) -> tuple[int, str]:
    rc = main(["export", *argv])
    return rc, capsys.readouterr().err.strip()


@pytest.fixture(scope="module")
def tiny_path(tiny, tmp_path_factory) -> Path:
    return save_model(tiny, tmp_path_factory.mktemp("m") / "tiny.safetensors")


@pytest.mark.parametrize("case", ["missing model", "corrupt model", "unknown kind", "bad precision", "not onnx",
                                  "parent is a file", "adain without part", "part for a stylization model",
                                  "calibration without int8"])
def test_cli_bad_input_is_one_line(case, tmp_path, capsys, tiny_path):
    out = tmp_path / "out.onnx"
    corrupt = tmp_path / "corrupt.safetensors"
    corrupt.write_bytes(b"garbage" * 10)
    (tmp_path / "file").write_text("x")
    argv = {"missing model": [str(tmp_path / "nope.safetensors"), "-o", str(out)],
            "corrupt model": [str(corrupt), "-o", str(out)],
            "unknown kind": ["vangogh", "-o", str(out)],
            "bad precision": [str(tiny_path), "-o", str(out), "--precision", "int4"],
            "not onnx": [str(tiny_path), "-o", str(tmp_path / "out.png")],
            "parent is a file": [str(tiny_path), "-o", str(tmp_path / "file" / "out.onnx")],
            "adain without part": ["adain", "-o", str(out)],
            "part for a stylization model": [str(tiny_path), "-o", str(out), "--part", "decoder"],
            "calibration without int8": [str(tiny_path), "-o", str(out), "--calibration", str(tmp_path)]}[case]
    rc, err = _cli(capsys, argv)
    assert rc == 2 and err.startswith("painterly: error:") and len(err.splitlines()) == 1, err
    assert not out.exists()


def test_cli_exports_a_model_file(tiny_path, tmp_path, capsys):
    out = tmp_path / "m.onnx"
    assert main(["export", str(tiny_path), "-o", str(out), "--size", "48"]) == 0
    printed = capsys.readouterr().out
    assert "wrote" in printed and "PSNR" in printed
    assert read_onnx_metadata(out, "stylize")["validation"]["passed"]
