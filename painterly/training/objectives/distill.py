"""Distillation of a multi-style network into a slimmer one (fewer channels and residual blocks).

The teacher (a trained :class:`TransformerNet`, frozen, in eval mode, bf16 where that is fast) and the
student see the same photo crops with the same style vectors: a one-hot style per sample, or with
probability ``mix_prob`` a random convex mix of two styles (so the student learns style mixing too).
The student learns to reproduce the teacher's output:

* ``pixel``: mean absolute difference of the two outputs (RGB in [0, 1]);
* ``content``: relative VGG feature difference at ``content_layers`` (the teacher's output as target);
* ``style``: relative Gram-matrix difference at ``style_layers``, per sample against the teacher's
  output (the layers the shipped model's style loss uses);
* ``task`` (with ``task_weight``): the teacher's own training loss (content against the photo, Gram
  matrices against its paintings; the paintings must be bundled ones) on the samples with one style,
  so the student is pulled towards what the teacher was trained for, not only towards its images;
  ``task_style_scale`` > 1 weighs its style part more than the teacher did (a student whose content loss
  has room to spare can trade some of it for style).

``style_boost`` draws some styles more often than the others (e.g. ``{"udnie": 2}``: twice as often), for
a student that lags the teacher on a few paintings only.

The student keeps the teacher's styles (same rows, same names), output and upsampling; the file it
writes is an ordinary stylization model, usable wherever the teacher is.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ...encoders import VGGEncoder, VGGWeights
from ...errors import PainterlyError
from ...losses import PerceptualLoss, gram_matrix
from ...models.io import StylizationModel, load_model, save_model
from ...models.transformer import TransformerConfig, TransformerNet
from ..checkpoint import default_checkpoint
from ..data import ContentDataset
from ..distributed import DistInfo
from ..loop import Objective, Run, StepContext, on_device, train
from ..options import PathLike, TrainOptions
from ..preview import image_grid


@dataclass
class DistillConfig:
    """Student shape and loss weights of a distillation run (stored in checkpoints and in the model)."""

    #: the student's TransformerConfig fields; ``num_styles``, ``output`` and ``upsample`` come from the teacher
    student: dict[str, Any] = field(
        default_factory=lambda: {"channels": [8, 16, 64], "num_residual": 3, "stem_kernel": 5})
    pixel_weight: float = 1.0
    content_weight: float = 1.0
    style_weight: float = 2.0
    #: VGG up to relu3_1 only: the teacher's output is matched closely enough there, and the VGG passes
    #: (no-grad on the teacher's output, with backward on the student's) cost most of a step
    content_layers: dict[str, float] = field(default_factory=lambda: {"relu2_2": 1.0, "relu3_1": 1.0})
    style_layers: dict[str, float] = field(
        default_factory=lambda: {n: 1.0 for n in ("relu1_1", "relu2_1", "relu3_1")})
    mix_prob: float = 0.25
    crop_scale: tuple[float, float] = (1.0, 2.0)
    #: weight of the teacher's own training loss (0: off)
    task_weight: float = 0.0
    #: factor on the style weight of the teacher's loss inside the task term
    task_style_scale: float = 1.0
    #: relative sampling weight per style name (the others 1)
    style_boost: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"student": dict(self.student), "pixel_weight": self.pixel_weight,
                "content_weight": self.content_weight, "style_weight": self.style_weight,
                "content_layers": dict(self.content_layers), "style_layers": dict(self.style_layers),
                "mix_prob": self.mix_prob, "crop_scale": list(self.crop_scale),
                **({"task_weight": self.task_weight} if self.task_weight else {}),
                **({"task_style_scale": self.task_style_scale} if self.task_style_scale != 1.0 else {}),
                **({"style_boost": dict(self.style_boost)} if self.style_boost else {})}

    def style_probs(self, names: list[str]) -> torch.Tensor | None:
        """Sampling probability of each of ``names`` (None: uniform); unknown names or bad weights raise."""
        if not self.style_boost:
            return None
        unknown = sorted(set(self.style_boost) - set(names))
        if unknown:
            raise PainterlyError(f"--style-boost: unknown style '{unknown[0]}'; the teacher has {', '.join(names)}")
        weights = torch.tensor([float(self.style_boost.get(n, 1.0)) for n in names])
        if not bool(torch.isfinite(weights).all()) or bool((weights < 0).any()) or float(weights.sum()) <= 0:
            raise PainterlyError(f"--style-boost weights must be finite, >= 0 and not all 0, got {self.style_boost}")
        return weights / weights.sum()

    def perceptual_loss(self) -> PerceptualLoss | None:
        if not (self.content_weight or self.style_weight):
            return None
        return PerceptualLoss(content_layers=dict(self.content_layers), style_layers=dict(self.style_layers),
                              content_weight=self.content_weight, style_weight=self.style_weight, tv_weight=0.0)


def student_config(teacher: TransformerConfig, student: dict[str, Any]) -> TransformerConfig:
    """The student's shape: ``student`` fields (or ``{"preset": name}``) over the teacher's styles,
    output and upsampling."""
    fields = dict(student)
    preset = fields.pop("preset", None)
    base = TransformerConfig.preset(preset).to_dict() if preset else {}
    inherited = {"num_styles": teacher.num_styles, "output": teacher.output, "upsample": teacher.upsample}
    try:
        return TransformerConfig.from_dict({**base, **fields, **inherited})
    except (TypeError, ValueError) as exc:
        raise PainterlyError(f"bad student shape {student}: {exc}") from None


#: ``init`` value that starts the student from the teacher pruned to the student's shape
PRUNED = "pruned"


def _check_kernels(shape: TransformerConfig, source: TransformerConfig, what: str) -> None:
    """A student reshaped from ``source`` (pruned or grown) keeps its kernels, output and upsampling."""
    same = (shape.stem_kernel, shape.upsample, shape.output) == (source.stem_kernel, source.upsample, source.output)
    if not same or shape.alpha != 1:
        raise PainterlyError(f"{what}: use --stem-kernel {source.stem_kernel} and no --alpha")


def pruned_student(teacher: StylizationModel, shape: TransformerConfig) -> StylizationModel:
    """The teacher pruned to ``shape`` (see :mod:`painterly.models.prune`) as a model to start from."""
    from ...models.prune import prune_transformer

    _check_kernels(shape, teacher.net.config, f"--init {PRUNED} keeps the teacher's kernels")
    try:
        net = prune_transformer(teacher.net, shape.channels, shape.num_residual)
    except ValueError as exc:
        raise PainterlyError(f"cannot prune the teacher to {list(shape.channels)}: {exc}") from None
    return StylizationModel(net, teacher.styles, {"pruned_from": teacher.path})


def grown_student(student: StylizationModel, shape: TransformerConfig) -> StylizationModel:
    """``student`` grown to ``shape`` (see :mod:`painterly.models.grow`): same outputs, room to improve."""
    from ...models.grow import grow_transformer

    _check_kernels(shape, student.net.config, "--grow keeps the student's kernels")
    try:
        net = grow_transformer(student.net, shape.channels, shape.num_residual)
    except ValueError as exc:
        raise PainterlyError(f"--grow: {exc}") from None
    return StylizationModel(net, student.styles, {"grown_from": student.path})


def random_style_vectors(n: int, num_styles: int, mix_prob: float, generator: torch.Generator,
                         probs: torch.Tensor | None = None) -> torch.Tensor:
    """(n, num_styles) style weights: one-hot, or with probability ``mix_prob`` a random mix of two styles.
    ``probs``: how often each style is drawn (None: uniform); the second style of a mix is uniform."""
    if probs is None:
        first = torch.randint(0, num_styles, (n,), generator=generator)
    else:
        first = torch.multinomial(probs, n, replacement=True, generator=generator)
    vec = F.one_hot(first, num_styles).float()
    if num_styles < 2 or mix_prob <= 0:
        return vec
    mixed = torch.rand(n, generator=generator) < mix_prob
    second = (first + torch.randint(1, num_styles, (n,), generator=generator)) % num_styles  # another style
    share = torch.rand(n, generator=generator)
    mix = F.one_hot(first, num_styles) * share[:, None] + F.one_hot(second, num_styles) * (1 - share[:, None])
    return torch.where(mixed[:, None], mix, vec)


def match_teacher(y: torch.Tensor, target: torch.Tensor, pixel_weight: float, loss: PerceptualLoss | None,
                  encoder: VGGEncoder | None, y_feats: dict[str, torch.Tensor] | None = None
                  ) -> dict[str, torch.Tensor]:
    """The distillation terms of a student's output ``y`` against the teacher's ``target`` (see the module
    docstring): ``pixel``, and with ``loss`` its ``content`` and ``style`` terms; ``total`` their sum.
    ``y_feats``: the encoder's features of ``y`` when already computed."""
    out = {"pixel": pixel_weight * (y.float() - target.float()).abs().mean()}
    total = out["pixel"]
    if loss is not None and encoder is not None:
        with torch.no_grad():
            t_feats = encoder(target, layers=loss.layers)
            grams = {n: gram_matrix(t_feats[n]) for n in loss.style_layers}
        terms = loss(y, y_feats if y_feats is not None else encoder(y, layers=loss.layers), t_feats, grams)
        out.update(content=terms["content"], style=terms["style"])
        total = total + terms["total"]
    out["total"] = total
    return out


