"""VGG encoder and its weights: architecture, truncation, pooling, preprocessing, weight sources.

Random weights (``weights=None``) are used wherever real ones are not needed. Torchvision-format
files are fabricated with the right keys and shapes; their big conv kernels are stored as
expanded constants, so each file is a few KB. The URL tests serve them from a local
``http.server`` thread; nothing touches the network or the real user cache.
"""

from __future__ import annotations

import functools
import hashlib
import http.server
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from painterly.encoders import CAFFE, TORCHVISION, Preprocessing, VGGEncoder, VGGWeights, layer_names
from painterly.encoders import weights as weights_mod
from painterly.encoders.weights import VGG_BLOCKS, WIDTHS, conv_names, expected_shapes, fetch, pastiche_weights_path
from painterly.errors import ModelError

torch.set_num_threads(min(2, torch.get_num_threads()))


# --------------------------------------------------------------------------- helpers


def torchvision_state_dict(arch: str, seed: int = 0) -> dict[str, torch.Tensor]:
    """A state dict laid out like torchvision's ``vgg16``/``vgg19`` (features.N.*, classifier.*).

    conv1_1 gets random weights; deeper kernels are the constant ``0.001 * k`` (k = conv
    number) stored as an expanded view, so the mapping order is checkable and files stay tiny.
    """
    gen = torch.Generator().manual_seed(seed)
    sd: dict[str, torch.Tensor] = {}
    idx, c_in, k = 0, 3, 0
    for block, n in enumerate(VGG_BLOCKS[arch], start=1):
        for _ in range(n):
            c_out = WIDTHS[block]
            if k == 0:
                sd[f"features.{idx}.weight"] = torch.randn(c_out, c_in, 3, 3, generator=gen) * 0.1
            else:
                sd[f"features.{idx}.weight"] = torch.tensor(0.001 * k).expand(c_out, c_in, 3, 3)
            sd[f"features.{idx}.bias"] = torch.randn(c_out, generator=gen) * 0.01
            idx, c_in, k = idx + 2, c_out, k + 1  # conv, relu
        idx += 1  # pool
    sd["classifier.0.weight"] = torch.zeros(4, 8)  # ignored: not a conv of `features`
    sd["classifier.6.bias"] = torch.zeros(4)
    return sd


def save_state_dict(sd: dict, path: Path) -> Path:
    torch.save(sd, path)
    return path


@pytest.fixture
def vgg16_file(tmp_path) -> Path:
    return save_state_dict(torchvision_state_dict("vgg16"), tmp_path / "vgg16.pth")


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    root = tmp_path / "cache"
    monkeypatch.setenv("PAINTERLY_CACHE", str(root))
    return root


class Server:
    """A local HTTP server over a folder, counting the requests it answers."""

    def __init__(self, folder: Path) -> None:
        self.requests: list[str] = []
        outer = self

        class Handler(http.server.SimpleHTTPRequestHandler):
            def log_message(self, *args) -> None:  # keep pytest output clean
                pass

            def do_GET(self) -> None:
                outer.requests.append(self.path)
                super().do_GET()

        handler = functools.partial(Handler, directory=str(folder))
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server(tmp_path):
    folder = tmp_path / "www"
    folder.mkdir()
    srv = Server(folder)
    srv.folder = folder
    yield srv
    srv.close()


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --------------------------------------------------------------------------- architecture


@pytest.mark.parametrize("arch", ["vgg19", "vgg16"])
def test_layer_names(arch):
    names = layer_names(arch)
    n_conv = sum(VGG_BLOCKS[arch])
    assert len(names) == 2 * n_conv + 5
    assert names[:5] == ["conv1_1", "relu1_1", "conv1_2", "relu1_2", "pool1"]
    assert names[-1] == "pool5" and names[-2] == ("relu5_4" if arch == "vgg19" else "relu5_3")
    assert [n for n in names if n.startswith("conv")] == conv_names(arch)


def test_unknown_arch_and_layers():
    with pytest.raises(ValueError, match="vgg11"):
        layer_names("vgg11")
    with pytest.raises(ValueError, match="relu5_4"):
        VGGEncoder(["relu5_4"], weights=None, arch="vgg16")
    with pytest.raises(ValueError, match="pooling"):
        VGGEncoder(["relu1_1"], weights=None, pooling="min")
    with pytest.raises(ValueError):
        VGGEncoder([], weights=None)
    with pytest.raises(ValueError, match="does not match"):
        VGGEncoder(["relu1_1"], weights=VGGWeights(), arch="vgg16")


