"""painterly serve: the HTTP API (limits, errors, queue), a quick bounded load test, and the page in Chromium."""

from __future__ import annotations

import asyncio
import io
import os
import shutil
import sys
import threading
import time
import zlib
from pathlib import Path

import pytest
from PIL import Image

pytest.importorskip("fastapi")
pytest.importorskip("multipart")
pytest.importorskip("httpx")

from fastapi.testclient import TestClient  # noqa: E402

from painterly.serve import ServeSettings, create_app  # noqa: E402
from painterly.serve.limits import InferencePool, JobTimeout, QueueFull  # noqa: E402
from painterly.serve.painter import Painter  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))


def png(w: int = 96, h: int = 64, color=(90, 140, 200), mode: str = "RGB") -> bytes:
    buf = io.BytesIO()
    Image.new(mode, (w, h), color if mode == "RGB" else 0).save(buf, format="PNG")
    return buf.getvalue()


def bomb_png(side: int = 20_000) -> bytes:
    """A valid PNG header claiming side x side pixels, with a tiny (bogus) body: cheap to make, huge to decode."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return len(data).to_bytes(4, "big") + kind + data + zlib.crc32(kind + data).to_bytes(4, "big")

    header = side.to_bytes(4, "big") * 2 + bytes([8, 0, 0, 0, 0])  # 8-bit grayscale
    body = chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 1024)) + chunk(b"IEND", b"")
    return b"\x89PNG\r\n\x1a\n" + body


def decoded(response) -> Image.Image:
    return Image.open(io.BytesIO(response.content))


def settings(**kw) -> ServeSettings:
    base = {"warmup": False, "max_size": 256, "default_size": 64, "max_upload_bytes": 200_000,
            "max_pixels": 4_000_000, "slots": 1, "threads": 1, "queue_size": 4, "timeout_s": 60.0,
            "web_dir": "/nonexistent"}
    return ServeSettings(**{**base, **kw})


@pytest.fixture(scope="module")
def client():
    with TestClient(create_app(settings())) as c:
        yield c


def form(style: str = "udnie", **fields) -> dict:
    return {"style": style, "size": "64", **{k: str(v) for k, v in fields.items()}}


def photo(data: bytes | None = None) -> dict:
    return {"photo": ("photo.png", png() if data is None else data, "image/png")}


def assert_json_error(r, status: int) -> str:
    assert r.status_code == status, (r.status_code, r.text)
    assert r.headers["content-type"].startswith("application/json")
    message = r.json()["error"]
    assert isinstance(message, str) and message
    return message


# ---------------------------------------------------------------------------------------------
# The API
# ---------------------------------------------------------------------------------------------


def test_health_config_and_docs(client):
    health = client.get("/api/v1/health").json()
    assert health["status"] == "ok" and health["slots"] == 1 and health["queue_size"] == 4
    config = client.get("/api/v1/config").json()
    assert config["max_size"] == 256 and config["default_size"] == 64 and config["device"] == {"available": False}
    assert "lake" in config["samples"]
    assert client.get("/docs").status_code == 200
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/api/v1/stylize", "/api/v1/transfer", "/api/v1/styles", "/api/v1/health"} <= set(paths)


def test_page_and_static_files_are_served(client):
    page = client.get("/")
    assert page.status_code == 200 and "painterly" in page.text and "/static/app.js" in page.text
    for name in ("app.js", "device.js", "style.css"):
        assert client.get(f"/static/{name}").status_code == 200
    assert "cdn" not in page.text.lower() and "https://" not in page.text  # works offline


def test_styles_have_thumbnails(client):
    styles = client.get("/api/v1/styles").json()
    names = [s["name"] for s in styles]
    assert "starry-night" in names and all(s["title"] for s in styles)
    r = client.get(styles[0]["thumbnail"])
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
    assert max(decoded(r).size) <= 192
    paintings = client.get("/api/v1/paintings").json()
    assert client.get(paintings[0]["thumbnail"]).status_code == 200
    assert_json_error(client.get("/api/v1/paintings/nope/thumbnail"), 404)
    assert_json_error(client.get("/api/v1/styles/nope/thumbnail"), 404)
    assert client.get("/api/v1/samples/lake").headers["content-type"] == "image/jpeg"


def test_stylize_returns_an_image(client):
    r = client.post("/api/v1/stylize", files=photo(), data=form())
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
    assert decoded(r).size == (64, 43)
    assert float(r.headers["x-painterly-seconds"]) > 0


def test_stylize_mix_strength_color_png(client):
    base = client.post("/api/v1/stylize", files=photo(), data=form(format="png"))
    mixed = client.post("/api/v1/stylize", files=photo(),
                        data=form(style2="the-scream", mix=0.5, strength=0.7, preserve_color="luminance", format="png"))
    assert mixed.status_code == 200 and mixed.headers["content-type"] == "image/png"
    assert decoded(mixed).size == decoded(base).size and mixed.content != base.content
    none = client.post("/api/v1/stylize", files=photo(), data=form(strength=0, format="png"))
    assert decoded(none).getpixel((10, 10)) == (90, 140, 200)  # strength 0: the photo itself


def test_results_are_never_upscaled(client):
    r = client.post("/api/v1/stylize", files=photo(png(40, 30)), data={"style": "udnie"})
    assert decoded(r).size == (40, 30)
    for route, data in (("stylize", {"style": "udnie", "size": "256"}), ("transfer", {"painting_name": "udnie"})):
        r = client.post(f"/api/v1/{route}", files=photo(png(3, 5)), data=data)  # tinier than the networks' minimum
        assert r.status_code == 200 and decoded(r).size == (3, 5), (route, r.text)


def test_transfer_upload_and_bundled_painting(client):
    r = client.post("/api/v1/transfer", data={"alpha": "0.6", "size": "64"},
                    files={**photo(), "painting": ("p.png", png(80, 80, (200, 60, 30)), "image/png")})
    assert r.status_code == 200 and decoded(r).size == (64, 43)
    r = client.post("/api/v1/transfer", files=photo(),
                    data={"painting_name": "the-scream", "size": "64", "format": "webp"})
    assert r.status_code == 200 and r.headers["content-type"] == "image/webp"


def truncated_jpeg() -> bytes:
    buf = io.BytesIO()
    Image.effect_noise((128, 128), 40).convert("RGB").save(buf, format="JPEG")
    return buf.getvalue()[:600]


@pytest.mark.parametrize(("name", "files", "data", "status"), [
    ("not an image", photo(b"hello, this is text"), form(), 400),
    ("empty file", photo(b""), form(), 400),
    ("truncated", photo(truncated_jpeg()), form(), 400),
    ("decompression bomb", photo(bomb_png()), form(), 413),
    ("too many pixels", photo(png(2100, 2000, mode="L")), form(), 413),
    ("body too large", photo(os.urandom(300_000)), form(), 413),
    ("missing photo", None, form(), 422),
    ("missing style", photo(), {"size": "64"}, 422),
    ("unknown style", photo(), form("van-gogh-ish"), 422),
    ("unknown second style", photo(), form(style2="nope"), 422),
    ("strength out of range", photo(), form(strength=1.5), 422),
    ("strength not a number", photo(), form(strength="lots"), 422),
    ("size over the limit", photo(), {"style": "udnie", "size": "5000"}, 422),
    ("size too small", photo(), {"style": "udnie", "size": "3"}, 422),
    ("unknown format", photo(), form(format="gif"), 422),
    ("unknown colour mode", photo(), form(preserve_color="sepia"), 422),
])
def test_bad_stylize_requests_get_4xx_json(client, name, files, data, status):
    r = client.post("/api/v1/stylize", files=files, data=data) if files else client.post("/api/v1/stylize", data=data)
    message = assert_json_error(r, status)
    assert "/" not in message.replace("/api/v1/", "")  # no server paths in messages


@pytest.mark.parametrize(("files", "data", "status"), [
    (photo(), {"size": "64"}, 422),  # neither a painting nor a name
    ({**photo(), "painting": ("p.png", png(), "image/png")}, {"painting_name": "udnie"}, 422),  # both
    (photo(), {"painting_name": "nope"}, 422),
    ({**photo(), "painting": ("p.png", b"GIF89a garbage", "image/gif")}, {}, 400),
    ({**photo(), "painting": ("p.png", bomb_png(), "image/png")}, {}, 413),
    (photo(), {"painting_name": "udnie", "alpha": "-1"}, 422),
])
def test_bad_transfer_requests_get_4xx_json(client, files, data, status):
    assert_json_error(client.post("/api/v1/transfer", files=files, data=data), status)


def test_streamed_body_over_the_limit_gets_413(client):
    def chunks():
        for _ in range(30):
            yield b"x" * 10_000  # no Content-Length: counted as it arrives

    r = client.post("/api/v1/stylize", content=chunks(),
                    headers={"content-type": "multipart/form-data; boundary=b"})
    assert_json_error(r, 413)


def test_unknown_route_and_method_are_json(client):
    assert_json_error(client.get("/api/v1/nothing"), 404)
    assert_json_error(client.get("/api/v1/stylize"), 405)


def test_nothing_is_written_to_the_working_folder(client, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    client.post("/api/v1/stylize", files=photo(), data=form())
    client.post("/api/v1/stylize", files=photo(b"junk"), data=form())
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------------------------------
# Queue, slots and timeouts
# ---------------------------------------------------------------------------------------------


class BlockingPainter(Painter):
    """Stylize waits for ``release`` (a job that occupies its slot)."""

    def __init__(self) -> None:
        super().__init__(max_pixels=1_000_000)
        self.release = threading.Event()

    def stylize(self, job) -> bytes:
        self.release.wait(10)
        return png()


def test_full_queue_gets_429_with_retry_after():
    painter = BlockingPainter()
    app = create_app(settings(queue_size=1), painter)
    pool: InferencePool = app.state.pool
    with TestClient(app) as c:
        for _ in range(pool.capacity):  # one running, one queued: full
            pool.submit(painter.release.wait, 10)
        r = c.post("/api/v1/stylize", files=photo(), data=form())
        assert_json_error(r, 429)
        assert int(r.headers["retry-after"]) >= 1
        assert c.get("/api/v1/health").json()["rejected"] == 1
        painter.release.set()
        deadline = time.monotonic() + 10
        while c.get("/api/v1/health").json()["queued"] + c.get("/api/v1/health").json()["running"]:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        assert c.post("/api/v1/stylize", files=photo(), data=form()).status_code == 200


def test_timeout_gets_503_with_retry_after():
    painter = BlockingPainter()
    with TestClient(create_app(settings(timeout_s=0.2), painter)) as c:
        r = c.post("/api/v1/stylize", files=photo(), data=form())
        painter.release.set()
    assert_json_error(r, 503)
    assert int(r.headers["retry-after"]) >= 1


def test_pool_bound_holds_while_timed_out_jobs_still_run():
    pool = InferencePool(slots=1, threads=1, queue_size=0, timeout_s=0.05)
    release = threading.Event()

    async def scenario():
        with pytest.raises(JobTimeout):
            await pool.run(release.wait, 5)
        with pytest.raises(QueueFull):  # the timed out job still holds the only slot
            pool.submit(time.sleep, 0)
        release.set()
        await asyncio.sleep(0.2)
        return await pool.run(lambda: 42)

    try:
        assert asyncio.run(scenario()) == 42
        assert pool.stats()["running"] == 0 and pool.stats()["queued"] == 0
    finally:
        release.set()
        pool.shutdown()


def test_settings_share_the_cores():
    s = ServeSettings(workers=2, slots=2, threads=0)
    assert s.slot_threads == max(1, s.cores // 4)
    assert ServeSettings(max_size=512, default_size=768).default_size == 512
    assert ServeSettings.from_json(s.to_json()) == s
    from painterly.errors import PainterlyError

    with pytest.raises(PainterlyError):
        ServeSettings(queue_size=-1)


def test_cli_has_serve_flags():
    from painterly.cli import build_parser

    args = build_parser().parse_args(["serve", "--port", "9000", "--workers", "2", "--max-upload-bytes", "1000",
                                      "--timeout-s", "5", "--queue-size", "3", "--no-warmup"])
    assert (args.port, args.workers, args.max_upload_bytes, args.timeout_s, args.queue_size, args.warmup) == (
        9000, 2, 1000, 5.0, 3, False)


# ---------------------------------------------------------------------------------------------
# On loopback: a quick bounded load test, and the page in Chromium
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def live_url():
    pytest.importorskip("uvicorn")
    from painterly.serve.live import running

    with running(create_app(settings(queue_size=2, max_upload_bytes=2_000_000))) as url:
        yield url


def test_quick_load_has_no_5xx(live_url):
    from bench_serve import run_load

    res = asyncio.run(run_load(live_url, clients=8, requests=16, duration_s=60, size=64, photo_side=128,
                               max_backoff_s=0.2))
    s = res.summary()
    assert s["five_xx"] == 0 and s["transport_errors"] == 0 and s["client_errors"] == 0
    assert s["ok"] >= 1 and s["ok"] + s["too_busy"] == s["sent"]
    assert s["too_busy"] >= 1  # 8 clients against 1 slot + 2 queued: some are turned away


CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.mark.browser
def test_page_in_chromium(live_url, tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api")
    if not shutil.which(CHROMIUM) and not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM}")
    photo_file = tmp_path / "photo.jpg"
    with Image.open(ROOT / "painterly" / "assets" / "photos" / "lake.jpg") as img:
        img.convert("RGB").resize((192, 108)).save(photo_file)
    errors: list[str] = []
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 820}, accept_downloads=True)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(live_url + "/")
            page.wait_for_selector(".style-card[data-style='starry-night']")
            page.set_input_files("#photo-input", str(photo_file))  # upload
            page.wait_for_function("document.getElementById('before').src.startsWith('blob:')")
            page.select_option("#size", "256")  # never upscaled: stays 192 px
            page.click(".style-card[data-style='starry-night']")  # choose a style: painted at once
            page.wait_for_selector("#after:not([hidden])", timeout=60_000)
            page.wait_for_function("document.getElementById('busy').hidden", timeout=60_000)
            assert page.get_attribute(".style-card[data-style='starry-night']", "aria-selected") == "true"
            page.locator("#strength").fill("60")  # move a slider: painted again
            page.wait_for_function("document.getElementById('busy').hidden", timeout=60_000)
            page.locator("#compare").fill("30")  # the before/after slider
            assert "30%" in page.eval_on_selector("#viewer", "v => v.style.getPropertyValue('--pos')")
            assert page.is_hidden("#alert")
            with page.expect_download() as info:  # download
                page.click("#download")
            saved = tmp_path / info.value.suggested_filename
            info.value.save_as(saved)
            assert saved.name.endswith(".jpg") and Image.open(saved).size == (192, 108)
            # a bad upload is reported on the page, not as a crash
            bad = tmp_path / "notes.png"
            bad.write_bytes(b"not an image at all")
            page.set_input_files("#photo-input", str(bad))
            page.wait_for_selector("#alert:not([hidden])", timeout=60_000)
            assert "not an image" in page.inner_text("#alert-text")
            page.click("#alert-close")
            page.set_input_files("#photo-input", str(photo_file))
            page.wait_for_selector("#after:not([hidden])", timeout=60_000)
            page.wait_for_function("document.getElementById('busy').hidden", timeout=60_000)
            # any painting (transfer), then back to the gallery for the screenshot
            page.click("#tab-painting")
            painting_file = tmp_path / "painting.png"
            with Image.open(ROOT / "painterly" / "assets" / "styles" / "the-scream.jpg") as img:
                img.convert("RGB").resize((96, 120)).save(painting_file)
            page.evaluate("document.getElementById('after').removeAttribute('src')")
            page.set_input_files("#painting-input", str(painting_file))
            page.wait_for_function("document.getElementById('after').src.startsWith('blob:')", timeout=60_000)
            page.wait_for_function("document.getElementById('busy').hidden", timeout=60_000)
            assert page.is_hidden("#alert")
            page.click("#tab-gallery")
            page.click(".style-card[data-style='starry-night']")
            page.wait_for_function("document.getElementById('busy').hidden", timeout=60_000)
            page.locator("#compare").fill("45")
            page.evaluate("window.scrollTo(0, 0)")
            shot = os.environ.get("PAINTERLY_SERVE_SCREENSHOT")  # docs/serve_page.png is made this way
            if shot:
                page.screenshot(path=shot, full_page=True)
        finally:
            browser.close()
    assert not errors, errors


# ---------------------------------------------------------------------------------------------
# "Run on this device": offered only when the built web page (onnxruntime-web) and the ONNX model exist
# ---------------------------------------------------------------------------------------------


def fake_web_dir(folder: Path) -> Path:
    """A web/ folder with a vendored ort script and a (trivial) ONNX file carrying painterly's metadata."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    (folder / "vendor").mkdir(parents=True)
    (folder / "vendor" / "ort.wasm.min.js").write_text("/* onnxruntime-web */")
    graph = helper.make_graph([helper.make_node("Identity", ["image"], ["output"])], "g",
                              [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, None, None])],
                              [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 3, None, None])])
    model = helper.make_model(graph)
    helper.set_model_props(model, {"painterly": '{"styles": [{"name": "udnie"}, {"name": "the-scream"}], '
                                                '"stats_size": 8}'})
    (folder / "models").mkdir()
    onnx.save(model, str(folder / "models" / "multistyle.int8.onnx"))
    return folder