class TaskLoss:
    """The teacher's own training loss (content against the photo, Gram matrices against its paintings),
    built from its file's training record; the paintings are the bundled ones its styles are named after."""

    def __init__(self, teacher: StylizationModel, weight: float, style_scale: float = 1.0) -> None:
        from ...paintings import bundled_painting

        cfg = teacher.training.get("config") or {}
        try:
            self.loss = PerceptualLoss(content_layers=cfg["content_layers"], style_layers=cfg["style_layers"],
                                       content_weight=cfg["content_weight"],
                                       style_weight=cfg["style_weight"] * style_scale,
                                       tv_weight=cfg.get("tv_weight", 0.0))
            self.paintings = [bundled_painting(name) for name in teacher.names]
        except (KeyError, PainterlyError) as exc:
            raise PainterlyError(f"--task-weight needs a teacher trained on bundled paintings with its loss "
                                 f"recorded ('{teacher.path}': {exc})") from None
        self.style_size, self.weight = int(cfg.get("style_size", 512)), weight

    @property
    def layers(self) -> list[str]:
        return self.loss.layers

    def build(self, encoder: VGGEncoder, device: torch.device) -> None:
        """Gram matrices of every painting, (S, C, C) per style layer."""
        from ...imageio import load_image, to_tensor
        from .feedforward import style_grams

        images = [to_tensor(load_image(p, size=self.style_size), device) for p in self.paintings]
        self.grams = style_grams(encoder, images, list(self.loss.style_layers))

    def __call__(self, x: torch.Tensor, y: torch.Tensor, y_feats: dict[str, torch.Tensor], style: torch.Tensor,
                 encoder: VGGEncoder) -> torch.Tensor | None:
        """The weighted loss of the one-style samples of the batch (None when it has none)."""
        single = style.max(1).values > 0.999
        if not bool(single.any()):
            return None
        index = style.argmax(1)[single]
        with torch.no_grad():
            x_feats = encoder(x[single], layers=list(self.loss.content_layers))
        feats = {n: f[single] for n, f in y_feats.items()}
        grams = {n: g[index] for n, g in self.grams.items()}
        return self.weight * self.loss(y[single], feats, x_feats, grams)["total"]


