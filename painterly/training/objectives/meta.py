"""Training of the meta network (Shen et al. 2018).

Per step: ``styles_per_step`` augmented style crops (:class:`StylePool`: paintings at several
scales, flipped, colour-jittered, sometimes photos) give their VGG statistics to the meta
network, which emits one transformer per style; each transformer stylizes its share of the
batch of photo crops. The loss is the feed-forward trainer's perceptual loss (same layers and
default weights, :class:`.feedforward.PerceptualSettings`: content relu3_3, Gram style loss
relu1_1..relu4_1 with weight 25, TV 1e-2), so the generated networks are
judged by the same standard as the trained ones. Only the meta network is trained; the
transformer is just the shape of its output.

Held-out paintings are never trained on; at the end the loss of the generated networks is
measured on held-out and on trained paintings and saved in the meta network's metadata.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import torch

from ...encoders import VGGEncoder, VGGWeights
from ...errors import PainterlyError
from ...losses import PerceptualLoss, gram_matrix
from ...models.meta import (
    MetaConfig,
    MetaNetwork,
    load_meta,
    save_meta,
    style_statistics,
    widen,
    with_clamp_output,
    with_upsample,
)
from ...models.transformer import TransformerConfig
from ...runtime import autocast, resolve_precision
from ..distributed import unwrap
from ..loop import StepContext
from ..options import PathLike, Paths, TrainOptions
from .arbitrary import DEFAULT_HOLD_OUT, ArbitraryObjective, ArbitrarySummary, check_continuation
from .feedforward import PerceptualSettings


@dataclass
class MetaTrainConfig(PerceptualSettings):
    """Loss (the feed-forward trainer's, see :class:`PerceptualSettings`), model and augmentation settings
    of a meta-network training run."""

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
        return {**self.loss_dict(), "transformer": self.transformer, "output": self.output, "upsample": self.upsample,
                "widen": self.widen, "group_hidden": self.group_hidden,
                "styles_per_step": self.styles_per_step, "hold_out": list(self.hold_out),
                "photo_prob": self.photo_prob, "jitter": self.jitter, "content_scale": list(self.content_scale),
                "style_scale": list(self.style_scale), "base_lr_scale": self.base_lr_scale,
                "norm_batches": self.norm_batches,
                "eval_size": self.eval_size}

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


def train_meta(content_dir: Paths, style_dir: Paths, out: PathLike, config: MetaTrainConfig | None = None,
               options: TrainOptions | None = None, checkpoint: PathLike | None = None, half: bool = False,
               encoder_weights: VGGWeights | None = VGGWeights(), init: PathLike | None = None) -> ArbitrarySummary:
    """Train a meta network on photos (``content_dir``) and paintings (``style_dir``).

    The meta network is written to ``out`` (also after a time limit or Ctrl-C); the resumable
    checkpoint goes to ``checkpoint`` (default ``<out>.ckpt.safetensors``). With ``init`` (a meta
    network file), training continues that network (its architecture, input standardization and
    held-out paintings) and the file's training history is kept under ``"continued"``.
    """
    objective = MetaObjective(content_dir, style_dir, out, config or MetaTrainConfig(), options, half,
                              encoder_weights, init)
    return objective.train(checkpoint)


class MetaObjective(ArbitraryObjective):
    """The meta network; see the module docstring."""

    def check(self) -> None:
        config, options = self.settings, self.options
        options.check_size(4)
        if config.styles_per_step < 1 or options.batch_size % config.styles_per_step:
            raise PainterlyError(f"--batch-size ({options.batch_size}) must be a multiple of --styles-per-step "
                                 f"({config.styles_per_step})")
        if config.widen < 1:
            raise PainterlyError(f"--widen must be a positive integer, got {config.widen}")
        if config.widen != 1 and self.init is None:
            raise PainterlyError("--widen widens a network continued with --init; choose a new network's size "
                                 "with --transformer")

    def build_model(self) -> torch.nn.Module:
        config, init = self.settings, self.init
        self.loss_fn = config.perceptual_loss()
        if init is None:
            return MetaNetwork(config.meta_config())
        meta = load_meta(init).train().requires_grad_(True)
        self.prior = prior = meta.training_info
        if config.output == "clamp":
            meta = with_clamp_output(meta)
        elif meta.config.transformer_config().output != config.output:
            raise PainterlyError(f"'{init}' generates networks with a clamped output; they cannot be continued "
                                 f"with a {config.output} output")
        meta = widen(with_upsample(meta, config.upsample), config.widen, seed=self.options.seed)
        self.settings = replace(check_continuation(init, prior, config), group_hidden=meta.config.group_hidden,
                                transformer=(prior.get("config") or {}).get("transformer", config.transformer))
        return meta

    def optimizer(self, model: torch.nn.Module, options: TrainOptions) -> torch.optim.Optimizer:
        return torch.optim.Adam(param_groups(model, options.lr, self.settings.base_lr_scale))

    def encoder_layers(self, model: torch.nn.Module) -> list[str]:
        return list(dict.fromkeys([*self.loss_fn.layers, *model.config.stat_layers]))

    def prepare(self, model: torch.nn.Module, device: torch.device) -> None:
        """Standardize the meta inputs over many augmented styles (a new network only)."""
        config, options = self.settings, self.options
        if config.norm_batches <= 0 or self.prior is not None:
            return
        dtype = resolve_precision("fp32" if options.fp32 else "auto", device)
        stat_layers = model.config.stat_layers
        with torch.no_grad(), autocast(device, dtype):
            gen = torch.Generator().manual_seed(options.seed)
            samples = [style_statistics(self.encoder(self.pool.sample(16, gen), list(stat_layers)), stat_layers)
                       for _ in range(config.norm_batches)]
            model.fit_input_normalization(torch.cat(samples))

    def losses(self, ctx: StepContext) -> dict[str, torch.Tensor]:
        options, encoder, loss_fn = self.options, self.encoder, self.loss_fn
        n_styles = self.settings.styles_per_step
        per_style = options.batch_size // n_styles
        stat_layers = self.model.config.stat_layers
        style_layers, content_layers = list(loss_fn.style_layers), list(loss_fn.content_layers)
        x = ctx.sample(self.contents, options.batch_size)
        s = self.pool.sample(n_styles, ctx.generator)
        with torch.no_grad():
            s_feats = encoder(s, list(dict.fromkeys([*style_layers, *stat_layers])))
            stats = style_statistics(s_feats, stat_layers)
            grams = {n: gram_matrix(s_feats[n]).repeat_interleave(per_style, dim=0) for n in style_layers}
            targets = encoder(x, content_layers)
        params = ctx.model(stats)
        y = stylize_per_style(unwrap(ctx.model), params, x)
        return loss_fn(y, encoder(y), targets, grams)

    def stylize_previews(self, model, contents, styles) -> list[torch.Tensor]:
        stat_layers = model.config.stat_layers
        return [model.run(model(style_statistics(self.encoder(s, list(stat_layers)), stat_layers)), 0, contents)
                for s in styles]

    def evaluate(self, model, contents, styles) -> dict[str, float]:
        return evaluate_meta(model, self.encoder, self.loss_fn, contents, styles)

    def run_config(self, model: torch.nn.Module) -> dict[str, Any]:
        return {"meta": model.config.to_dict()}

    def save(self, model: torch.nn.Module, record: dict[str, Any]) -> str:
        return str(save_meta(model.cpu().float(), self.out, training=record, half=self.half))