def test_device_option_offered_when_the_web_page_is_built(tmp_path, monkeypatch):
    import painterly.serve.device as device_module

    monkeypatch.setattr(device_module, "PRETRAINED", tmp_path / "no-pretrained")  # use the web folder's model
    web = fake_web_dir(tmp_path / "web")
    with TestClient(create_app(settings(web_dir=str(web)))) as c:
        device = c.get("/api/v1/config").json()["device"]
        assert device["available"] and device["styles"] == ["udnie", "the-scream"] and device["stats_size"] == 8
        assert c.get(device["script"]).status_code == 200
        model = c.get(device["model"])
        assert model.status_code == 200 and model.content == (web / "models" / "multistyle.int8.onnx").read_bytes()
        page = c.get("/")
        assert page.headers["cross-origin-embedder-policy"] == "require-corp"  # threads in onnxruntime-web
    with TestClient(create_app(settings(web_dir=str(tmp_path / "missing")))) as c:
        assert c.get("/api/v1/config").json()["device"] == {"available": False}
        assert_json_error(c.get("/api/v1/device/model"), 404)
        assert c.get("/device/vendor/ort.wasm.min.js").status_code == 404


@pytest.mark.browser
def test_page_runs_on_the_device(tmp_path):
    """With the web page built (``make web``) and the int8 ONNX model shipped, the page paints in the browser.
    PAINTERLY_TEST_WEB_DIR may point at another built web folder."""
    sync_api = pytest.importorskip("playwright.sync_api")
    pytest.importorskip("uvicorn")
    from painterly.serve.device import find_assets
    from painterly.serve.live import running

    web = os.environ.get("PAINTERLY_TEST_WEB_DIR")
    s = settings(web_dir=web) if web else settings(web_dir=None)
    if find_assets(s.web_path()) is None:
        pytest.skip("the on-device page is not built (web/vendor) or the ONNX model is missing")
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM}")
    errors: list[str] = []
    with running(create_app(s)) as url, sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(url + "/")
            page.wait_for_function("document.getElementById('before').src.startsWith('blob:')")
            assert page.is_visible("#where-row")
            page.select_option("#size", "64")
            page.check("input[name=where][value=device]")
            page.click(".style-card[data-style='udnie']")
            page.wait_for_function("document.getElementById('after').src.startsWith('blob:')", timeout=120_000)
            assert "on this device" in page.inner_text("#status") and page.is_hidden("#alert")
        finally:
            browser.close()
    assert not errors, errors