class DistillObjective(Objective):
    """Train a slim student of ``teacher`` (a model file) on the photos in ``data``; writes ``out``."""

    def __init__(self, teacher: PathLike, data: Any, out: PathLike, config: DistillConfig,
                 options: TrainOptions, encoder_weights: VGGWeights | None = VGGWeights(), half: bool = False,
                 init: PathLike | None = None, grow: bool = False) -> None:
        self.teacher_path, self.data, self.out = str(teacher), data, Path(out)
        self.settings, self.options, self.encoder_weights, self.half = config, options, encoder_weights, half
        options.check_size(4)
        if not 0 <= config.mix_prob <= 1:
            raise PainterlyError(f"the style mix probability must be in [0, 1], got {config.mix_prob}")
        self.teacher = load_model(teacher)
        self.init = str(init) if init is not None else None
        self.grow = grow
        self.prior = None
        if grow and (init is None or self.init == PRUNED):
            raise PainterlyError("--grow widens a student file: give it with --init STUDENT")
        if self.init == PRUNED:
            self.prior = pruned_student(self.teacher, student_config(self.teacher.net.config, config.student))
        elif init is not None:
            self.prior = load_model(init)
            if grow:
                self.prior = grown_student(self.prior, student_config(self.teacher.net.config, config.student))
        if self.prior is not None:  # continue a student (e.g. with other loss settings): its shape, not config's
            if self.prior.names != self.teacher.names:
                raise PainterlyError(f"'{init}' has styles {', '.join(self.prior.names)}; the teacher has "
                                     f"{', '.join(self.teacher.names)}")
            self.student_config = self.prior.net.config
        else:
            self.student_config = student_config(self.teacher.net.config, config.student)
        self.style_probs = config.style_probs(self.teacher.names)

    def build(self, device: torch.device, dist: DistInfo) -> nn.Module:
        opts, cfg = self.options, self.settings
        student = self.prior.net.train().requires_grad_(True) if self.prior else TransformerNet(self.student_config)
        self.device = device
        self.teacher_net = on_device(self.teacher.net.eval().requires_grad_(False), device, opts.channels_last)
        self.loss = cfg.perceptual_loss()
        self.task = TaskLoss(self.teacher, cfg.task_weight, cfg.task_style_scale) if cfg.task_weight else None
        layers = [*(self.loss.layers if self.loss else []), *(self.task.layers if self.task else [])]
        self.encoder = None
        if layers:
            self.encoder = on_device(VGGEncoder(layers, weights=self.encoder_weights), device, opts.channels_last)
        if self.task is not None and self.encoder is not None:
            self.task.build(self.encoder, device)
        self.dataset = ContentDataset(self.data, size=opts.size, scale=cfg.crop_scale, device=device,
                                      channels_last=opts.channels_last, seed=opts.seed)
        self.fixed = self.dataset.fixed_batch(2).to(device)
        return student

    def losses(self, ctx: StepContext) -> dict[str, torch.Tensor]:
        x = ctx.sample(self.dataset, self.options.batch_size)
        style = random_style_vectors(x.shape[0], self.student_config.num_styles, self.settings.mix_prob,
                                     ctx.generator, self.style_probs).to(ctx.device)
        with torch.no_grad():
            target = self.teacher_net(x, style)
        y = ctx.model(x, style)
        if self.task is None or self.encoder is None:
            return match_teacher(y, target, self.settings.pixel_weight, self.loss, self.encoder)
        feats = self.encoder(y)
        out = match_teacher(y, target, self.settings.pixel_weight, self.loss, self.encoder, feats)
        task = self.task(x, y, feats, style, self.encoder)
        # every step logs the same terms: a batch of mixes only has no task loss (zero)
        out["task"] = task if task is not None else y.new_zeros(())
        out["total"] = out["total"] + out["task"]
        return out

    def config(self) -> dict[str, Any]:
        o = self.options
        return {**self.settings.to_dict(), "model": self.student_config.to_dict(), "teacher": self.teacher_path,
                **({"init": self.init} if self.init else {}), **({"grow": True} if self.grow else {}),
                "styles": self.teacher.names, **o.run_config()}

    def sample(self, model: nn.Module, step: int):
        """First row the photos, then one row per style (up to 4): the teacher's images, then the student's."""
        n = self.fixed.shape[0]
        tiles = [*self.fixed, *torch.ones_like(self.fixed)]
        for s in range(min(4, self.student_config.num_styles)):
            vec = self.teacher_net.style_vector(s, n, self.fixed.device)
            tiles.extend(self.teacher_net(self.fixed, vec).float())
            tiles.extend(model(self.fixed, vec).float())
        return image_grid(tiles, ncol=2 * n)

    def finish(self, model: nn.Module, run: Run) -> str | None:
        record = {
            "distilled_from": self.teacher_path, "teacher_config": self.teacher.net.config.to_dict(), **run.record(),
            "data_images": len(self.dataset), "distill": self.config(),
            # the loss the teacher was trained with, so the student is scored the same way (benchmarks/quality.py)
            "config": {**self.teacher.training.get("config", {}), "model": self.student_config.to_dict(),
                       "styles": self.teacher.names},
        }
        if not run.dist.is_main:
            return None
        net = model.cpu().float().requires_grad_(False)
        return str(save_model(StylizationModel(net, self.teacher.styles, record), self.out, half=self.half))


