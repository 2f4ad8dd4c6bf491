"""Distillation of the AdaIN decoder into a narrower one.

Photos and augmented paintings are drawn as in AdaIN training (the teacher file's own pool settings
and held-out paintings); the AdaIN target ``t = AdaIN(f(c), f(s))`` goes through the frozen teacher
decoder and the student, and the student learns the teacher's image with the terms of
:func:`.distill.match_teacher` (pixels, VGG features, Gram matrices). At the end the student is
evaluated with the AdaIN losses on trained and held-out paintings, like a trained decoder, so its
file's ``evaluation`` compares directly with the teacher's.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import torch
from torch import nn

from ...encoders import VGGWeights
from ...models.adain import ADAIN_LAYER, STYLE_LAYERS, AdaINDecoder, AdaINDecoderConfig, load_decoder
from ...models.prune import prune_decoder
from ..loop import Objective, StepContext, on_device
from ..options import LrAt, PathLike, TrainOptions
from .adain import AdaINObjective, AdaINTrainConfig
from .arbitrary import ArbitrarySummary
from .distill import DistillConfig, match_teacher

#: the teacher's training settings the student keeps (same photos' crops, style pool and held-out paintings)
_KEPT = ("content_weight", "style_weight", "hold_out", "photo_prob", "jitter", "content_scale", "style_scale")


def teacher_settings(teacher: AdaINDecoder, width: float) -> AdaINTrainConfig:
    """The AdaIN training settings of a student of ``width`` for ``teacher`` (its pool and held-out paintings)."""
    saved = (teacher.training_info or {}).get("config") or {}
    kept = {k: tuple(v) if isinstance(v, list) else v for k, v in saved.items() if k in _KEPT}
    return replace(AdaINTrainConfig(**kept), width=width, lr_decay=0.0)


class AdaINDistillObjective(AdaINObjective):
    """A decoder of ``config.student["width"]`` learning the ``teacher`` decoder's images."""

    def __init__(self, teacher: PathLike, content_dir: Any, style_dir: Any, out: PathLike,
                 config: DistillConfig, options: TrainOptions, half: bool = False,
                 encoder_weights: VGGWeights | None = VGGWeights(), pruned: bool = False) -> None:
        self.teacher_path, self.distill, self.pruned = str(teacher), config, pruned
        self.teacher = load_decoder(teacher)
        width = float(config.student.get("width", 0.25))
        super().__init__(content_dir, style_dir, out, teacher_settings(self.teacher, width), options, half,
                         encoder_weights, init=None)
        self.init_label = "pruned" if pruned else None

    def build_model(self) -> nn.Module:
        if self.pruned:  # start where the teacher is (see prune_decoder), not from random weights
            return prune_decoder(self.teacher, self.settings.width).train()
        return AdaINDecoder(AdaINDecoderConfig(in_channels=self.teacher.config.in_channels, width=self.settings.width))

    def encoder_layers(self, model: nn.Module) -> list[str]:
        self.loss = self.distill.perceptual_loss()
        extra = self.loss.layers if self.loss is not None else []
        return list(dict.fromkeys([*STYLE_LAYERS, *extra]))

    def prepare(self, model: nn.Module, device: torch.device) -> None:
        self.teacher_net = on_device(self.teacher.eval().requires_grad_(False), device, self.options.channels_last)

    def lr_at(self, options: TrainOptions) -> LrAt | None:
        return Objective.lr_at(self, options)  # the shared schedules, not the AdaIN paper's decay

    def losses(self, ctx: StepContext) -> dict[str, torch.Tensor]:
        target, _ = self.adain_batch(ctx, [ADAIN_LAYER])
        with torch.no_grad():
            teacher_img = self.teacher_net(target)
        return match_teacher(ctx.model(target), teacher_img, self.distill.pixel_weight, self.loss, self.encoder)

    def run_config(self, model: nn.Module) -> dict[str, Any]:
        return {**super().run_config(model), "teacher": self.teacher_path, "distill": self.distill.to_dict(),
                "teacher_evaluation": (self.teacher.training_info or {}).get("evaluation")}


def distill_adain(teacher: PathLike, content_dir: Any, style_dir: Any, out: PathLike,
                  config: DistillConfig | None = None, options: TrainOptions | None = None,
                  checkpoint: PathLike | None = None, encoder_weights: VGGWeights | None = VGGWeights(),
                  half: bool = False, pruned: bool = False) -> ArbitrarySummary:
    """Distill the AdaIN decoder ``teacher`` into a narrower one (``config.student["width"]``, default 0.25);
    written to ``out`` with the evaluation of a trained decoder (also in the returned summary). ``pruned``: the
    student starts as the teacher pruned to its width (:func:`painterly.models.prune.prune_decoder`)."""
    config = config or DistillConfig(student={"width": 0.25})
    options = options or TrainOptions(batch_size=4, lr=1e-4)
    objective = AdaINDistillObjective(teacher, content_dir, style_dir, out, config, options, half, encoder_weights,
                                      pruned)
    return objective.train(checkpoint)
