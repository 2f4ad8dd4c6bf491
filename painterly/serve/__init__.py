"""``painterly serve``: a web page and an HTTP API over stylize and transfer (needs the ``serve`` extra)."""

from .settings import ServeSettings

__all__ = ["ServeSettings", "create_app"]


def create_app(settings: ServeSettings | None = None, painter=None):
    """The FastAPI app (imported lazily: fastapi is an optional dependency)."""
    from .app import create_app as _create

    return _create(settings, painter)
