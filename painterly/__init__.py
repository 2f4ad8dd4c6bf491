"""painterly: neural style transfer, from the optimization method of Gatys et al. to fast
feed-forward and arbitrary-style networks."""

from . import video  # callable: painterly.video(...) runs painterly.video.pipeline.video
from .encoders import VGGEncoder, VGGWeights
from .errors import ImageError, ModelError, PainterlyError, StyleNotFoundError
from .imageio import load_image, save_image
from .losses import PerceptualLoss, gram_matrix
from .methods.optimize import OptimizeConfig, optimize
from .methods.stylize import list_styles, stylize
from .methods.transfer import transfer
from .metrics import lattice_score, score_stylization
from .models import meta
from .paintings import list_paintings

__version__ = "0.1.0"



__all__ = [
    "PainterlyError",
    "ImageError",
    "ModelError",
    "StyleNotFoundError",
    "load_image",
    "save_image",
    "VGGEncoder",
    "VGGWeights",
    "PerceptualLoss",
    "gram_matrix",
    "optimize",
    "OptimizeConfig",
    "lattice_score",
    "score_stylization",
    "list_paintings",
    "transfer",
    "meta",
    "stylize",
    "list_styles",
    "video",
]
