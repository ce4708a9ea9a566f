"""Activations: ReLU, Sigmoid and Identity, the stable ``sigmoid`` function, and the ``activation="..."`` lookup.

An activation is a layer with no parameters. Conv2D and Dense also accept
``activation="relu"``; they then own one of these objects and call its forward
and backward around their own math, exactly as if it were the next layer.

:func:`sigmoid` is also the function the loss uses (:mod:`minicnn.losses` imports it
from here), so the layer and the loss compute p the same way, bit for bit.
"""

from __future__ import annotations

import warnings
from typing import Any

from minicnn import backend, parallel
from minicnn.layers.base import Layer


def sigmoid(x: Any) -> Any:
    """1 / (1 + exp(-x)) without overflow: only exp(-|x|) <= 1 is ever computed.

    exp(-x) overflows for x < -88 in float32, so we only ever exponentiate -|x| <= 0:
    for x >= 0, sigmoid(x) = 1 / (1 + e);  for x < 0, sigmoid(x) = e / (1 + e),  e = exp(-|x|).

    Parameters
    ----------
    x : ndarray
        Any shape, on the active backend.

    Returns
    -------
    ndarray
        sigmoid(x), elementwise, of the shape and dtype of ``x``.
    """
    xp = backend.array_module()
    e = xp.exp(-xp.abs(x))
    return xp.where(x >= 0, 1 / (1 + e), e / (1 + e))


class Activation(Layer):
    """A parameter-free elementwise layer.

    Conv2D and Dense call the ``*_in_place`` forms on arrays they may overwrite (their own
    fresh pre-activation z; dy in the model's fast mode), so an activation that can work
    in place (ReLU) saves a full copy of a possibly huge array; the others simply fall
    back to the ordinary forward and backward.
    """

    def forward_in_place(self, x: Any) -> Any:
        """forward(x), allowed to overwrite ``x``."""
        return self.forward(x)

    def backward_in_place(self, dy: Any) -> Any:
        """backward(dy), allowed to overwrite ``dy``."""
        return self.backward(dy)


class Identity(Activation):
    """y = x: what ``activation=None`` (or Keras's ``"linear"``) means.

    Called ``Linear`` before (that name still works, with a DeprecationWarning, and model
    files that say "Linear" still load): in PyTorch, DeZero and tinygrad a ``Linear`` is a
    dense layer.
    """

    def forward(self, x: Any, training: bool = False) -> Any:
        """y = x: returns ``x`` itself."""
        return x

    def backward(self, dy: Any) -> Any:
        """dL/dx = dL/dy: returns ``dy`` itself."""
        return dy


class ReLU(Activation):
    """y = max(x, 0);  dL/dx = dL/dy * [x > 0].

    Shapes: x (N, ...) -> y (N, ...), unchanged.
    """

    def forward(self, x: Any, training: bool = False) -> Any:
        """y = max(x, 0), a new array; keeps y for backward.

        The same numbers as :func:`minicnn.plain.activations.relu_forward` (bit for bit); it keeps y rather than x.
        """
        xp = backend.array_module()
        y = xp.maximum(x, 0)
        self.y = y  # y > 0 exactly where x > 0, so y is all backward needs
        return y

    def forward_in_place(self, x: Any) -> Any:
        """The same as forward, but overwrites ``x`` (Conv2D and Dense use it on their own fresh z).

        The same numbers as :func:`minicnn.plain.activations.relu_forward` (bit for bit), computed with these tricks:
        written into ``x`` itself, each thread its own images.
        """
        xp = backend.array_module()
        # The plain statement: xp.maximum(x, 0, out=x). Split over the batch, each thread its own images.
        parallel.over_batch(lambda rows: xp.maximum(x[rows], 0, out=x[rows]), len(x))
        self.y = x
        return x

    def backward(self, dy: Any) -> Any:
        """dL/dx = dL/dy * [x > 0]: the gradient passes where the input was positive, 0 elsewhere.

        The same numbers as :func:`minicnn.plain.activations.relu_backward` (bit for bit): y > 0 exactly where x > 0.
        """
        return dy * (self.y > 0)

    def backward_in_place(self, dy: Any) -> Any:
        """The same as backward, but overwrites ``dy`` (only in a model's fast mode, which owns dy).

        The same numbers as :func:`minicnn.plain.activations.relu_backward` (bit for bit), computed with these tricks:
        written into ``dy`` itself, each thread its own images.

        At batch 32 the study's first layer has a 363 MB gradient: a fresh array for dL/dz
        every step costs more (page faults, zeroing) than the multiplication itself.
        """
        xp = backend.array_module()
        # The plain statement: dy *= self.y > 0. Split over the batch, each thread its own images.
        parallel.over_batch(lambda rows: xp.multiply(dy[rows], self.y[rows] > 0, out=dy[rows]), len(dy))
        return dy


class Sigmoid(Activation):
    """y = 1 / (1 + exp(-x));  dL/dx = dL/dy * y * (1 - y).

    exp(-x) overflows for x < -88 in float32, so we only ever exponentiate
    -|x| <= 0:  for x >= 0, y = 1 / (1 + e);  for x < 0, y = e / (1 + e),  e = exp(-|x|).
    """

    def forward(self, x: Any, training: bool = False) -> Any:
        """y = sigmoid(x) by :func:`sigmoid` above; keeps y for backward.

        The same numbers as :func:`minicnn.plain.activations.sigmoid_forward` (bit for bit).
        """
        self.y = sigmoid(x)
        return self.y

    def backward(self, dy: Any) -> Any:
        """dL/dx = dL/dy * y * (1 - y).

        The same numbers as :func:`minicnn.plain.activations.sigmoid_backward` (bit for bit).
        """
        return dy * self.y * (1 - self.y)


ACTIVATIONS: dict[str | None, type[Activation]] = {
    None: Identity,
    "linear": Identity,  # Keras's name for the identity activation
    "relu": ReLU,
    "sigmoid": Sigmoid,
}


def get(name: str | None) -> Activation:
    """A new activation object for ``name``.

    Parameters
    ----------
    name : str or None, one of {None, "relu", "sigmoid", "linear"}
        None and "linear" both mean the identity.

    Returns
    -------
    Activation
        A new :class:`ReLU`, :class:`Sigmoid` or :class:`Identity`.

    Raises
    ------
    ValueError
        An unknown name; the message lists the known ones.
    """
    if not isinstance(name, (str, type(None))) or name not in ACTIVATIONS:
        known = ", ".join(repr(key) for key in ACTIVATIONS if key is not None)
        raise ValueError(f"unknown activation {name!r}; choose one of {known} or None")
    return ACTIVATIONS[name]()


RENAMED = {"Linear": "Identity"}
"""Old class names that still work, each the new class under its old name (with a DeprecationWarning)."""


def renamed_class(name: str) -> type[Activation]:
    """The class that ``name`` (a key of :data:`RENAMED`) is the old name of, with a DeprecationWarning."""
    warnings.warn(
        f"minicnn.layers.{name} is deprecated; use minicnn.layers.{RENAMED[name]} (in PyTorch, DeZero and "
        "tinygrad a Linear is a dense layer)",
        DeprecationWarning,
        stacklevel=3,  # the line that asked for the old name, past this function and __getattr__
    )
    return globals()[RENAMED[name]]


def __getattr__(name: str) -> type[Activation]:
    """``activations.Linear``: the old name of :class:`Identity`, with a DeprecationWarning (PEP 562)."""
    if name in RENAMED:
        return renamed_class(name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
