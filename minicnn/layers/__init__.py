"""The layers: each file is one idea, forward and backward side by side."""

from minicnn.layers.activations import Linear, ReLU, Sigmoid
from minicnn.layers.base import Layer
from minicnn.layers.conv import Conv2D
from minicnn.layers.dense import Dense, Flatten
from minicnn.layers.dropout import Dropout
from minicnn.layers.pooling import MaxPool2D

# Keras spells it MaxPooling2D; both names work.
MaxPooling2D = MaxPool2D

__all__ = ["Layer", "Conv2D", "MaxPool2D", "MaxPooling2D", "Dense", "Flatten", "Dropout", "ReLU", "Sigmoid", "Linear"]
