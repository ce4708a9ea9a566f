"""Activations: ReLU, Sigmoid, Tanh, Softmax and Identity, the stable ``sigmoid`` and ``softmax`` functions,
and the ``activation="..."`` lookup.

An activation is a layer with no parameters. Conv2D and Dense also accept
``activation="relu"``; they then own one of these objects and call its forward
and backward around their own math, exactly as if it were the next layer.

:func:`sigmoid` and :func:`softmax` are also the functions the losses use (:mod:`minicnn.losses`
imports them from here), so the layer and the loss compute p the same way, bit for bit.
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


def softmax(x: Any) -> Any:
    """exp(x) / sum(exp(x)) over the last axis, without overflow: the row maximum is subtracted first.

    softmax(x) = softmax(x - c) for any c in the row; with c = max(x), every exponent is <= 0,
    so exp never overflows (float32 overflows for x > 88) and the largest term is exactly 1.

    The same numbers as :func:`minicnn.plain.activations.softmax` (bit for bit).

    Parameters
    ----------
    x : ndarray of shape (..., K)
        Scores (logits), on the active backend.

    Returns
    -------
    ndarray of the shape of ``x``
        Each row (over the last axis) positive, summing to 1.
    """
    xp = backend.array_module()
    e = xp.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def log_softmax(x: Any) -> Any:
    """log(softmax(x)) over the last axis, stably: (x - max) - log(sum(exp(x - max))).

    Never log(0): for a very negative logit softmax rounds to 0, but its log is just a large
    negative number. The cross-entropy from logits uses it.

    The same numbers as :func:`minicnn.plain.activations.log_softmax` (bit for bit).

    Parameters
    ----------
    x : ndarray of shape (..., K)

    Returns
    -------
    ndarray of the shape of ``x``
    """
    xp = backend.array_module()
    shifted = x - x.max(axis=-1, keepdims=True)
    return shifted - xp.log(xp.exp(shifted).sum(axis=-1, keepdims=True))


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

    def backward_from_dz(self, dz: Any) -> Any:
        """dL/dx when the loss already hands over dL/dx (a fused start, :func:`minicnn.losses.start_backward`).

        A standalone activation layer computes nothing before its activation, so there is no
        math left to do: dz is returned as it is (``model.backward(gradient, from_dz=True)``).
        """
        return dz


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


class Tanh(Activation):
    """y = tanh(x);  dL/dx = dL/dy * (1 - y**2).

    Shapes: x (N, ...) -> y (N, ...), unchanged. NumPy's tanh is stable for any x (it saturates at +-1).
    """

    def forward(self, x: Any, training: bool = False) -> Any:
        """y = tanh(x); keeps y for backward.

        The same numbers as :func:`minicnn.plain.activations.tanh_forward` (bit for bit).
        """
        self.y = backend.array_module().tanh(x)
        return self.y

    def backward(self, dy: Any) -> Any:
        """dL/dx = dL/dy * (1 - y**2), since tanh'(x) = 1 - tanh(x)**2.

        The same numbers as :func:`minicnn.plain.activations.tanh_backward` (bit for bit).
        """
        return dy * (1 - self.y * self.y)


class Softmax(Activation):
    """y = exp(x) / sum(exp(x)) over the last axis (the K classes);  dL/dx = y * (dL/dy - sum(dL/dy * y)).

    Shapes: x (N, K) -> y (N, K), each row of y positive and summing to 1 (class probabilities).

    Not elementwise: every y_k depends on every x_j, dy_k/dx_j = y_k ([k = j] - y_j). Multiplied
    out with dL/dy, the K x K Jacobian collapses to  dL/dx = y * (dL/dy - sum_k dL/dy_k y_k),
    one row at a time. Followed by categorical cross-entropy on its probabilities, the model
    skips this backward altogether: the loss hands back dL/dx = (p - y) / N
    (:func:`minicnn.losses.start_backward`).
    """

    def forward(self, x: Any, training: bool = False) -> Any:
        """y = softmax(x) by the stable :func:`softmax` above (the row maximum subtracted); keeps y for backward.

        The same numbers as :func:`minicnn.plain.activations.softmax_forward` (bit for bit).
        """
        self.y = softmax(x)
        return self.y

    def backward(self, dy: Any) -> Any:
        """dL/dx = y * (dy - sum(dy * y, axis=-1, keepdims=True)).

        The same numbers as :func:`minicnn.plain.activations.softmax_backward` (bit for bit).
        """
        y = self.y
        return y * (dy - (dy * y).sum(axis=-1, keepdims=True))


ACTIVATIONS: dict[str | None, type[Activation]] = {
    None: Identity,
    "linear": Identity,  # Keras's name for the identity activation
    "relu": ReLU,
    "sigmoid": Sigmoid,
    "tanh": Tanh,
    "softmax": Softmax,
}


def get(name: str | None) -> Activation:
    """A new activation object for ``name``.

    Parameters
    ----------
    name : str or None, one of {None, "relu", "sigmoid", "tanh", "softmax", "linear"}
        None and "linear" both mean the identity.

    Returns
    -------
    Activation
        A new :class:`ReLU`, :class:`Sigmoid`, :class:`Tanh`, :class:`Softmax` or :class:`Identity`.

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
