"""Training of the meta network (Shen et al. 2018).

Per step: ``styles_per_step`` augmented style crops (:class:`StylePool`: paintings at several
scales, flipped, colour-jittered, sometimes photos) give their VGG statistics to the meta
network, which emits one transformer per style; each transformer stylizes its share of the
batch of photo crops. The loss is the feed-forward trainer's perceptual loss (same layers and
default weights as :class:`painterly.training.feedforward.FeedForwardConfig`: content relu3_3,
Gram style loss relu1_1..relu4_1 with weight 25, TV 1e-2), so the generated networks are
judged by the same standard as the trained ones. Only the meta network is trained; the
transformer is just the shape of its output.

Held-out paintings are never trained on; at the end the loss of the generated networks is
measured on held-out and on trained paintings and saved in the meta network's metadata.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from ..encoders import VGGEncoder, VGGWeights
from ..errors import PainterlyError
from ..losses import PerceptualLoss, gram_matrix
from ..models.meta import (
    MetaConfig,
    MetaNetwork,
    load_meta,
    save_meta,
    style_statistics,
    widen,
    with_clamp_output,
    with_upsample,
)
from ..models.transformer import TransformerConfig
from ..runtime import autocast, resolve_precision
from .adain import (
    DEFAULT_HOLD_OUT,
    ArbitrarySummary,
    check_continuation,
    continued_record,
    default_checkpoint,
    preview_grid,
    training_record,
)
from .common import (
    StepContext,
    Trainer,
    TrainOptions,
    lr_schedule,
)
from .data import ContentDataset
from .distributed import distributed, unwrap
from .style_pool import StylePool, load_style_images


@dataclass
class MetaTrainConfig:
    """Loss, model and augmentation settings of a meta-network training run."""

    content_weight: float = 1.0
    style_weight: float = 25.0
    tv_weight: float = 1e-2
    content_layers: dict[str, float] = field(default_factory=lambda: {"relu3_3": 1.0})
    style_layers: dict[str, float] = field(
        default_factory=lambda: {n: 1.0 for n in ("relu1_1", "relu2_1", "relu3_1", "relu4_1")})
    transformer: str = "slim"  # TransformerConfig preset of the generated network
    #: the generated network's output ("clamp": no saturated, gradient-free blobs; a sigmoid network
    #: continued with --init is converted, see ``with_clamp_output``)
    output: str = "clamp"
    #: the generated network's 2x upsampling ("bilinear": no 4-pixel lattice; a network continued
    #: with --init is switched to it, see ``with_upsample``)
    upsample: str = "bilinear"
    #: with --init: make the generated networks this many times wider first, computing the same
    #: function (see ``models.meta.widen``), to continue training with more capacity
    widen: int = 1
    group_hidden: int = 64
    styles_per_step: int = 2  # the batch is split evenly between this many styles
    hold_out: tuple[str, ...] = DEFAULT_HOLD_OUT
    photo_prob: float = 0.1
    jitter: float = 0.8
    content_scale: tuple[float, float] = (1.0, 2.0)
    style_scale: tuple[float, float] = (1.0, 3.0)
    norm_batches: int = 8  # batches of 16 augmented styles that standardize the meta inputs (0: none)
    base_lr_scale: float = 10.0  # learning-rate multiplier of the heads' biases (the shared base network)
    eval_size: int | None = None  # side of the evaluation photos (default: the training size)

    def to_dict(self) -> dict[str, Any]:
        return {"content_weight": self.content_weight, "style_weight": self.style_weight, "tv_weight": self.tv_weight,
                "content_layers": dict(self.content_layers), "style_layers": dict(self.style_layers),
                "transformer": self.transformer, "output": self.output, "upsample": self.upsample,
                "widen": self.widen, "group_hidden": self.group_hidden,
                "styles_per_step": self.styles_per_step, "hold_out": list(self.hold_out),
                "photo_prob": self.photo_prob, "jitter": self.jitter, "content_scale": list(self.content_scale),
                "style_scale": list(self.style_scale), "base_lr_scale": self.base_lr_scale,
                "norm_batches": self.norm_batches,
                "eval_size": self.eval_size}

    def perceptual_loss(self) -> PerceptualLoss:
        return PerceptualLoss(content_layers=dict(self.content_layers), style_layers=dict(self.style_layers),
                              content_weight=self.content_weight, style_weight=self.style_weight,
                              tv_weight=self.tv_weight)

    def meta_config(self) -> MetaConfig:
        transformer = replace(TransformerConfig.preset(self.transformer), output=self.output, upsample=self.upsample)
        return MetaConfig(transformer=transformer.to_dict(), group_hidden=self.group_hidden)


def param_groups(meta: MetaNetwork, lr: float, base_lr_scale: float) -> list[dict[str, Any]]:
    """Adam groups: the heads' biases are the shared base transformer (trained like one, at
    ``lr * base_lr_scale``); the trunk and head weights produce style-dependent offsets (at ``lr``)."""
    base = [h.bias for h in meta.heads]
    ids = {id(p) for p in base}
    rest = [p for p in meta.parameters() if id(p) not in ids]
    return [{"params": rest, "lr": lr}, {"params": base, "lr": lr * base_lr_scale}]


def stylize_per_style(meta: MetaNetwork, params: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """Split ``x`` evenly over the generated styles and stylize each part with its network."""
    n = next(iter(params.values())).shape[0]
    parts = x.chunk(n, dim=0)
    return torch.cat([meta.run(params, i, part) for i, part in enumerate(parts)])


@torch.no_grad()
def evaluate_meta(meta: MetaNetwork, encoder: VGGEncoder, loss_fn: PerceptualLoss, contents: torch.Tensor,
                  styles: Sequence[torch.Tensor]) -> dict[str, float]:
    """Mean weighted losses of the generated networks over every photo x every (whole) painting."""
    if not styles:
        return {}
    totals: dict[str, float] = {}
    targets = encoder(contents, list(loss_fn.content_layers))
    for s in styles:
        feats = encoder(s)
        params = meta(style_statistics(feats, meta.config.stat_layers))
        y = meta.run(params, 0, contents)
        grams = {n: gram_matrix(feats[n]) for n in loss_fn.style_layers}
        terms = loss_fn(y, encoder(y), targets, grams)
        for k, v in terms.items():
            totals[k] = totals.get(k, 0.0) + float(v) / len(styles)
    return {k: round(v, 5) for k, v in totals.items()}


def train_meta(
    content_dir: str | os.PathLike | Sequence[str | os.PathLike],
    style_dir: str | os.PathLike | Sequence[str | os.PathLike],
    out: str | os.PathLike,
    config: MetaTrainConfig | None = None,
    options: TrainOptions | None = None,
    checkpoint: str | os.PathLike | None = None,
    half: bool = False,
    encoder_weights: VGGWeights | None = VGGWeights(),
    init: str | os.PathLike | None = None,
) -> ArbitrarySummary:
    """Train a meta network on photos (``content_dir``) and paintings (``style_dir``).

    The meta network is written to ``out`` (also after a time limit or Ctrl-C); the resumable
    checkpoint goes to ``checkpoint`` (default ``<out>.ckpt.safetensors``). With ``init`` (a meta
    network file), training continues that network (its architecture, input standardization and
    held-out paintings) and the file's training history is kept under ``"continued"``.
    """
    config = config or MetaTrainConfig()
    options = options or TrainOptions(lr=1e-4)
    if options.size % 4:
        raise PainterlyError(f"--size must be a multiple of 4, got {options.size}")
    if config.styles_per_step < 1 or options.batch_size % config.styles_per_step:
        raise PainterlyError(f"--batch-size ({options.batch_size}) must be a multiple of --styles-per-step "
                             f"({config.styles_per_step})")
    if config.widen < 1:
        raise PainterlyError(f"--widen must be a positive integer, got {config.widen}")
    if config.widen != 1 and init is None:
        raise PainterlyError("--widen widens a network continued with --init; choose a new network's size "
                             "with --transformer")
    with distributed(options.device) as (dist, device):
        return _train(content_dir, style_dir, out, config, options, checkpoint, half, encoder_weights, dist, device,
                      init)


def _train(content_dir, style_dir, out, config, options, checkpoint, half, encoder_weights, dist, device, init):
    torch.manual_seed(options.seed)
    prior: dict[str, Any] | None = None
    if init is not None:
        meta = load_meta(init).train().requires_grad_(True)
        prior = meta.training_info
        if config.output == "clamp":
            meta = with_clamp_output(meta)
        elif meta.config.transformer_config().output != config.output:
            raise PainterlyError(f"'{init}' generates networks with a clamped output; they cannot be continued "
                                 f"with a {config.output} output")
        meta = widen(with_upsample(meta, config.upsample), config.widen, seed=options.seed)
        config = replace(check_continuation(init, prior, config), group_hidden=meta.config.group_hidden,
                         transformer=(prior.get("config") or {}).get("transformer", config.transformer))
    else:
        meta = MetaNetwork(config.meta_config())
    optimizer = torch.optim.Adam(param_groups(meta, options.lr, config.base_lr_scale))
    loss_fn = config.perceptual_loss()
    layers = list(dict.fromkeys([*loss_fn.layers, *meta.config.stat_layers]))
    encoder = VGGEncoder(layers, weights=encoder_weights).to(device)
    if options.channels_last:
        encoder.to(memory_format=torch.channels_last)
    contents = ContentDataset(content_dir, size=options.size, scale=config.content_scale, device=device,
                              channels_last=options.channels_last, seed=options.seed)
    pool = StylePool(style_dir, size=options.size, scale=config.style_scale, hold_out=config.hold_out,
                     photos=contents, photo_prob=config.photo_prob, jitter=config.jitter, device=device,
                     channels_last=options.channels_last, seed=options.seed)
    dtype = resolve_precision("fp32" if options.fp32 else "auto", device)
    if config.norm_batches > 0 and prior is None:
        with torch.no_grad(), autocast(device, dtype):  # standardize the meta inputs over many augmented styles
            gen = torch.Generator().manual_seed(options.seed)
            samples = [style_statistics(encoder(pool.sample(16, gen), list(meta.config.stat_layers)),
                                        meta.config.stat_layers) for _ in range(config.norm_batches)]
            meta.fit_input_normalization(torch.cat(samples))
    n_styles = config.styles_per_step
    per_style = options.batch_size // n_styles
    style_layers, content_layers = list(loss_fn.style_layers), list(loss_fn.content_layers)
    stat_layers = meta.config.stat_layers

    def step_fn(ctx: StepContext) -> dict[str, torch.Tensor]:
        x = ctx.sample(contents, options.batch_size)
        s = pool.sample(n_styles, ctx.generator)
        with torch.no_grad():
            s_feats = encoder(s, list(dict.fromkeys([*style_layers, *stat_layers])))
            stats = style_statistics(s_feats, stat_layers)
            grams = {n: gram_matrix(s_feats[n]).repeat_interleave(per_style, dim=0) for n in style_layers}
            targets = encoder(x, content_layers)
        params = ctx.model(stats)
        y = stylize_per_style(unwrap(ctx.model), params, x)
        return loss_fn(y, encoder(y), targets, grams)

    fixed = contents.fixed_batch(3).to(device)
    preview_paths = pool.held_out_paths[:2] + list(pool.paintings.paths[:2])
    previews = load_style_images(preview_paths, options.size, device)

    def sample_fn(model: torch.nn.Module, step: int):
        outs = []
        for s in previews:
            params = model(style_statistics(encoder(s, list(stat_layers)), stat_layers))
            outs.append(model.run(params, 0, fixed))
        return preview_grid(fixed, previews, outs)

    run_config = {
        **config.to_dict(), "meta": meta.config.to_dict(), "batch_size": options.batch_size, "size": options.size,
        "lr": options.lr, "seed": options.seed, "world_size": dist.world_size,
        "init": str(init) if init is not None else None, "lr_schedule": options.lr_schedule,
        "warmup_steps": options.warmup_steps,
    }
    ckpt = Path(checkpoint) if checkpoint else default_checkpoint(out)
    trainer = Trainer(meta, optimizer, step_fn, options, ckpt, sample_fn=sample_fn, meta={"config": run_config},
                      lr_at=lr_schedule(options.lr, options.steps, options.lr_schedule, options.warmup_steps),
                      device=device, dist=dist)
    started = time.time()
    result = trainer.run()
    meta.eval()
    evaluation: dict[str, dict[str, float]] = {}
    if dist.is_main:
        eval_size = config.eval_size or options.size
        eval_contents = contents.fixed_batch(4, size=eval_size).to(device)
        with autocast(device, trainer.dtype):
            evaluation = {
                "trained_styles": evaluate_meta(meta, encoder, loss_fn, eval_contents,
                                                load_style_images(pool.paintings.paths, eval_size, device)),
                "held_out_styles": evaluate_meta(meta, encoder, loss_fn, eval_contents,
                                                 load_style_images(pool.held_out_paths, eval_size, device)),
            }
    record = training_record(result, trainer, dist, device, started, len(contents), pool, evaluation, run_config)
    if prior is not None:
        record = continued_record(prior, record)
    model_path = None
    if dist.is_main:
        model_path = str(save_meta(meta.cpu().float(), out, training=record, half=half))
    return ArbitrarySummary(model_path, result, pool.names, pool.held_out, evaluation)
