"""Training of the AdaIN decoder (Huang & Belongie 2017).

Per step: a batch of photo crops and a batch of augmented style crops (one style per photo,
see :class:`StylePool`) go through the frozen VGG; the AdaIN target ``t = AdaIN(f(c), f(s))``
at relu4_1 is decoded and the decoded image encoded again. Losses:

* content: ``content_loss(f(g(t)), t)`` at relu4_1, relative (``sum((F - t)^2) / sum(t^2)``);
* style: ``sum_l mean_std_loss(f_l(g(t)), f_l(s))`` over relu1_1..relu4_1, **divided by the
  energy of the target** ``mean(t^2)``.

The paper's objective is ``MSE(f(g(t)), t) + 10 * sum_l MSE of means and stds`` on raw VGG
activations. Our content loss is that MSE divided by ``mean(t^2)``; dividing the style term by
the same number keeps the paper's balance exactly, so ``style_weight = 10`` means what it
means in the paper, while the totals stay O(1) whatever the VGG's input scale (our Caffe VGG
sees 0-255 pixels, the paper's torchvision VGG normalised ones).

Two paintings (``hold_out``, default the-scream and udnie) are never trained on; at the end the
same losses are measured on held-out and on trained paintings, and both land in the decoder
file's metadata as a measure of generalization.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import torch

from ..encoders import VGGEncoder, VGGWeights
from ..errors import PainterlyError
from ..losses import calc_mean_std, content_loss, mean_std_loss
from ..models.adain import (
    ADAIN_LAYER,
    STYLE_LAYERS,
    AdaINDecoder,
    AdaINDecoderConfig,
    adain_from_stats,
    load_decoder,
    save_decoder,
)
from ..runtime import autocast
from .checkpoint import default_checkpoint
from .data import ContentDataset
from .distributed import DistInfo
from .loop import Objective, Run, StepContext, train
from .options import LrAt, TrainOptions, TrainResult, lr_schedule
from .preview import image_grid
from .style_pool import StylePool, load_style_images

DEFAULT_HOLD_OUT = ("the-scream", "udnie")


@dataclass
class AdaINTrainConfig:
    """Loss, model and augmentation settings of a decoder training run (stored with the model)."""

    content_weight: float = 1.0
    style_weight: float = 10.0
    width: float = 0.5  # decoder width multiplier; 1.0 is the paper's decoder, 0.5 meets 1024 px in <= 1.5 s on 2 cores
    hold_out: tuple[str, ...] = DEFAULT_HOLD_OUT
    photo_prob: float = 0.2  # chance that a "style" is a photo crop
    jitter: float = 0.8  # chance of colour jitter on a style crop
    content_scale: tuple[float, float] = (1.0, 2.0)
    style_scale: tuple[float, float] = (1.0, 3.0)
    lr_decay: float = 5e-5  # lr / (1 + lr_decay * step), as in the paper
    eval_size: int | None = None  # side of the evaluation photos (default: the training size)

    def to_dict(self) -> dict[str, Any]:
        return {"content_weight": self.content_weight, "style_weight": self.style_weight, "width": self.width,
                "hold_out": list(self.hold_out), "photo_prob": self.photo_prob, "jitter": self.jitter,
                "content_scale": list(self.content_scale), "style_scale": list(self.style_scale),
                "lr_decay": self.lr_decay, "eval_size": self.eval_size}


@dataclass
class ArbitrarySummary:
    """What an arbitrary-style training run produced."""

    model_path: str | None
    result: TrainResult
    trained_styles: list[str]
    held_out: list[str]
    evaluation: dict[str, dict[str, float]] = field(default_factory=dict)


def adain_losses(encoder: VGGEncoder, decoded: torch.Tensor, target: torch.Tensor,
                 style_feats: dict[str, torch.Tensor], content_weight: float,
                 style_weight: float) -> dict[str, torch.Tensor]:
    """Weighted content and style terms for decoded images (see the module docstring)."""
    feats = encoder(decoded, list(STYLE_LAYERS))
    content = content_loss(feats[ADAIN_LAYER], target)
    energy = target.detach().float().pow(2).mean().clamp_min(1e-8)
    style = sum(mean_std_loss(feats[n], style_feats[n]) for n in STYLE_LAYERS) / energy
    c, s = content_weight * content, style_weight * style
    return {"content": c, "style": s, "total": c + s}


def preview_grid(contents: torch.Tensor, styles: Sequence[torch.Tensor], outputs: Sequence[torch.Tensor]) -> Any:
    """Grid: first row the style thumbnails, then one row per photo: photo, its stylizations."""
    n, size = contents.shape[0], contents.shape[-1]
    thumbs = [torch.nn.functional.interpolate(s.float(), size=(size, size), mode="bilinear", antialias=True)[0]
              for s in styles]
    tiles = [torch.ones_like(contents[0]), *thumbs]
    for i in range(n):
        tiles += [contents[i], *(o[i] for o in outputs)]
    return image_grid(tiles, ncol=1 + len(styles))


@torch.no_grad()
def evaluate_adain(decoder: AdaINDecoder, encoder: VGGEncoder, contents: torch.Tensor,
                   styles: Sequence[torch.Tensor], config: AdaINTrainConfig) -> dict[str, float]:
    """Mean weighted content/style losses of every photo x every style (whole paintings)."""
    totals = {"content": 0.0, "style": 0.0, "total": 0.0}
    if not styles:
        return {}
    c_feat = encoder(contents, [ADAIN_LAYER])[ADAIN_LAYER]
    for s in styles:
        s_feats = encoder(s, list(STYLE_LAYERS))
        target = adain_from_stats(c_feat, calc_mean_std(s_feats[ADAIN_LAYER]))
        expanded = {k: v.expand(contents.shape[0], -1, -1, -1) for k, v in s_feats.items()}
        terms = adain_losses(encoder, decoder(target), target, expanded, config.content_weight, config.style_weight)
        for k in totals:
            totals[k] += float(terms[k]) / len(styles)
    return {k: round(v, 5) for k, v in totals.items()}


def train_adain(
    content_dir: str | os.PathLike | Sequence[str | os.PathLike],
    style_dir: str | os.PathLike | Sequence[str | os.PathLike],
    out: str | os.PathLike,
    config: AdaINTrainConfig | None = None,
    options: TrainOptions | None = None,
    checkpoint: str | os.PathLike | None = None,
    half: bool = False,
    encoder_weights: VGGWeights | None = VGGWeights(),
    init: str | os.PathLike | None = None,
) -> ArbitrarySummary:
    """Train an AdaIN decoder on photos (``content_dir``) and paintings (``style_dir``).

    The decoder is written to ``out`` (also after a time limit or Ctrl-C); the resumable
    checkpoint goes to ``checkpoint`` (default ``<out>.ckpt.safetensors``). Default options:
    batch 8 at 256 px, Adam lr 1e-4 with the paper's decay (``options.lr_schedule`` "cosine"
    or warm-up steps replace it). With ``init`` (a decoder file), training continues that
    decoder with its own width and held-out paintings, and the file's training history is kept
    under ``"continued"``. ``encoder_weights=None`` uses a random VGG (tests only).
    """
    config = config or AdaINTrainConfig()
    options = options or TrainOptions(lr=1e-4)
    if options.size % 8:
        raise PainterlyError(f"--size must be a multiple of 8 for the AdaIN decoder, got {options.size}")
    objective = AdaINObjective(content_dir, style_dir, out, config, options, half, encoder_weights, init)
    return objective.summary(train(objective, options, checkpoint or default_checkpoint(out)))


def check_continuation(init: str | os.PathLike, prior: dict[str, Any], config: Any) -> Any:
    """The training config to continue a model trained with ``prior`` (its file's training record):
    the same held-out paintings, or the generalization numbers would mean nothing."""
    held = prior.get("held_out")
    if held is not None and sorted(held) != sorted(config.hold_out):
        raise PainterlyError(f"'{init}' was trained with held-out paintings {', '.join(held) or 'none'}; "
                             f"continue it with the same --hold-out (got {', '.join(config.hold_out) or 'none'})")
    return config


def continued_record(prior: dict[str, Any], record: dict[str, Any]) -> dict[str, Any]:
    """``prior``'s training record with ``record`` appended under ``"continued"`` (and its evaluation on top)."""
    out = dict(prior)
    out["continued"] = [*prior.get("continued", []), record]
    if record.get("evaluation"):
        out["evaluation"] = record["evaluation"]
    return out


class ArbitraryObjective(Objective):
    """What the arbitrary-style trainers (AdaIN decoder, meta network) share: photos and an augmented
    painting pool with held-out paintings, preview grids of held-out and trained paintings, and at the
    end an evaluation on both plus the training record (continuing the ``init`` file's history).

    Subclasses give ``build_model()`` (the network, new or continued from ``init``; may adjust
    ``self.settings``), ``encoder_layers(model)``, ``losses``, ``evaluate(model, contents, styles)``,
    ``stylize_previews(model, contents, styles)``, ``run_config(model)`` and ``save(model, record)``.
    """

    def __init__(self, content_dir, style_dir, out, config: Any, options: TrainOptions, half: bool,
                 encoder_weights: VGGWeights | None, init) -> None:
        self.content_dir, self.style_dir, self.out, self.settings = content_dir, style_dir, out, config
        self.options, self.half, self.encoder_weights, self.init = options, half, encoder_weights, init
        self.prior: dict[str, Any] | None = None

    # -- per model kind ----------------------------------------------------------------------
    def build_model(self) -> torch.nn.Module:
        raise NotImplementedError

    def encoder_layers(self, model: torch.nn.Module) -> list[str]:
        raise NotImplementedError

    def prepare(self, model: torch.nn.Module, device: torch.device) -> None:
        """After the data is loaded, before training (e.g. input statistics)."""

    def evaluate(self, model: torch.nn.Module, contents: torch.Tensor,
                 styles: Sequence[torch.Tensor]) -> dict[str, float]:
        raise NotImplementedError

    def stylize_previews(self, model: torch.nn.Module, contents: torch.Tensor,
                         styles: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        raise NotImplementedError

    def run_config(self, model: torch.nn.Module) -> dict[str, Any]:
        return {}

    def save(self, model: torch.nn.Module, record: dict[str, Any]) -> str:
        raise NotImplementedError

    # -- shared ------------------------------------------------------------------------------
    def build(self, device: torch.device, dist: DistInfo) -> torch.nn.Module:
        config, options = self.settings, self.options
        model = self.model = self.build_model()
        config = self.settings  # build_model may have adjusted it to a continued model's
        self.device, self.dist = device, dist
        self.encoder = VGGEncoder(self.encoder_layers(model), weights=self.encoder_weights).to(device)
        if options.channels_last:
            self.encoder.to(memory_format=torch.channels_last)
        self.contents = ContentDataset(self.content_dir, size=options.size, scale=config.content_scale, device=device,
                                       channels_last=options.channels_last, seed=options.seed)
        self.pool = StylePool(self.style_dir, size=options.size, scale=config.style_scale, hold_out=config.hold_out,
                              photos=self.contents, photo_prob=config.photo_prob, jitter=config.jitter,
                              device=device, channels_last=options.channels_last, seed=options.seed)
        self.prepare(model, device)
        self.fixed = self.contents.fixed_batch(3).to(device)
        preview_paths = self.pool.held_out_paths[:2] + list(self.pool.paintings.paths[:2])
        self.previews = load_style_images(preview_paths, options.size, device)
        return model

    def sample(self, model: torch.nn.Module, step: int):
        return preview_grid(self.fixed, self.previews, self.stylize_previews(model, self.fixed, self.previews))

    def config(self) -> dict[str, Any]:
        o = self.options
        return {
            **self.settings.to_dict(), **self.run_config(self.model), "batch_size": o.batch_size, "size": o.size,
            "lr": o.lr, "seed": o.seed, "world_size": self.dist.world_size,
            "init": str(self.init) if self.init is not None else None, "lr_schedule": o.lr_schedule,
            "warmup_steps": o.warmup_steps,
        }

    def finish(self, model: torch.nn.Module, run: Run) -> str | None:
        evaluation: dict[str, dict[str, float]] = {}
        device, pool = run.device, self.pool
        if run.dist.is_main:
            eval_size = self.settings.eval_size or self.options.size
            eval_contents = self.contents.fixed_batch(4, size=eval_size).to(device)
            with autocast(device, run.trainer.dtype):
                evaluation = {
                    "trained_styles": self.evaluate(model, eval_contents,
                                                    load_style_images(pool.paintings.paths, eval_size, device)),
                    "held_out_styles": self.evaluate(model, eval_contents,
                                                     load_style_images(pool.held_out_paths, eval_size, device)),
                }
        self.evaluation = evaluation
        record = training_record(run.result, run.trainer, run.dist, device, run.started, len(self.contents), pool,
                                 evaluation, self.config())
        if self.prior is not None:
            record = continued_record(self.prior, record)
        return self.save(model, record) if run.dist.is_main else None

    def summary(self, run: Run) -> ArbitrarySummary:
        return ArbitrarySummary(run.output, run.result, self.pool.names, self.pool.held_out, self.evaluation)


class AdaINObjective(ArbitraryObjective):
    """The AdaIN decoder; see the module docstring."""

    def build_model(self) -> torch.nn.Module:
        if self.init is not None:
            decoder = load_decoder(self.init).train().requires_grad_(True)
            self.prior = decoder.training_info
            self.settings = replace(check_continuation(self.init, self.prior, self.settings),
                                    width=decoder.config.width)
            return decoder
        return AdaINDecoder(AdaINDecoderConfig(width=self.settings.width))

    def encoder_layers(self, model: torch.nn.Module) -> list[str]:
        return list(STYLE_LAYERS)

    def lr_at(self, options: TrainOptions) -> LrAt | None:
        lr0, decay = options.lr, self.settings.lr_decay
        return lr_schedule(options.lr, options.steps, options.lr_schedule, options.warmup_steps) or (
            lambda step, progress=None: lr0 / (1.0 + decay * step))

    @torch.no_grad()
    def adain_batch(self, ctx: StepContext,
                    style_layers: Sequence[str]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """A step's AdaIN targets (photos' relu4_1 features with the styles' statistics) and the
        styles' features at ``style_layers`` (which must include relu4_1)."""
        batch, encoder = self.options.batch_size, self.encoder
        x = ctx.sample(self.contents, batch)
        s = self.pool.sample(batch, ctx.generator)
        c_feat = encoder(x, [ADAIN_LAYER])[ADAIN_LAYER]
        s_feats = encoder(s, list(style_layers))
        return adain_from_stats(c_feat, calc_mean_std(s_feats[ADAIN_LAYER])), s_feats

    def losses(self, ctx: StepContext) -> dict[str, torch.Tensor]:
        target, s_feats = self.adain_batch(ctx, STYLE_LAYERS)
        return adain_losses(self.encoder, ctx.model(target), target, s_feats, self.settings.content_weight,
                            self.settings.style_weight)

    def stylize_previews(self, model, contents, styles) -> list[torch.Tensor]:
        c_feat = self.encoder(contents, [ADAIN_LAYER])[ADAIN_LAYER]
        return [model(adain_from_stats(c_feat, calc_mean_std(self.encoder(s, [ADAIN_LAYER])[ADAIN_LAYER])))
                for s in styles]

    def evaluate(self, model, contents, styles) -> dict[str, float]:
        return evaluate_adain(model, self.encoder, contents, styles, self.settings)

    def run_config(self, model: torch.nn.Module) -> dict[str, Any]:
        return {"decoder": {"in_channels": model.config.in_channels, "width": model.config.width}}

    def save(self, model: torch.nn.Module, record: dict[str, Any]) -> str:
        return str(save_decoder(model.cpu().float(), self.out, training=record, half=self.half))


def training_record(result: Any, trainer: Any, dist: Any, device: torch.device, started: float, n_contents: int,
                    pool: StylePool, evaluation: dict, run_config: dict) -> dict[str, Any]:
    """The training facts an arbitrary-style model file carries in its metadata (and its model card)."""
    return {
        "steps": result.step, "stop_reason": result.stop_reason, "seconds": round(result.elapsed, 1),
        "images_per_s": round(result.images_per_s, 2),
        "final_losses": {k: round(v, 5) for k, v in result.losses.items()},
        "device": str(device), "precision": "fp32" if trainer.dtype is None else "bf16",
        "world_size": dist.world_size,
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(started + result.elapsed)),
        "content_images": n_contents, "trained_styles": pool.names, "held_out": pool.held_out,
        "evaluation": evaluation, "config": run_config,
    }
