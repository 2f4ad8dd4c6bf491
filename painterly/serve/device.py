"""The "run on this device" option: onnxruntime-web from the built web/ page (``make web``) and the
shipped int8 ONNX model, both served to the browser when present; absent, the page runs on the server only."""

from __future__ import annotations

import functools
import json
import mimetypes
from dataclasses import dataclass, field
from pathlib import Path

#: onnxruntime-web builds the page can load, best first (all with the wasm backend): ES modules
#: (``make web`` vendors ``web/vendor/ort/ort.wasm.min.mjs``) or classic scripts defining ``window.ort``.
ORT_SCRIPTS = ("ort.wasm.min.mjs", "ort.wasm.min.js", "ort.min.mjs", "ort.min.js", "ort.all.min.js")
#: The shipped on-device model (CONTRACT.md: names fixed), looked up in painterly/pretrained then web/.
MODEL_NAME = "multistyle.int8.onnx"
PRETRAINED = Path(__file__).resolve().parent.parent / "pretrained"


@dataclass(frozen=True)
class DeviceAssets:
    """Where the browser gets onnxruntime-web and the model, and what the model expects."""

    web_dir: Path
    script: str  # path of the ort script under web_dir
    model: Path
    styles: list[str] = field(default_factory=list)
    stats_size: int = 0

    def to_dict(self) -> dict:
        base = str(Path(self.script).parent).replace("\\", "/")
        return {"available": True, "script": f"/device/{self.script}", "wasm_base": f"/device/{base}/",
                "model": "/api/v1/device/model", "styles": self.styles, "stats_size": self.stats_size}


def _model_metadata(path: Path) -> tuple[list[str], int]:
    """Style names in model order and the instance-norm statistics length, from the ONNX metadata."""
    import onnx

    proto = onnx.load(str(path), load_external_data=False)
    meta = {p.key: p.value for p in proto.metadata_props}
    info = json.loads(meta.get("painterly", "{}"))
    styles = [s["name"] if isinstance(s, dict) else str(s) for s in info.get("styles", [])]
    return styles, int(info.get("stats_size", 0))


@functools.lru_cache(maxsize=4)
def find_assets(web_dir: Path | None) -> DeviceAssets | None:
    """The on-device assets, or None when the web page is not built or the model is missing."""
    if web_dir is None:
        return None
    script = next((p for name in ORT_SCRIPTS for p in sorted(web_dir.glob(f"vendor/**/{name}"))), None)
    if script is None:
        return None
    candidates = [PRETRAINED / MODEL_NAME, *sorted(web_dir.rglob(MODEL_NAME))]
    model = next((p for p in candidates if p.is_file()), None)
    if model is None:
        return None
    try:
        styles, stats_size = _model_metadata(model)
    except Exception:  # onnx missing or an unreadable file: no on-device option
        return None
    if not styles or stats_size < 1:
        return None
    mimetypes.add_type("text/javascript", ".mjs")  # module scripts need a JavaScript type, on any host
    mimetypes.add_type("application/wasm", ".wasm")  # streaming compilation
    return DeviceAssets(web_dir, str(script.relative_to(web_dir)).replace("\\", "/"), model, styles, stats_size)