@pytest.mark.parametrize("arch", ["vgg19", "vgg16"])
def test_shapes_of_every_layer(arch):
    names = layer_names(arch)
    enc = VGGEncoder(names, weights=None, arch=arch)
    feats = enc(torch.rand(2, 3, 64, 48))
    assert set(feats) == set(names)
    for name in names:
        block = int(name[4])  # conv3_2 / relu3_2 / pool3 -> 3
        down = 2 ** (block if name.startswith("pool") else block - 1)
        assert feats[name].shape == (2, WIDTHS[block], 64 // down, 48 // down), name
        assert enc.out_channels[name] == WIDTHS[block]
        if name.startswith("relu"):
            assert feats[name].min() >= 0


def test_truncated_after_deepest_layer():
    enc = VGGEncoder(["relu2_1", "conv1_2"], weights=None)
    assert enc.layers_built == ["conv1_1", "relu1_1", "conv1_2", "relu1_2", "pool1", "conv2_1", "relu2_1"]
    n_params = sum(p.numel() for p in enc.parameters())
    assert n_params == (64 * 3 * 9 + 64) + (64 * 64 * 9 + 64) + (128 * 64 * 9 + 128)
    feats = enc(torch.rand(1, 3, 16, 16))
    assert set(feats) == {"relu2_1", "conv1_2"}
    assert set(enc(torch.rand(1, 3, 16, 16), ["relu1_1"])) == {"relu1_1"}
    with pytest.raises(ValueError, match="relu3_1"):
        enc(torch.rand(1, 3, 16, 16), ["relu3_1"])


@pytest.mark.parametrize("pooling,ref", [("max", F.max_pool2d), ("avg", F.avg_pool2d)])
def test_pooling(pooling, ref):
    torch.manual_seed(0)
    enc = VGGEncoder(["relu1_2", "pool1"], weights=None, pooling=pooling)
    feats = enc(torch.rand(1, 3, 8, 10))
    torch.testing.assert_close(feats["pool1"], ref(feats["relu1_2"], 2, 2))
    other = F.avg_pool2d if ref is F.max_pool2d else F.max_pool2d
    assert not torch.allclose(feats["pool1"], other(feats["relu1_2"], 2, 2))


def test_frozen_but_differentiable_wrt_input():
    enc = VGGEncoder(["relu2_1"], weights=None)
    assert all(not p.requires_grad for p in enc.parameters())
    enc.train()
    assert not enc.training
    x = torch.rand(1, 3, 16, 16, requires_grad=True)
    enc(x)["relu2_1"].sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert all(p.grad is None for p in enc.parameters())


# --------------------------------------------------------------------------- preprocessing


@pytest.mark.parametrize("prep", [CAFFE, TORCHVISION], ids=["caffe", "torchvision"])
def test_preprocessing_round_trip(prep: Preprocessing):
    x = torch.rand(2, 3, 5, 7, dtype=torch.float64)
    torch.testing.assert_close(prep.invert(prep.apply(x)), x)
    y = torch.randn(2, 3, 5, 7, dtype=torch.float64) * 50
    torch.testing.assert_close(prep.apply(prep.invert(y)), y)


def test_caffe_known_pixel():
    x = torch.tensor([1.0, 0.5, 0.0]).view(1, 3, 1, 1)  # RGB
    y = CAFFE.apply(x).flatten().tolist()
    # BGR order, 0-255, minus the Caffe mean (103.939, 116.779, 123.68) given in BGR order
    assert y == pytest.approx([0.0 - 103.939, 127.5 - 116.779, 255.0 - 123.68])


def test_torchvision_known_pixel():
    x = torch.tensor([1.0, 0.5, 0.0]).view(1, 3, 1, 1)
    y = TORCHVISION.apply(x).flatten().tolist()
    assert y == pytest.approx([(1 - 0.485) / 0.229, (0.5 - 0.456) / 0.224, (0 - 0.406) / 0.225])


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_caffe_matches_pastiche_preprocessing(tmp_path):
    pastiche = pytest.importorskip("pastiche.pastiche")
    from PIL import Image

    from painterly.imageio import to_tensor

    arr = np.random.default_rng(0).integers(0, 256, (6, 8, 3), dtype=np.uint8)
    Image.fromarray(arr).save(tmp_path / "a.png")
    theirs = pastiche.load_image(str(tmp_path / "a.png"))
    ours = CAFFE.apply(to_tensor(Image.fromarray(arr)))
    torch.testing.assert_close(ours, theirs, atol=1e-4, rtol=0)


def test_encoder_binds_preprocessing(vgg16_file):
    assert VGGWeights().preprocessing == CAFFE
    assert VGGWeights(str(vgg16_file), arch="vgg16").preprocessing == TORCHVISION
    enc = VGGEncoder(["conv1_1"], weights=VGGWeights(str(vgg16_file), arch="vgg16"))
    x = torch.rand(1, 3, 6, 6)
    w, b = enc.body.conv1_1.weight, enc.body.conv1_1.bias
    torch.testing.assert_close(enc(x)["conv1_1"], F.conv2d(TORCHVISION.apply(x), w, b, padding=1))
    assert VGGEncoder(["conv1_1"], weights=None).preprocess(x) is x


# --------------------------------------------------------------------------- bundled (pastiche) weights


def test_pastiche_weights_load():
    sd = VGGWeights().state_dict()
    assert set(sd) == set(expected_shapes("vgg19"))
    for key, shape in expected_shapes("vgg19").items():
        assert tuple(sd[key].shape) == shape and sd[key].dtype == torch.float32
        assert torch.isfinite(sd[key]).all()
    assert sd["conv1_1.weight"].std() > 0.01  # real weights, not zeros


def test_pastiche_dequantization_matches_pastiche():
    """Our dequantized conv1_1/conv1_2 equal what pastiche's own loader computes (its formula)."""
    raw = torch.load(pastiche_weights_path(), map_location="cpu", weights_only=True)
    sd = VGGWeights().state_dict()
    for ours, theirs in (("conv1_1", "block1_conv1"), ("conv1_2", "block1_conv2")):
        q = raw[f"{theirs}_W_q"]
        ref = raw[f"{theirs}_W_table"][q.flatten().tolist()].reshape(q.shape)
        torch.testing.assert_close(sd[f"{ours}.weight"], ref.float())
        torch.testing.assert_close(sd[f"{ours}.bias"], raw[f"{theirs}_b"].float())


def test_forward_is_deterministic():
    x = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    a = VGGEncoder(["relu1_1", "relu3_1"])
    b = VGGEncoder(["relu3_1", "relu1_1"])
    fa, fa2, fb = a(x), a(x), b(x)
    for name in ("relu1_1", "relu3_1"):
        assert torch.equal(fa[name], fa2[name])
        assert torch.equal(fa[name], fb[name])
    assert fa["relu3_1"].abs().sum() > 0


def test_weights_loaded_once_and_shared():
    w1, w2 = VGGWeights().state_dict(), VGGWeights().state_dict()
    assert w1 is not w2  # callers get their own dict ...
    assert all(w1[k] is w2[k] for k in w1)  # ... of the same tensors
    e1, e2 = VGGEncoder(["relu1_1"]), VGGEncoder(["relu2_1"], pooling="avg")
    assert e1.body.conv1_1.weight.data_ptr() == e2.body.conv1_1.weight.data_ptr() == w1["conv1_1.weight"].data_ptr()
    assert not w1["conv1_1.weight"].requires_grad


def test_file_decoded_once_per_process(vgg16_file, monkeypatch):
    calls = []
    real = weights_mod._torch_load

    def counting(path):
        calls.append(path)
        return real(path)

    monkeypatch.setattr(weights_mod, "_torch_load", counting)
    w = VGGWeights(str(vgg16_file), arch="vgg16")
    VGGEncoder(["relu1_1"], weights=w)
    VGGEncoder(["relu5_3"], weights=VGGWeights(str(vgg16_file), arch="vgg16"))
    assert len(calls) == 1


# --------------------------------------------------------------------------- torchvision files


@pytest.mark.parametrize("arch", ["vgg16", "vgg19"])
def test_torchvision_file(tmp_path, arch):
    raw = torchvision_state_dict(arch)
    path = save_state_dict(raw, tmp_path / f"{arch}.pth")
    sd = VGGWeights(str(path), arch=arch).state_dict()
    assert set(sd) == set(expected_shapes(arch))
    torch.testing.assert_close(sd["conv1_1.weight"], raw["features.0.weight"])
    torch.testing.assert_close(sd["conv1_1.bias"], raw["features.0.bias"])
    for k, name in enumerate(conv_names(arch)[1:], start=1):  # order: constant 0.001 * k
        assert sd[f"{name}.weight"].is_contiguous()
        assert sd[f"{name}.weight"][0, 0, 0, 0].item() == pytest.approx(0.001 * k), name
    enc = VGGEncoder(layer_names(arch)[-2:], weights=VGGWeights(str(path), arch=arch))
    assert enc.arch == arch
    feats = enc(torch.rand(1, 3, 32, 32))
    assert feats[layer_names(arch)[-1]].shape == (1, 512, 1, 1)


def test_torchvision_variants(tmp_path):
    raw = torchvision_state_dict("vgg16")
    wrapped = {"state_dict": {f"module.{k}": v for k, v in raw.items()}}
    features_only = {k[len("features."):]: v for k, v in raw.items() if k.startswith("features.")}
    half = {k: v.half() for k, v in raw.items()}
    for name, sd in (("wrapped", wrapped), ("features", features_only), ("half", half)):
        path = save_state_dict(sd, tmp_path / f"{name}.pth")
        out = VGGWeights(str(path), arch="vgg16").state_dict()
        assert out["conv1_1.weight"].dtype == torch.float32
        torch.testing.assert_close(out["conv1_1.bias"], raw["features.0.bias"], atol=1e-3, rtol=1e-3)


def test_safetensors_file(tmp_path):
    from safetensors.torch import save_file

    raw = {k: v.contiguous() for k, v in torchvision_state_dict("vgg16").items()}
    save_file(raw, str(tmp_path / "vgg16.safetensors"))
    sd = VGGWeights(str(tmp_path / "vgg16.safetensors"), arch="vgg16").state_dict()
    torch.testing.assert_close(sd["conv1_1.weight"], raw["features.0.weight"])


def test_local_file_sha256(vgg16_file):
    good = sha256(vgg16_file)
    VGGWeights(str(vgg16_file), arch="vgg16", sha256=good.upper()).state_dict()
    with pytest.raises(ModelError, match="checksum mismatch") as info:
        VGGWeights(str(vgg16_file), arch="vgg16", sha256="0" * 64).state_dict()
    assert str(vgg16_file) in str(info.value)


def _corrupt_files(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    good = save_state_dict(torchvision_state_dict("vgg16"), tmp_path / "good.pth")
    data = good.read_bytes()
    files = {
        "garbage": (b"\x00\x01 definitely not a torch file" * 10, "corrupt"),
        "truncated": (data[: len(data) // 2], "corrupt"),
        "empty": (b"", "corrupt"),
        "text": (b"hello world\n", "corrupt"),
    }
    out = {}
    for name, (blob, fragment) in files.items():
        (tmp_path / f"{name}.pth").write_bytes(blob)
        out[name] = (tmp_path / f"{name}.pth", fragment)
    sd = torchvision_state_dict("vgg16")
    sd["features.28.weight"] = torch.zeros(512, 256, 3, 3)
    out["wrong_shape"] = (save_state_dict(sd, tmp_path / "wrong_shape.pth"), "shape")
    out["wrong_arch"] = (save_state_dict(torchvision_state_dict("vgg19"), tmp_path / "wrong_arch.pth"), "16 conv")
    out["tensor"] = (save_state_dict(torch.zeros(3), tmp_path / "tensor.pth"), "not a state dict")
    sd = torchvision_state_dict("vgg16")
    del sd["features.0.bias"]
    out["no_bias"] = (save_state_dict(sd, tmp_path / "no_bias.pth"), "bias")
    return out


def test_corrupt_weight_files(tmp_path):
    for name, (path, fragment) in _corrupt_files(tmp_path).items():
        with pytest.raises(ModelError) as info:
            VGGWeights(str(path), arch="vgg16").state_dict()
        msg = str(info.value)
        assert str(path) in msg and fragment in msg and "\n" not in msg, (name, msg)


def test_missing_weights_file_or_directory(tmp_path):
    with pytest.raises(ModelError, match="not found"):
        VGGWeights(str(tmp_path / "nope.pth"), arch="vgg16").state_dict()
    with pytest.raises(ModelError, match="not a file"):
        VGGWeights(str(tmp_path), arch="vgg16").state_dict()
    with pytest.raises(ModelError, match="vgg11"):
        VGGWeights(str(tmp_path / "x.pth"), arch="vgg11").state_dict()
    with pytest.raises(ModelError, match="VGG19"):
        VGGWeights(arch="vgg16").state_dict()


class _Evil:
    def __reduce__(self):
        return (print, ("pwned",))


def test_pickled_code_is_refused(tmp_path, capsys):
    """weights_only=True: a pickle that would run code is a ModelError, not an execution."""
    torch.save({"features.0.weight": _Evil()}, tmp_path / "evil.pth")
    with pytest.raises(ModelError, match="corrupt"):
        VGGWeights(str(tmp_path / "evil.pth"), arch="vgg16").state_dict()
    assert "pwned" not in capsys.readouterr().out


# --------------------------------------------------------------------------- URLs


def test_url_download_cached_and_checked(server, cache):
    src = save_state_dict(torchvision_state_dict("vgg16"), server.folder / "tmp.pth")
    digest = sha256(src)
    name = f"vgg16-{digest[:8]}.pth"  # torchvision naming: the hash prefix is checked automatically
    src.rename(server.folder / name)
    url = f"{server.url}/{name}"

    path = fetch(url)
    assert path.is_file() and cache in path.parents and path.name == name
    assert sha256(path) == digest
    assert fetch(url) == path and len(server.requests) == 1  # served from the cache

    sd = VGGWeights(url, arch="vgg16").state_dict()
    assert set(sd) == set(expected_shapes("vgg16"))
    assert VGGWeights(url, arch="vgg16").preprocessing == TORCHVISION
    assert not [p for p in path.parent.iterdir() if p.name != name]  # no temp files left


def test_url_explicit_sha256(server, cache):
    src = save_state_dict(torchvision_state_dict("vgg16"), server.folder / "weights.pth")
    url = f"{server.url}/weights.pth"
    assert fetch(url, sha256=sha256(src)).is_file()


def test_url_checksum_mismatch(server, cache):
    save_state_dict(torchvision_state_dict("vgg16"), server.folder / "vgg16-00000000.pth")
    url = f"{server.url}/vgg16-00000000.pth"
    with pytest.raises(ModelError, match="checksum mismatch") as info:
        fetch(url)
    assert url in str(info.value)
    with pytest.raises(ModelError, match="checksum mismatch"):
        VGGWeights(url, arch="vgg16", sha256="ab" * 32).state_dict()
    assert not [p for p in cache.rglob("*") if p.is_file()]  # nothing kept, no temp file


def test_url_corrupt_cache_is_downloaded_again(server, cache):
    src = save_state_dict(torchvision_state_dict("vgg16"), server.folder / "w.pth")
    url, digest = f"{server.url}/w.pth", sha256(src)
    path = fetch(url, sha256=digest)
    path.write_bytes(b"bit rot")
    assert fetch(url, sha256=digest) == path and sha256(path) == digest
    assert len(server.requests) == 2


def test_url_corrupt_download(server, cache):
    (server.folder / "bad.pth").write_bytes(b"<html>not found</html>")
    with pytest.raises(ModelError, match="corrupt"):
        VGGWeights(f"{server.url}/bad.pth", arch="vgg16").state_dict()


def test_url_http_error(server, cache):
    with pytest.raises(ModelError, match="cannot download") as info:
        fetch(f"{server.url}/missing.pth")
    assert "404" in str(info.value)
    assert not [p for p in cache.rglob("*") if p.is_file()]


def test_same_file_name_different_urls_do_not_collide(server, cache):
    (server.folder / "a").mkdir()
    (server.folder / "b").mkdir()
    (server.folder / "a" / "w.pth").write_bytes(b"first")
    (server.folder / "b" / "w.pth").write_bytes(b"second")
    pa, pb = fetch(f"{server.url}/a/w.pth"), fetch(f"{server.url}/b/w.pth")
    assert pa != pb and pa.read_bytes() == b"first" and pb.read_bytes() == b"second"


def test_cache_dir_default(monkeypatch, tmp_path):
    monkeypatch.delenv("PAINTERLY_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert weights_mod.cache_dir() == tmp_path / "xdg" / "painterly"
    monkeypatch.setenv("PAINTERLY_CACHE", str(tmp_path / "explicit"))
    assert weights_mod.cache_dir() == tmp_path / "explicit"
