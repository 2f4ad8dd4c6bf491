"""Reading and checking painterly ONNX files (no torch).

Every graph painterly exports carries one ``metadata_props`` entry, key ``"painterly"``, holding JSON
``{"format", "kind", "precision", "validation", ...}`` (see /work/notes/CONTRACT.md). This module
reads it and refuses files that are missing, damaged, foreign, or of another kind with one
:class:`~painterly.errors.ModelError` line, so engines can load ``.onnx`` files without torch.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .errors import ModelError

METADATA_KEY = "painterly"
#: Graph kind -> format string stored in the metadata.
FORMATS = {
    "stylize": "painterly.onnx.stylize.v1",
    "encoder": "painterly.onnx.vgg_encoder.v1",
    "decoder": "painterly.onnx.adain_decoder.v1",
    "pipeline": "painterly.onnx.adain_pipeline.v1",
}
PRECISIONS = ("fp32", "fp16", "int8")
#: Input and output names of each kind, in order.
INPUTS = {
    "stylize": ("image", "style", "stats", "use_stats"),
    "encoder": ("image",),
    "decoder": ("features",),
    "pipeline": ("content", "style", "alpha"),
}
OUTPUTS = {
    "stylize": ("output", "stats_out"),
    "encoder": ("features",),
    "decoder": ("output",),
    "pipeline": ("output",),
}


def parse_metadata(props: Mapping[str, str], path: str | os.PathLike, kind: str | None = None) -> dict[str, Any]:
    """The checked ``"painterly"`` metadata of a graph from its ``metadata_props`` mapping.

    ``kind`` (``"stylize"``, ``"encoder"``, ``"decoder"``, ``"pipeline"``) additionally requires that kind.
    """
    if kind is not None and kind not in FORMATS:
        raise ValueError(f"unknown ONNX graph kind {kind!r}; use one of {', '.join(FORMATS)}")
    try:
        meta = json.loads(props[METADATA_KEY])
    except (KeyError, TypeError, ValueError):
        raise ModelError(f"'{path}' is an ONNX file but not a painterly model (no painterly metadata)") from None
    if not isinstance(meta, dict) or meta.get("kind") not in FORMATS or meta.get("format") != FORMATS[meta["kind"]]:
        fmt = meta.get("format") if isinstance(meta, dict) else None
        raise ModelError(f"'{path}' has an unknown painterly ONNX format {fmt!r} (made by a newer painterly?)")
    if kind is not None and meta["kind"] != kind:
        raise ModelError(f"'{path}' is a painterly {meta['kind']} graph, not a {kind} graph")
    if meta.get("precision") not in PRECISIONS:
        raise ModelError(f"'{path}': bad precision {meta.get('precision')!r} in its metadata")
    if meta["kind"] == "stylize":
        styles, size = meta.get("styles"), meta.get("stats_size")
        ok = (isinstance(styles, list) and styles and all(isinstance(s, dict) and s.get("name") for s in styles)
              and isinstance(size, int) and size > 0 and isinstance(meta.get("config"), dict))
        if not ok:
            raise ModelError(f"'{path}': incomplete stylization metadata (styles, stats_size, config)")
    return meta


def _check_file(path: Path) -> None:
    if not path.exists():
        raise ModelError(f"ONNX file '{path}' not found")
    if not path.is_file():
        raise ModelError(f"'{path}' is not a file")


def read_onnx_metadata(path: str | os.PathLike, kind: str | None = None) -> dict[str, Any]:
    """Checked painterly metadata of the ONNX file ``path`` (parsed with ``onnx``, else ``onnxruntime``).

    Missing, unreadable, corrupt or foreign files, and graphs of another ``kind``, raise :class:`ModelError`.
    The graph's inputs and outputs are checked against the kind's interface too.
    """
    path = Path(path)
    _check_file(path)
    try:
        import onnx
    except ImportError:
        return session_metadata(_session(path), path, kind)
    try:
        model = onnx.load(str(path), load_external_data=False)
    except OSError as exc:
        raise ModelError(f"cannot read '{path}': {exc.strerror or exc}") from None
    except Exception:  # protobuf raises several types on damaged input
        raise ModelError(f"'{path}' is not a valid ONNX file (corrupt or another format)") from None
    if not model.graph.node:
        raise ModelError(f"'{path}' is not a valid ONNX file (no graph)")
    meta = parse_metadata({p.key: p.value for p in model.metadata_props}, path, kind)
    _check_io(path, meta["kind"], [i.name for i in model.graph.input], [o.name for o in model.graph.output])
    return meta


def _session(path: Path, **kwargs: Any) -> Any:
    try:
        import onnxruntime as ort
    except ImportError:
        raise ModelError("reading ONNX files needs onnxruntime: pip install onnxruntime") from None
    try:
        return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"], **kwargs)
    except Exception as exc:  # onnxruntime raises its own exception types for damaged graphs
        detail = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
        raise ModelError(f"'{path}' is not a valid ONNX file ({detail})") from None


def session_metadata(session: Any, path: str | os.PathLike, kind: str | None = None) -> dict[str, Any]:
    """Checked painterly metadata of an ``onnxruntime.InferenceSession`` already made from ``path``."""
    props = session.get_modelmeta().custom_metadata_map
    meta = parse_metadata(props, path, kind)
    _check_io(Path(path), meta["kind"], [i.name for i in session.get_inputs()], [o.name for o in session.get_outputs()])
    return meta


def open_session(path: str | os.PathLike, kind: str | None = None, threads: int | None = None,
                 optimization: str = "all") -> tuple[Any, dict[str, Any]]:
    """An onnxruntime CPU session for a painterly graph and its checked metadata.

    ``threads``: intra-op threads (``None``: onnxruntime's default). ``optimization``: ``"all"``,
    ``"extended"``, ``"basic"`` or ``"none"`` (graph optimization level).
    """
    import onnxruntime as ort

    level = ort.GraphOptimizationLevel
    levels = {"all": level.ORT_ENABLE_ALL, "extended": level.ORT_ENABLE_EXTENDED, "basic": level.ORT_ENABLE_BASIC,
              "none": level.ORT_DISABLE_ALL}
    path = Path(path)
    _check_file(path)
    opts = ort.SessionOptions()
    opts.graph_optimization_level = levels[optimization]
    if threads:
        opts.intra_op_num_threads = int(threads)
    opts.inter_op_num_threads = 1
    session = _session(path, sess_options=opts)
    return session, session_metadata(session, path, kind)


def _check_io(path: Path, kind: str, inputs: list[str], outputs: list[str]) -> None:
    if tuple(inputs) != INPUTS[kind] or tuple(outputs) != OUTPUTS[kind]:
        raise ModelError(f"'{path}': the {kind} graph has inputs {inputs} and outputs {outputs}, "
                         f"expected {list(INPUTS[kind])} and {list(OUTPUTS[kind])}")
