"""Feature encoders (VGG) and their weights."""

from .vgg import VGGEncoder, layer_names
from .weights import CAFFE, TORCHVISION, Preprocessing, VGGWeights

__all__ = ["VGGEncoder", "VGGWeights", "Preprocessing", "CAFFE", "TORCHVISION", "layer_names"]
