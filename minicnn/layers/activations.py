"""Activations: ReLU and Sigmoid, and the ``activation="..."`` lookup.

An activation is a layer with no parameters. Conv2D and Dense also accept
``activation="relu"``; they then own one of these objects and call its forward
and backward around their own math, exactly as if it were the next layer.
"""

from __future__ import annotations

from typing import Any

from minicnn import backend
from minicnn.layers.base import Layer


class Activation(Layer):
    """A parameter-free elementwise layer.

    Conv2D and Dense call the ``*_in_place`` forms on arrays they own, so an activation
    that can work in place (ReLU) saves a full copy of a possibly huge array; the
    others simply fall back to the ordinary forward and backward.
    """

    def forward_in_place(self, x: Any) -> Any:
        return self.forward(x)

    def backward_in_place(self, dy: Any) -> Any:
        return self.backward(dy)


class Linear(Activation):
    """y = x: what ``activation=None`` means."""

    def forward(self, x: Any, training: bool = False) -> Any:
        return x

    def backward(self, dy: Any) -> Any:
        return dy


class ReLU(Activation):
    """y = max(x, 0);  dL/dx = dL/dy * [x > 0].

    Shapes: x (N, ...) -> y (N, ...), unchanged.
    """

    def forward(self, x: Any, training: bool = False) -> Any:
        xp = backend.array_module()
        y = xp.maximum(x, 0)
        self.y = y  # y > 0 exactly where x > 0, so y is all backward needs
        return y

    def forward_in_place(self, x: Any) -> Any:
        """The same as forward, but overwrites ``x`` (used by Conv2D/Dense on their own fresh output)."""
        xp = backend.array_module()
        xp.maximum(x, 0, out=x)
        self.y = x
        return x

    def backward(self, dy: Any) -> Any:
        return dy * (self.y > 0)

    def backward_in_place(self, dy: Any) -> Any:
        """The same as backward, but overwrites ``dy`` (Conv2D/Dense use it on a gradient nobody else keeps).

        At batch 32 the study's first layer has a 363 MB gradient: a fresh array for dL/dx
        every step costs more (page faults, zeroing) than the multiplication itself.
        """
        backend.array_module().multiply(dy, self.y > 0, out=dy)
        return dy


def sigmoid(x: Any) -> Any:
    """1 / (1 + exp(-x)) without overflow: only exp(-|x|) <= 1 is ever computed."""
    xp = backend.array_module()
    e = xp.exp(-xp.abs(x))
    return xp.where(x >= 0, 1 / (1 + e), e / (1 + e))


class Sigmoid(Activation):
    """y = 1 / (1 + exp(-x));  dL/dx = dL/dy * y * (1 - y).

    exp(-x) overflows for x < -88 in float32, so we only ever exponentiate
    -|x| <= 0:  for x >= 0, y = 1 / (1 + e);  for x < 0, y = e / (1 + e),  e = exp(-|x|).
    """

    def forward(self, x: Any, training: bool = False) -> Any:
        self.y = sigmoid(x)
        return self.y

    def backward(self, dy: Any) -> Any:
        return dy * self.y * (1 - self.y)


ACTIVATIONS: dict[str | None, type[Activation]] = {
    None: Linear,
    "linear": Linear,
    "relu": ReLU,
    "sigmoid": Sigmoid,
}


def get(name: str | None) -> Activation:
    """A new activation object for ``name`` ("relu", "sigmoid", "linear" or None)."""
    if name not in ACTIVATIONS:
        known = ", ".join(repr(key) for key in ACTIVATIONS if key is not None)
        raise ValueError(f"unknown activation {name!r}; choose one of {known} or None")
    return ACTIVATIONS[name]()
