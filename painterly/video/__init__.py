"""Video: decoding and encoding with audio (io), optical flow (flow), temporal blending (temporal),
the warping-error metric (metrics) and the resumable pipeline (pipeline).

``painterly.video(...)`` is :func:`painterly.video.pipeline.video`: this package is callable, so the
function and the subpackage (``painterly.video.io`` ...) share the name without shadowing each other.
"""

import sys
import types

from .pipeline import VideoResult, video, work_folder

__all__ = ["VideoResult", "video", "work_folder"]


class _CallableModule(types.ModuleType):
    def __call__(self, *args, **kwargs) -> VideoResult:
        return video(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
