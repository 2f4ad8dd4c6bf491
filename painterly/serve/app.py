"""The HTTP app: the page at ``/``, the API under ``/api/v1`` (OpenAPI docs at ``/docs``).

Every error is JSON, ``{"error": "..."}``: bad uploads and parameters 4xx, a full queue 429 and a
timed out request 503 (both with Retry-After). Uploads stay in memory (Starlette spools multipart
files over 1 MiB to the system temp folder); nothing is written anywhere else.
"""

from __future__ import annotations

import logging
import time
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Literal

from fastapi import FastAPI, File, Form, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from .. import __version__
from ..errors import ImageError, PainterlyError, StyleNotFoundError
from ..paintings import list_paintings, painting_names
from .device import find_assets
from .limits import BodyLimit, InferencePool, IsolationHeaders, JobTimeout, QueueFull
from .painter import Painter, StylizeJob, TransferJob, painting_thumbnail, sample_photo, sample_photos
from .settings import ServeSettings
from .uploads import FORMATS, UploadTooLarge

STATIC = Path(__file__).resolve().parent / "static"
log = logging.getLogger("painterly.serve")

Format = Literal["jpeg", "png", "webp"]
ColorMode = Literal["none", "luminance", "histogram"]
CACHE_DAY = {"Cache-Control": "public, max-age=86400"}


def _error(status: int, message: str, retry_after: int | None = None) -> JSONResponse:
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors():
        where = ".".join(str(x) for x in err.get("loc", ()) if x not in ("body", "query", "path"))
        msg = "missing (required)" if err.get("type") == "missing" else err.get("msg", "invalid")
        parts.append(f"{where}: {msg}" if where else str(msg))
    return "; ".join(parts) or "invalid request"


def _install_error_handlers(app: FastAPI) -> None:
    handlers = {
        QueueFull: lambda exc: _error(429, str(exc), exc.retry_after),
        JobTimeout: lambda exc: _error(503, str(exc), exc.retry_after),
        UploadTooLarge: lambda exc: _error(413, str(exc)),
        ImageError: lambda exc: _error(400, str(exc)),
        StyleNotFoundError: lambda exc: _error(422, str(exc)),
        PainterlyError: lambda exc: _error(422, str(exc)),
        RequestValidationError: lambda exc: _error(422, _validation_message(exc)),
        HTTPException: lambda exc: _error(exc.status_code, str(exc.detail)),
    }
    for cls, make in handlers.items():
        async def handle(_request: Request, exc: Exception, make=make) -> JSONResponse:
            return make(exc)

        app.add_exception_handler(cls, handle)

    async def internal(_request: Request, exc: Exception) -> JSONResponse:
        log.exception("internal error", exc_info=exc)
        return _error(500, "internal error; the server log has the details")

    app.add_exception_handler(Exception, internal)


def _image_response(data: bytes, fmt: str, stem: str, seconds: float) -> Response:
    _, media, ext = FORMATS[fmt]
    return Response(data, media_type=media, headers={
        "Content-Disposition": f'inline; filename="{stem}.{ext}"', "Cache-Control": "no-store",
        "X-Painterly-Seconds": f"{seconds:.3f}"})


