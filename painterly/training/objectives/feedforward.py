"""Training of the feed-forward multi-style network (Johnson et al. 2016 + Dumoulin et al. 2017).

One conditional-instance-norm :class:`TransformerNet` learns all given styles jointly: every
sample of a batch gets a random style, the loss compares the output's VGG features with the
photo's (content, relu3_3 by default) and with that style's Gram matrices (relu1_1..relu4_1),
plus a small total-variation term. The photo's content features come from one no-grad VGG
pass up to the content layer; the output's features for every loss term from one VGG pass.

Adding styles to a trained model (``base=``) appends new gamma/beta rows to every CIN layer
and trains only those rows; every other weight, including the old styles' rows, is frozen, so
the old styles' outputs stay bit-identical.

Python API: :func:`train_feedforward`; :class:`FeedForwardObjective` on the shared loop (:mod:`..loop`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from ...encoders import VGGEncoder, VGGWeights
from ...errors import PainterlyError
from ...imageio import MIN_SIDE, load_image, to_tensor
from ...losses import PerceptualLoss, gram_matrix
from ...models.io import StylizationModel, load_model, save_model
from ...models.transformer import TransformerConfig, TransformerNet
from ...styles import StyleInfo, style_info_for
from ..checkpoint import default_checkpoint
from ..data import ContentDataset
from ..distributed import DistInfo
from ..loop import Objective, Run, StepContext, on_device, train
from ..options import PathLike, Paths, TrainOptions, TrainResult
from ..preview import image_grid

DEFAULT_STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1")
#: Learning rate that suits training only the new styles' gamma/beta rows (``base=``).
ADD_STYLE_LR = 1e-2


@dataclass
class PerceptualSettings:
    """Weights and layers of the feed-forward perceptual loss (also the meta network's).

    Defaults: content at relu3_3 (Johnson et al.: keeps the photo readable), Gram style losses at
    relu1_1..relu4_1 (as Dumoulin et al.; a VGG pass to relu4_1 only), style weight 25 against
    content 1 with painterly's relative losses, TV 0.01.
    """

    content_weight: float = 1.0
    style_weight: float = 25.0
    tv_weight: float = 1e-2
    content_layers: dict[str, float] = field(default_factory=lambda: {"relu3_3": 1.0})
    style_layers: dict[str, float] = field(default_factory=lambda: {n: 1.0 for n in DEFAULT_STYLE_LAYERS})

    def loss_dict(self) -> dict[str, Any]:
        """These settings as JSON-able values (the start of a config's ``to_dict()``)."""
        return {"content_weight": self.content_weight, "style_weight": self.style_weight, "tv_weight": self.tv_weight,
                "content_layers": dict(self.content_layers), "style_layers": dict(self.style_layers)}

    def perceptual_loss(self) -> PerceptualLoss:
        return PerceptualLoss(content_layers=dict(self.content_layers), style_layers=dict(self.style_layers),
                              content_weight=self.content_weight, style_weight=self.style_weight,
                              tv_weight=self.tv_weight)


@dataclass
class FeedForwardConfig(PerceptualSettings):
    """Loss and model settings of a feed-forward training run (stored in checkpoints and models).

    The loss defaults (:class:`PerceptualSettings`) are the settings of the shipped model, chosen
    over style weight 60 (trained side by side on a GPU: 60 hid the photo's content), and so is the
    sigmoid output (in short runs it learned the paintings' textures far sooner than the
    un-squashed ``"clamp"`` output).
    """

    style_size: int = 512  # longest side of the style images for their Gram matrices
    preset: str = "full"  # TransformerConfig preset for a new model
    output: str = "sigmoid"  # TransformerConfig.output for a new model
    crop_scale: tuple[float, float] = (1.0, 2.0)

    def to_dict(self) -> dict[str, Any]:
        return {**self.loss_dict(), "style_size": self.style_size, "preset": self.preset, "output": self.output,
                "crop_scale": list(self.crop_scale)}


@dataclass
class TrainSummary:
    """What a training run produced."""

    model_path: str | None
    result: TrainResult
    styles: list[StyleInfo]
    trained_styles: list[str]
    net: TransformerNet | None = None  # the trained network (on CPU, eval mode)


def style_grams(encoder: VGGEncoder, images: Sequence[torch.Tensor], layers: Sequence[str]) -> dict[str, torch.Tensor]:
    """Stacked Gram matrices ``{layer: (S, C, C)}`` of each style image, computed in fp32."""
    out: dict[str, list[torch.Tensor]] = {n: [] for n in layers}
    with torch.no_grad():
        for img in images:
            feats = encoder(img, layers=list(layers))
            for n in layers:
                out[n].append(gram_matrix(feats[n])[0])
    return {n: torch.stack(v) for n, v in out.items()}


def _load_styles(paths: Sequence[PathLike], size: int) -> tuple[list[StyleInfo], list[torch.Tensor]]:
    infos, tensors = [], []
    for p in paths:
        infos.append(style_info_for(p))
        tensors.append(to_tensor(load_image(p, size=size, min_side=MIN_SIDE)))
    names = [s.name for s in infos]
    dups = sorted({n for n in names if names.count(n) > 1})
    if dups:
        raise PainterlyError(f"style names must be unique, got duplicates: {', '.join(dups)}")
    return infos, tensors


def train_feedforward(styles: Sequence[PathLike], data: Paths, out: PathLike, config: FeedForwardConfig | None = None,
                      options: TrainOptions | None = None, base: PathLike | None = None, half: bool = False,
                      checkpoint: PathLike | None = None, encoder_weights: VGGWeights | None = VGGWeights(),
                      model_config: TransformerConfig | None = None, init: PathLike | None = None) -> TrainSummary:
    """Train a multi-style model on ``styles`` (image paths) over the photos in ``data``.

    With ``base`` (a model file), ``styles`` are *added* to that model: only their new CIN rows
    are trained. The model is written to ``out`` (also after a time limit or Ctrl-C, with the
    steps reached); the resumable checkpoint goes to ``checkpoint`` (default
    ``<out>.ckpt.safetensors``). ``model_config`` overrides ``config.preset`` for a new model;
    ``encoder_weights=None`` uses a random VGG (tests only).

    With ``init`` (a model file), training starts from that model's weights and continues on
    *all* of them: ``styles`` must be one painting per style of the model, matched by name (to
    train a model longer, e.g. the shipped one on a faster machine).
    """
    objective = FeedForwardObjective(styles, data, out, config or FeedForwardConfig(), options, base, half,
                                     encoder_weights, model_config, init)
    return objective.train(checkpoint)


@dataclass
class _Start:
    """What a run starts from: the network, all its styles, and the styles it trains."""

    net: TransformerNet
    infos: list[StyleInfo]  # every style of the resulting model, in row order
    new_infos: list[StyleInfo]  # the styles trained, rows old_n.. (all of them unless adding)
    style_images: list[torch.Tensor]  # their paintings, in the same order
    old_n: int = 0  # frozen rows (the base model's styles when adding)
    prior: StylizationModel | None = None  # the base or continued model


def _start(new_infos: list[StyleInfo], style_images: list[torch.Tensor], config: FeedForwardConfig,
           base, init, model_config: TransformerConfig | None) -> _Start:
    """A new network, ``base`` with rows added for ``new_infos``, or the ``init`` model to continue."""
    if init is not None:
        prior = load_model(init)
        given = {s.name: i for i, s in enumerate(new_infos)}
        if set(given) != set(prior.names):
            raise PainterlyError(f"to continue training '{init}', give exactly its styles' paintings "
                                 f"({', '.join(prior.names)}); got {', '.join(given) or 'none'}")
        ordered = [style_images[given[n]] for n in prior.names]  # the model's style order
        return _Start(prior.net, prior.styles, prior.styles, ordered, prior=prior)
    if base is not None:
        prior = load_model(base)
        clash = sorted(set(prior.names) & {s.name for s in new_infos})
        if clash:
            raise PainterlyError(f"model '{base}' already has style(s) {', '.join(clash)}")
        old_n = prior.net.num_styles
        prior.net.add_styles(len(new_infos))
        return _Start(prior.net, prior.styles + new_infos, new_infos, style_images, old_n, prior)
    cfg = model_config or TransformerConfig.preset(config.preset)
    overrides: dict[str, Any] = {"num_styles": len(new_infos)}
    if model_config is None:
        overrides["output"] = config.output
    net = TransformerNet(TransformerConfig.from_dict({**cfg.to_dict(), **overrides}))
    return _Start(net, new_infos, new_infos, style_images)


class FeedForwardObjective(Objective):
    """A multi-style network on ``styles`` (new, added to ``base`` or continuing ``init``); see the module docstring."""

    def __init__(self, styles: Sequence[PathLike], data: Paths, out: PathLike, config: FeedForwardConfig,
                 options: TrainOptions | None, base: PathLike | None, half: bool, encoder_weights: VGGWeights | None,
                 model_config: TransformerConfig | None, init: PathLike | None) -> None:
        options = options or TrainOptions()
        if options.samples_dir is None and options.sample_every:
            options = replace(options, samples_dir=str(Path(out).with_suffix("")) + "-samples")
        if not styles:
            raise PainterlyError("give at least one style image")
        options.check_size(4)
        if init is not None and base is not None:
            raise PainterlyError("give either a model to add styles to or one to continue training, not both")
        self.styles, self.data, self.out, self.settings, self.options = styles, data, out, config, options
        self.base, self.half, self.encoder_weights, self.model_config, self.init = (base, half, encoder_weights,
                                                                                    model_config, init)

    def train(self, checkpoint: PathLike | None = None) -> TrainSummary:
        """Run the training (checkpoint default: ``<out>.ckpt.safetensors``); what it produced."""
        run = train(self, self.options, checkpoint or default_checkpoint(self.out))
        start = self.start
        return TrainSummary(run.output, run.result, start.infos, [s.name for s in start.new_infos], self.net)

    def build(self, device: torch.device, dist: DistInfo) -> torch.nn.Module:
        config, options = self.settings, self.options
        new_infos, style_images = _load_styles(self.styles, config.style_size)
        torch.manual_seed(options.seed)
        start = self.start = _start(new_infos, style_images, config, self.base, self.init, self.model_config)
        net, old_n = start.net, start.old_n
        adding = self.base is not None
        self.frozen_rows = {id(p): p.detach().clone()[:old_n] for p in net.style_parameters()} if adding else {}
        net.train()
        self.trainable = net.style_parameters() if adding else list(net.parameters())
        net.requires_grad_(False)
        for p in self.trainable:
            p.requires_grad_(True)
        self.loss_fn = loss_fn = config.perceptual_loss()
        self.encoder = on_device(VGGEncoder(loss_fn.layers, weights=self.encoder_weights), device,
                                 options.channels_last)
        grams = style_grams(self.encoder, [t.to(device) for t in start.style_images], list(loss_fn.style_layers))
        self.grams = {k: v.to(device) for k, v in grams.items()}
        self.dataset = ContentDataset(self.data, size=options.size, scale=config.crop_scale, device=device,
                                      channels_last=options.channels_last, seed=options.seed)
        self.fixed = self.dataset.fixed_batch(3).to(device)
        self.net = net
        return net

    def optimizer(self, model: torch.nn.Module, options: TrainOptions) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.trainable, lr=options.lr)

    def post_backward(self) -> None:
        """Adding styles: the old styles' rows stay as they are."""
        old_n = self.start.old_n
        if old_n:
            for p in self.trainable:
                if p.grad is not None:
                    p.grad[:old_n].zero_()

    def losses(self, ctx: StepContext) -> dict[str, torch.Tensor]:
        batch, old_n = self.options.batch_size, self.start.old_n
        x = ctx.sample(self.dataset, batch)
        ids = torch.randint(0, len(self.start.new_infos), (batch,), generator=ctx.generator) + old_n
        ids = ids.to(ctx.device)
        style = F.one_hot(ids, self.net.num_styles).float()
        with torch.no_grad():
            targets = self.encoder(x, layers=list(self.loss_fn.content_layers))
        y = ctx.model(x, style)
        feats = self.encoder(y)
        return self.loss_fn(y, feats, targets, {k: g[ids - old_n] for k, g in self.grams.items()})

    def sample(self, model: torch.nn.Module, step: int):
        fixed = self.fixed
        tiles = list(fixed)
        for s in list(range(self.start.old_n, self.net.num_styles))[:8]:
            tiles.extend(model(fixed, model.style_vector(s, fixed.shape[0], fixed.device)).float())
        return image_grid(tiles, ncol=fixed.shape[0])

    def config(self) -> dict[str, Any]:
        options, base, init = self.options, self.base, self.init
        return {
            **self.settings.to_dict(),
            "model": self.net.config.to_dict(),
            "styles": [s.name for s in self.start.infos],
            "base": str(base) if base is not None else None,
            "init": str(init) if init is not None else None,
            **options.run_config(),
        }

    def finish(self, model: torch.nn.Module, run: Run) -> str | None:
        net, start, old_n = self.net, self.start, self.start.old_n
        for p in net.style_parameters():
            key = id(p)
            if key in self.frozen_rows and not torch.equal(p.detach()[:old_n].cpu(), self.frozen_rows[key].cpu()):
                raise PainterlyError("internal error: a frozen style changed while adding styles")
        training = dict(start.prior.training) if start.prior is not None else {}
        record = {**run.record(), "data_images": len(self.dataset), "skipped_images": len(self.dataset.skipped),
                  "config": self.config()}
        new_names = [s.name for s in start.new_infos]
        if self.base is not None:
            training.setdefault("added", []).append({"styles": new_names, **record})
        elif self.init is not None:
            training.setdefault("continued", []).append(record)
        else:
            training.update({"styles": new_names, **record})
        self.net = net.cpu().float().requires_grad_(False)
        if not run.dist.is_main:
            return None
        return str(save_model(StylizationModel(self.net, start.infos, training), self.out, half=self.half))
