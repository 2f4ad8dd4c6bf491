"""Distillation of the AdaIN decoder into a narrower one.

Photos and augmented paintings are drawn as in AdaIN training (the teacher file's own pool settings
and held-out paintings); the AdaIN target ``t = AdaIN(f(c), f(s))`` goes through the frozen teacher
decoder and the student, and the student learns the teacher's image with the terms of
:func:`.distill.match_teacher` (pixels, VGG features, Gram matrices). At the end the student is
evaluated with the AdaIN losses on trained and held-out paintings, like a trained decoder, so its
file's ``evaluation`` compares directly with the teacher's.

``DistillConfig.task_weight`` adds the teacher's own training loss (content against the AdaIN target,
mean/std against the painting's features), so the student also learns from the paintings themselves
where it cannot copy the teacher exactly; the student's VGG features are computed once for both.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import torch
from torch import nn

from ...encoders import VGGWeights
from ...errors import PainterlyError
from ...models.adain import ADAIN_LAYER, STYLE_LAYERS, AdaINDecoder, AdaINDecoderConfig, load_decoder
from ...models.prune import prune_decoder
from ..loop import Objective, StepContext, on_device
from ..options import LrAt, PathLike, TrainOptions
from .adain import AdaINObjective, AdaINTrainConfig, adain_losses
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
                 encoder_weights: VGGWeights | None = VGGWeights(), pruned: bool = False,
                 student: PathLike | None = None) -> None:
        self.teacher_path, self.distill, self.pruned, self.student = str(teacher), config, pruned, student
        if pruned and student is not None:
            raise PainterlyError("start a student either pruned from the teacher or from a student file, not both")
        self.teacher = load_decoder(teacher)
        width = float(config.student.get("width", 0.25))
        if student is not None:
            self.student_net = load_decoder(student)
            width = self.student_net.config.width
        super().__init__(content_dir, style_dir, out, teacher_settings(self.teacher, width), options, half,
                         encoder_weights, init=None)
        self.init_label = "pruned" if pruned else (str(student) if student is not None else None)

    def build_model(self) -> nn.Module:
        if self.student is not None:  # continue a student with new loss settings (unlike --resume)
            return self.student_net.train().requires_grad_(True)
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
        task = self.distill.task_weight
        target, s_feats = self.adain_batch(ctx, STYLE_LAYERS if task else [ADAIN_LAYER])
        with torch.no_grad():
            teacher_img = self.teacher_net(target)
        y = ctx.model(target)
        if not task:
            return match_teacher(y, teacher_img, self.distill.pixel_weight, self.loss, self.encoder)
        feats = self.encoder(y, list(dict.fromkeys([*STYLE_LAYERS, *(self.loss.layers if self.loss else [])])))
        out = match_teacher(y, teacher_img, self.distill.pixel_weight, self.loss, self.encoder, feats)
        terms = adain_losses(self.encoder, y, target, s_feats, self.settings.content_weight,
                             self.settings.style_weight, feats)
        out["task"] = task * terms["total"]
        out["total"] = out["total"] + out["task"]
        return out

    def run_config(self, model: nn.Module) -> dict[str, Any]:
        return {**super().run_config(model), "teacher": self.teacher_path, "distill": self.distill.to_dict(),
                "teacher_evaluation": (self.teacher.training_info or {}).get("evaluation")}


def distill_adain(teacher: PathLike, content_dir: Any, style_dir: Any, out: PathLike,
                  config: DistillConfig | None = None, options: TrainOptions | None = None,
                  checkpoint: PathLike | None = None, encoder_weights: VGGWeights | None = VGGWeights(),
                  half: bool = False, pruned: bool = False, student: PathLike | None = None) -> ArbitrarySummary:
    """Distill the AdaIN decoder ``teacher`` into a narrower one (``config.student["width"]``, default 0.25);
    written to ``out`` with the evaluation of a trained decoder (also in the returned summary). ``pruned``: the
    student starts as the teacher pruned to its width (:func:`painterly.models.prune.prune_decoder`); ``student``:
    it continues that student decoder file (its width; new loss settings allowed, unlike a resume)."""
    config = config or DistillConfig(student={"width": 0.25})
    options = options or TrainOptions(batch_size=4, lr=1e-4)
    objective = AdaINDistillObjective(teacher, content_dir, style_dir, out, config, options, half, encoder_weights,
                                      pruned, student)
    return objective.train(checkpoint)
