"""The layers: each file is one idea, forward and backward side by side."""

from typing import Any

from minicnn.layers import activations
from minicnn.layers.activations import Identity, ReLU, Sigmoid, Softmax, Tanh
from minicnn.layers.average_pooling import AveragePooling2D, AvgPool2D, GlobalAveragePooling2D, GlobalAvgPool2D
from minicnn.layers.base import Layer
from minicnn.layers.conv import Conv2D
from minicnn.layers.dense import Dense, Flatten
from minicnn.layers.dropout import Dropout
from minicnn.layers.input_layer import Input
from minicnn.layers.normalization import BatchNormalization
from minicnn.layers.pooling import MaxPool2D

# Keras spells it MaxPooling2D; both names work.
MaxPooling2D = MaxPool2D

__all__ = ["Layer", "Conv2D", "MaxPool2D", "MaxPooling2D", "Dense", "Flatten", "Dropout", "ReLU", "Sigmoid", "Identity"]
__all__ += ["BatchNormalization", "AveragePooling2D", "AvgPool2D", "GlobalAveragePooling2D", "GlobalAvgPool2D"]
__all__ += ["Softmax", "Tanh"]
__all__ += ["Input"]  # not a layer: the marker that gives a Sequential model its input shape


def __getattr__(name: str) -> Any:
    """``layers.Linear``: the old name of :class:`Identity`, with a DeprecationWarning (PEP 562)."""
    if name in activations.RENAMED:
        return activations.renamed_class(name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