def distill(teacher: PathLike, data: Any, out: PathLike, config: DistillConfig | None = None,
            options: TrainOptions | None = None, checkpoint: PathLike | None = None,
            encoder_weights: VGGWeights | None = VGGWeights(), half: bool = False,
            init: PathLike | None = None, grow: bool = False) -> Run:
    """Distill ``teacher`` into a student of ``config.student``'s shape on the photos in ``data``; the student
    is written to ``out`` (also after a time limit or Ctrl-C), the resumable checkpoint to ``checkpoint``
    (default ``<out>.ckpt.safetensors``). ``run.output`` is the written file. ``encoder_weights=None``: a
    random VGG (tests only). ``init``: a student file to continue (its shape), e.g. with other loss settings;
    with ``grow`` it is first grown to ``config.student``'s shape, keeping its outputs."""
    options = options or TrainOptions(batch_size=4, lr=1e-3)
    objective = DistillObjective(teacher, data, out, config or DistillConfig(), options, encoder_weights, half, init,
                                 grow)
    return train(objective, options, checkpoint or default_checkpoint(out))


def student_from_checkpoint(path: PathLike) -> StylizationModel:
    """The student of a distillation checkpoint as a model (to evaluate a run that is still going)."""
    from ..checkpoint import read_checkpoint

    tensors, header = read_checkpoint(path)
    config = header.get("meta", {}).get("config") or {}
    if "teacher" not in config or "model" not in config:
        raise PainterlyError(f"'{path}' is not a distillation checkpoint")
    teacher = load_model(config["teacher"])
    net = TransformerNet(TransformerConfig.from_dict(config["model"]))
    net.load_state_dict({k[len("model/"):]: v.float() for k, v in tensors.items() if k.startswith("model/")})
    training = {"distill": config, "steps": header["step"],
                "config": {**teacher.training.get("config", {}), "model": config["model"]}}
    return StylizationModel(net.requires_grad_(False).eval(), teacher.styles, training, str(path))
