"""Dense (fully connected) and Flatten.

    Dense:    z = x @ kernel + bias,  y = a(z)
    Shapes:   x (N, I) -> y (N, O);  kernel (I, O);  bias (O,)
    Backward: dL/dz = dL/dy * a'(z),  dL/dkernel = x.T @ dz,  dL/dbias = sum of dz over N,
              dL/dx = dz @ kernel.T

Flatten: (N, H, W, C) -> ``(N, H*W*C)`` in row-major (C) order, the order Keras uses,
so weights trained in Keras would line up with ours.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from minicnn import checks
from minicnn.layers.base import Layer, Shape
from minicnn.layers.kernel_layer import KernelLayer


class Dense(KernelLayer):
    """Fully connected layer with an optional fused activation.

    Parameters
    ----------
    units : int
        Number of outputs O.
    activation : str or None, one of {None, "relu", "sigmoid", "tanh", "softmax", "linear"}, default None
        Applied to z = x @ kernel + bias, fused into this layer.
    kernel_initializer : str, default "glorot_uniform"
        A name from :mod:`minicnn.initializers`.
    bias_initializer : str, default "zeros"
        A name from :mod:`minicnn.initializers`.
    name : str, optional
        Unique within a model; by default "dense", "dense_1", ...
    input_shape : int or tuple of one int (I,), optional
        Only for a model's first layer.

    Raises
    ------
    ValueError
        ``units`` is not a positive int.
    """

    def __init__(
        self,
        units: int,
        activation: str | None = None,
        kernel_initializer: str = "glorot_uniform",
        bias_initializer: str = "zeros",
        name: str | None = None,
        input_shape: Shape | int | None = None,
    ) -> None:
        super().__init__(activation, kernel_initializer, bias_initializer, name=name, input_shape=input_shape)
        self.units = checks.check_whole_number("Dense", "units", units, 1)

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        """(I,) -> (O,); an error for anything but flat vectors (put a Flatten before)."""
        if len(input_shape) != 1:
            raise ValueError(
                f"layer {self.describe()} expects flat vectors (features,) per sample, got shape "
                f"{input_shape}; put a Flatten layer before it"
            )
        return (self.units,)

    def parameter_shapes(self, input_shape: Shape) -> dict[str, Shape]:
        """kernel (I, O) and bias (O,) for inputs (I,)."""
        return {"kernel": (input_shape[0], self.units), "bias": (self.units,)}

    def build(self, input_shape: Shape, rng: np.random.Generator | None = None) -> Shape:
        """Create kernel (I, O) and bias (O,) for inputs (I,); return (O,)."""
        output_shape = super().build(input_shape, rng)
        self.create_parameters(self.parameter_shapes(input_shape)["kernel"], rng)
        return output_shape

    def forward(self, x: Any, training: bool = False) -> Any:
        """x (N, I) -> y (N, O).

        The same numbers as :func:`minicnn.plain.dense.dense_forward` and then the activation's plain forward (bit for
        bit), computed with these tricks: the bias and the activation are applied in place on z.
        """
        self.check_input(x)
        z = x @ self.params["kernel"]  # (N, I) @ (I, O)
        z += self.params["bias"]
        self.x = x  # dL/dkernel = x.T @ dz needs the input
        return self.activation_forward(z)  # y = a(z); z is this call's own array

    def backward(self, dy: Any) -> Any:
        """dy (N, O) = dL/dy -> dx (N, I) = dL/dx; fills grads["kernel"] and grads["bias"].

        The same numbers as the activation's plain backward and then :func:`minicnn.plain.dense.dense_backward` (bit
        for bit), computed with these tricks: in the fast mode dL/dz is written into ``dy``.
        """
        dz = self.activation_backward(dy)  # dL/dz = dL/dy * a'(z)
        return self.backward_from_dz(dz)

    def backward_from_dz(self, dz: Any) -> Any:
        """dz (N, O) = dL/dz -> dx (N, I); None when the model needs no dL/dx.

        The same numbers as :func:`minicnn.plain.dense.dense_backward` (bit for bit), computed with these tricks:
        no dL/dx for a model's first layer.
        """
        self.grads["kernel"] = self.x.T @ dz  # (I, N) @ (N, O)
        self.grads["bias"] = dz.sum(axis=0)
        if not self.compute_input_gradient:
            return None
        return dz @ self.params["kernel"].T  # (N, O) @ (O, I)

    def get_config(self) -> dict[str, Any]:
        """The constructor arguments: units, activation, initialisers, name."""
        config = super().get_config()
        config.update(units=self.units)
        return config


class Flatten(Layer):
    """``(N, d1, d2, ...) -> (N, d1*d2*...)``; backward reshapes the gradient back.

    Row-major (C) order, as Keras: for images, the channels of one pixel are neighbours.

    Parameters
    ----------
    name : str, optional
        Unique within a model; by default "flatten", "flatten_1", ...
    input_shape : tuple of int, optional
        Only for a model's first layer.
    """

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        """``(d1, d2, ...) -> (d1*d2*...,)``."""
        return (int(np.prod(input_shape)),)

    def forward(self, x: Any, training: bool = False) -> Any:
        """``x (N, d1, d2, ...) -> y (N, d1*d2*...)``: a view of x, nothing is copied or written.

        The same numbers as :func:`minicnn.plain.dense.flatten_forward` (bit for bit).
        """
        self.check_input(x)
        return x.reshape(x.shape[0], -1)

    def backward(self, dy: Any) -> Any:
        """``dy (N, d1*d2*...) -> dx (N, d1, d2, ...)``: a view of dy.

        The same numbers as :func:`minicnn.plain.dense.flatten_backward` (bit for bit).
        """
        return dy.reshape((dy.shape[0], *self.input_shape))