def create_app(settings: ServeSettings | None = None, painter: Painter | None = None) -> FastAPI:
    """The app for ``settings`` (default: from the environment, as ``painterly serve`` sets it)."""
    settings = settings or ServeSettings.from_env()
    painter = painter or Painter(settings.max_pixels, settings.engine)
    pool = InferencePool(settings.inference_slots, settings.slot_threads, settings.queue_size, settings.timeout_s)
    web = settings.web_path()
    device = find_assets(web)

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        if settings.warmup:
            start = time.perf_counter()
            await pool.run(painter.warmup)
            log.info("models loaded in %.1f s", time.perf_counter() - start)
        yield
        pool.shutdown()

    app = FastAPI(title="painterly", version=__version__, lifespan=lifespan,
                  description="Photos into paintings: stylize with a bundled style, or transfer any painting.")
    app.state.settings, app.state.pool, app.state.painter = settings, pool, painter
    app.add_middleware(BodyLimit, max_bytes=settings.max_upload_bytes)
    app.add_middleware(IsolationHeaders, prefixes=("/static/", "/device/"))
    _install_error_handlers(app)

    def check_size(size: int | None) -> int:
        if size is not None and size > settings.max_size:
            raise PainterlyError(f"size {size} is over this server's limit of {settings.max_size} px")
        return size or settings.default_size

    @app.get("/api/v1/health", tags=["server"])
    async def health() -> dict:
        """Liveness and load: slots, running and queued jobs."""
        return {"status": "ok", "version": __version__, **pool.stats()}

    @app.get("/api/v1/config", tags=["server"])
    async def config() -> dict:
        """Limits and defaults the page adapts to, and whether it may run on the device."""
        return {"max_upload_bytes": settings.max_upload_bytes, "max_pixels": settings.max_pixels,
                "max_size": settings.max_size, "default_size": settings.default_size,
                "timeout_s": settings.timeout_s, "formats": list(FORMATS),
                "samples": list(sample_photos()), "device": device.to_dict() if device else {"available": False}}

    @app.get("/api/v1/styles", tags=["styles"])
    async def styles() -> list[dict]:
        """The styles of the shipped model, with thumbnail URLs."""
        infos = await run_in_threadpool(painter.style_names)
        return [{"name": s.name, "title": s.title, "artist": s.artist,
                 "thumbnail": f"/api/v1/styles/{s.name}/thumbnail"} for s in infos]

    @app.get("/api/v1/styles/{name}/thumbnail", tags=["styles"], response_class=Response,
             responses={200: {"content": {"image/jpeg": {}}}})
    async def style_thumbnail(name: str) -> Response:
        """A style's thumbnail (its painting, or a bundled photo in that style), cached in memory."""
        if name in painting_names():
            data = await run_in_threadpool(painting_thumbnail, name)
        elif name not in {s.name for s in await run_in_threadpool(painter.style_names)}:
            raise HTTPException(404, f"unknown style '{name}'")
        else:
            data = await pool.run(painter.style_thumbnail, name)
        return Response(data, media_type="image/jpeg", headers=CACHE_DAY)

    @app.get("/api/v1/paintings", tags=["styles"])
    async def paintings() -> list[dict]:
        """The bundled paintings (usable by name for transfer), with thumbnail URLs."""
        return [{"name": p.name, "title": p.title, "artist": p.artist, "year": p.year,
                 "thumbnail": f"/api/v1/paintings/{p.name}/thumbnail"} for p in list_paintings()]

    @app.get("/api/v1/paintings/{name}/thumbnail", tags=["styles"], response_class=Response,
             responses={200: {"content": {"image/jpeg": {}}}})
    async def painting_thumb(name: str) -> Response:
        """A bundled painting's thumbnail (cached in memory)."""
        if name not in painting_names():
            raise HTTPException(404, f"unknown painting '{name}'")
        return Response(await run_in_threadpool(painting_thumbnail, name), media_type="image/jpeg",
                        headers=CACHE_DAY)

    @app.get("/api/v1/samples/{name}", tags=["styles"], response_class=Response,
             responses={200: {"content": {"image/jpeg": {}}}})
    async def sample(name: str) -> Response:
        """A bundled sample photo (the page starts with one)."""
        if name not in sample_photos():
            raise HTTPException(404, f"unknown sample photo '{name}'")
        return Response(await run_in_threadpool(sample_photo, name), media_type="image/jpeg", headers=CACHE_DAY)

    @app.post("/api/v1/stylize", tags=["paint"], response_class=Response,
              responses={200: {"content": {"image/jpeg": {}, "image/png": {}, "image/webp": {}}}})
    async def stylize(
        photo: Annotated[UploadFile, File(description="the photo (JPEG, PNG, WebP, ...)")],
        style: Annotated[str, Form(description="a style name (GET /api/v1/styles)")],
        style2: Annotated[str | None, Form(description="a second style to mix in")] = None,
        mix: Annotated[float, Form(ge=0, le=1, description="weight of style2 (0: style only)")] = 0.5,
        strength: Annotated[float, Form(ge=0, le=1, description="1: full style, 0: the photo")] = 1.0,
        size: Annotated[int | None, Form(ge=16, description="longest side of the result")] = None,
        preserve_color: Annotated[ColorMode, Form(description="keep the photo's colours")] = "none",
        format: Annotated[Format, Form(description="result format")] = "jpeg",
    ) -> Response:
        """Paint the photo in a style, or a mix of two."""
        names = [s.name for s in await run_in_threadpool(painter.style_names)]
        for given in (style, style2):
            if given and given not in names:  # checked here: the model's error names a server path
                raise StyleNotFoundError(f"unknown style '{given}'; styles: {', '.join(names)}")
        spec: str | dict[str, float] = style
        if style2 and style2 != style and mix > 0:
            spec = {style: 1.0 - mix, style2: mix} if mix < 1 else style2
        job = StylizeJob(await photo.read(), spec, check_size(size), strength,
                         None if preserve_color == "none" else preserve_color, format)
        start = time.perf_counter()
        data = await pool.run(painter.stylize, job)
        return _image_response(data, format, f"painterly-{style}", time.perf_counter() - start)

    @app.post("/api/v1/transfer", tags=["paint"], response_class=Response,
              responses={200: {"content": {"image/jpeg": {}, "image/png": {}, "image/webp": {}}}})
    async def transfer(
        photo: Annotated[UploadFile, File(description="the photo")],
        painting: Annotated[UploadFile | None, File(description="any painting (or give painting_name)")] = None,
        painting_name: Annotated[str | None, Form(description="a bundled painting instead of an upload")] = None,
        alpha: Annotated[float, Form(ge=0, le=1, description="how much of the painting's style")] = 1.0,
        size: Annotated[int | None, Form(ge=16, description="longest side of the result")] = None,
        preserve_color: Annotated[ColorMode, Form(description="keep the photo's colours")] = "none",
        format: Annotated[Format, Form(description="result format")] = "jpeg",
    ) -> Response:
        """Paint the photo in the style of any painting (arbitrary style transfer, AdaIN)."""
        if (painting is None) == (painting_name is None):
            raise PainterlyError("give either a painting upload or a painting_name")
        if painting_name is not None and painting_name not in painting_names():
            raise StyleNotFoundError(f"unknown painting '{painting_name}'; bundled: {', '.join(painting_names())}")
        source = await painting.read() if painting is not None else painting_name
        job = TransferJob(await photo.read(), source, alpha, check_size(size),
                          None if preserve_color == "none" else preserve_color, format)
        start = time.perf_counter()
        data = await pool.run(painter.transfer, job)
        return _image_response(data, format, "painterly-transfer", time.perf_counter() - start)

    @app.get("/api/v1/device/model", tags=["server"], include_in_schema=device is not None)
    async def device_model() -> FileResponse:
        """The int8 ONNX model for running on the device (404 when not shipped)."""
        if device is None:
            raise HTTPException(404, "on-device running is not available on this server")
        return FileResponse(device.model, media_type="application/octet-stream", headers=CACHE_DAY)

    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    if device is not None:
        app.mount("/device", StaticFiles(directory=device.web_dir), name="device")
    return app
