"""Former home of the shared training machinery, kept so existing imports keep working.

The pieces now live by concern: :mod:`.options` (``TrainOptions``, ``lr_schedule``, ``TrainResult``),
:mod:`.loop` (``Trainer``, ``Objective``, ``train``), :mod:`.csvlog` (``CsvLog``) and :mod:`.preview`
(``image_grid``); data in :mod:`.data`, checkpoints in :mod:`.checkpoint`, data-parallel helpers in
:mod:`.distributed`.
"""

from __future__ import annotations

from .csvlog import CsvLog
from .loop import Objective, Run, SampleFn, StepContext, StepFn, Trainer, TrainingDiverged, train
from .options import LR_SCHEDULES, LrAt, TrainOptions, TrainResult, lr_schedule
from .preview import image_grid

__all__ = [
    "LR_SCHEDULES", "CsvLog", "LrAt", "Objective", "Run", "SampleFn", "StepContext", "StepFn", "TrainOptions",
    "TrainResult", "Trainer", "TrainingDiverged", "image_grid", "lr_schedule", "train",
]
