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

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import torch

from ...encoders import VGGEncoder, VGGWeights
from ...losses import calc_mean_std, content_loss, mean_std_loss
from ...models.adain import (
    ADAIN_LAYER,
    STYLE_LAYERS,
    AdaINDecoder,
    AdaINDecoderConfig,
    adain_from_stats,
    load_decoder,
    save_decoder,
)
from ..loop import StepContext
from ..options import LrAt, PathLike, Paths, TrainOptions, lr_schedule
from .arbitrary import DEFAULT_HOLD_OUT, ArbitraryObjective, ArbitrarySummary, check_continuation


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


def adain_losses(encoder: VGGEncoder, decoded: torch.Tensor, target: torch.Tensor,
                 style_feats: dict[str, torch.Tensor], content_weight: float,
                 style_weight: float, feats: dict[str, torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
    """Weighted content and style terms for decoded images (see the module docstring). ``feats``: the
    encoder's features of ``decoded`` at every style layer, when already computed."""
    feats = feats if feats is not None else encoder(decoded, list(STYLE_LAYERS))
    content = content_loss(feats[ADAIN_LAYER], target)
    energy = target.detach().float().pow(2).mean().clamp_min(1e-8)
    style = sum(mean_std_loss(feats[n], style_feats[n]) for n in STYLE_LAYERS) / energy
    c, s = content_weight * content, style_weight * style
    return {"content": c, "style": s, "total": c + s}


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


def train_adain(content_dir: Paths, style_dir: Paths, out: PathLike, config: AdaINTrainConfig | None = None,
                options: TrainOptions | None = None, checkpoint: PathLike | None = None, half: bool = False,
                encoder_weights: VGGWeights | None = VGGWeights(), init: PathLike | None = None) -> ArbitrarySummary:
    """Train an AdaIN decoder on photos (``content_dir``) and paintings (``style_dir``).

    The decoder is written to ``out`` (also after a time limit or Ctrl-C); the resumable
    checkpoint goes to ``checkpoint`` (default ``<out>.ckpt.safetensors``). Default options:
    batch 8 at 256 px, Adam lr 1e-4 with the paper's decay (``options.lr_schedule`` "cosine"
    or warm-up steps replace it). With ``init`` (a decoder file), training continues that
    decoder with its own width and held-out paintings, and the file's training history is kept
    under ``"continued"``. ``encoder_weights=None`` uses a random VGG (tests only).
    """
    objective = AdaINObjective(content_dir, style_dir, out, config or AdaINTrainConfig(), options, half,
                               encoder_weights, init)
    return objective.train(checkpoint)


class AdaINObjective(ArbitraryObjective):
    """The AdaIN decoder; see the module docstring."""

    def check(self) -> None:
        self.options.check_size(8, "the AdaIN decoder")

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

