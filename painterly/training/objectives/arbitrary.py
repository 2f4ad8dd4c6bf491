"""What the arbitrary-style trainers (AdaIN decoder, meta network) share: :class:`ArbitraryObjective`.

Photos and an augmented painting pool (:class:`StylePool`) with held-out paintings that are never
trained on; preview grids of held-out and trained paintings; at the end an evaluation on both and a
training record, which continues the history of a model continued with ``init``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from ...encoders import VGGEncoder, VGGWeights
from ...errors import PainterlyError
from ...runtime import autocast
from ..checkpoint import default_checkpoint
from ..data import ContentDataset
from ..distributed import DistInfo
from ..loop import Objective, Run, on_device, train
from ..options import PathLike, Paths, TrainOptions, TrainResult
from ..preview import image_grid
from ..style_pool import StylePool, load_style_images

DEFAULT_HOLD_OUT = ("the-scream", "udnie")


@dataclass
class ArbitrarySummary:
    """What an arbitrary-style training run produced."""

    model_path: str | None
    result: TrainResult
    trained_styles: list[str]
    held_out: list[str]
    evaluation: dict[str, dict[str, float]] = field(default_factory=dict)


def preview_grid(contents: torch.Tensor, styles: Sequence[torch.Tensor], outputs: Sequence[torch.Tensor]) -> Any:
    """Grid: first row the style thumbnails, then one row per photo: photo, its stylizations."""
    n, size = contents.shape[0], contents.shape[-1]
    thumbs = [torch.nn.functional.interpolate(s.float(), size=(size, size), mode="bilinear", antialias=True)[0]
              for s in styles]
    tiles = [torch.ones_like(contents[0]), *thumbs]
    for i in range(n):
        tiles += [contents[i], *(o[i] for o in outputs)]
    return image_grid(tiles, ncol=1 + len(styles))


#: the end-of-run evaluation scores at most this many trained (and held-out) paintings, spread evenly: a
#: corpus of 800 paintings would otherwise take longer to score on a CPU than a short run takes to train
EVAL_PAINTINGS = 64


def spread(items: Sequence[Any], limit: int) -> list[Any]:
    """At most ``limit`` of ``items``, evenly spread (all of them when there are no more)."""
    if len(items) <= limit:
        return list(items)
    step = len(items) / limit
    return [items[int(i * step)] for i in range(limit)]


def trained_paintings(record: dict[str, Any]) -> set[str]:
    """Every painting a model's training record says it was trained on (first run and continuations)."""
    names = set(record.get("trained_styles") or ())
    for run in record.get("continued") or ():
        names |= set(run.get("trained_styles") or ())
    return names


def check_continuation(init: PathLike, prior: dict[str, Any], config: Any) -> Any:
    """The training config to continue a model trained with ``prior`` (its file's training record).

    The held-out paintings must be ones it never trained on, or the generalization numbers would mean
    nothing: the same hold-out as before, or a new, non-empty one (a larger corpus' split) disjoint from its
    training.
    """
    held = prior.get("held_out")
    if held is None or sorted(held) == sorted(config.hold_out):
        return config
    seen = sorted(trained_paintings(prior) & set(config.hold_out))
    if seen or not trained_paintings(prior) or not config.hold_out:
        why = (f"it trained on {', '.join(seen[:5])}" if seen else "no painting would be left to measure "
               "generalization on" if not config.hold_out else "its record does not say what it trained on")
        raise PainterlyError(f"'{init}' cannot be continued with these --hold-out paintings: {why} "
                             f"(its held-out paintings were {', '.join(held) or 'none'})")
    return config


def continued_record(prior: dict[str, Any], record: dict[str, Any]) -> dict[str, Any]:
    """``prior``'s training record with ``record`` appended under ``"continued"`` (and its evaluation on top)."""
    out = dict(prior)
    out["continued"] = [*prior.get("continued", []), record]
    if record.get("evaluation"):
        out["evaluation"] = record["evaluation"]
    return out


class ArbitraryObjective(Objective):
    """The shared part of the arbitrary-style objectives; see the module docstring.

    Subclasses give ``build_model()`` (the network, new or continued from ``init``; may adjust
    ``self.settings``), ``encoder_layers(model)``, ``losses``, ``evaluate(model, contents, styles)``,
    ``stylize_previews(model, contents, styles)``, ``run_config(model)`` and ``save(model, record)``, and
    may refuse settings in ``check()``. :meth:`train` runs the objective.
    """

    #: what the model starts from when that is not a file (e.g. "pruned"), recorded as the run's ``init``
    init_label: str | None = None

    def __init__(self, content_dir: Paths, style_dir: Paths, out: PathLike, config: Any,
                 options: TrainOptions | None, half: bool, encoder_weights: VGGWeights | None,
                 init: PathLike | None) -> None:
        self.content_dir, self.style_dir, self.out, self.settings = content_dir, style_dir, out, config
        self.options = options or TrainOptions(lr=1e-4)
        self.half, self.encoder_weights, self.init = half, encoder_weights, init
        self.prior: dict[str, Any] | None = None
        self.check()

    def train(self, checkpoint: PathLike | None = None) -> ArbitrarySummary:
        """Run the training (checkpoint default: ``<out>.ckpt.safetensors``); what it produced."""
        run = train(self, self.options, checkpoint or default_checkpoint(self.out))
        return ArbitrarySummary(run.output, run.result, self.pool.names, self.pool.held_out, self.evaluation)

    # -- per model kind ----------------------------------------------------------------------
    def check(self) -> None:
        """Refuse settings the model cannot train with (called on construction)."""

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
        options = self.options
        model = self.model = self.build_model()
        config = self.settings  # build_model may have adjusted it to a continued model's
        self.device, self.dist = device, dist
        self.encoder = on_device(VGGEncoder(self.encoder_layers(model), weights=self.encoder_weights), device,
                                 options.channels_last)
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
        return {**self.settings.to_dict(), **self.run_config(self.model), **self.options.run_config(),
                "world_size": self.dist.world_size,
                "init": str(self.init) if self.init is not None else self.init_label}

    def finish(self, model: torch.nn.Module, run: Run) -> str | None:
        evaluation: dict[str, dict[str, float]] = {}
        device, pool = run.device, self.pool
        if run.dist.is_main:
            eval_size = self.settings.eval_size or self.options.size
            eval_contents = self.contents.fixed_batch(4, size=eval_size).to(device)
            with autocast(device, run.trainer.dtype):
                evaluation = {
                    "trained_styles": self.evaluate(model, eval_contents, load_style_images(
                        spread(pool.paintings.paths, EVAL_PAINTINGS), eval_size, device)),
                    "held_out_styles": self.evaluate(model, eval_contents, load_style_images(
                        spread(pool.held_out_paths, EVAL_PAINTINGS), eval_size, device)),
                }
        self.evaluation = evaluation
        record = {**run.record(), "content_images": len(self.contents), "trained_styles": pool.names,
                  "held_out": pool.held_out, "evaluation": evaluation, "config": self.config()}
        if self.prior is not None:
            record = continued_record(self.prior, record)
        return self.save(model, record) if run.dist.is_main else None
