"""Input: the shape of one sample, written first in a model, as in Keras.

    model = Sequential([Input((300, 300, 1)), Conv2D(32, 3, activation="relu"), ...])

    model = Sequential()
    model.add(Input((4,)))
    model.add(Dense(2))          # built here: Dense now knows its input shape

``Input`` is not a layer: it computes nothing, has no parameters and does not appear in
``model.layers`` or ``model.summary()``. It is a marker that :class:`minicnn.model.Sequential`
consumes: it only tells the model the input shape, exactly as ``input_shape=`` on the first
layer does. A model that starts with ``Input`` is therefore saved as the same file as one
whose first layer has ``input_shape`` (the config's ``"input_shape"``), and files written
before ``Input`` existed load unchanged.

(In Keras, ``keras.Input`` returns a symbolic tensor for the functional API, and a Sequential
model turns it into an ``InputLayer``; minicnn has only Sequential, so the marker suffices.)
"""

from __future__ import annotations

from collections.abc import Sequence

from minicnn.layers.base import Shape, as_shape


class Input:
    """The shape of one input sample, without the batch axis; a model's first entry.

    Parameters
    ----------
    shape : int or tuple of int
        E.g. (300, 300, 1) for grey images, (4,) (or 4) for vectors of 4 features.

    Attributes
    ----------
    shape : tuple of int
        The shape, as a tuple of Python ints.

    Raises
    ------
    ValueError
        ``shape`` is not a positive int or a tuple of them.
    """

    def __init__(self, shape: Shape | Sequence[int] | int) -> None:
        try:
            self.shape: Shape = as_shape(shape)
        except ValueError as error:
            raise ValueError(f"Input: shape must be a positive int or a tuple of them, got {shape!r}") from error
        if self.shape is None:
            raise ValueError("Input: shape must be a positive int or a tuple of them, got None")

    def __repr__(self) -> str:
        return f"Input(shape={self.shape})"
