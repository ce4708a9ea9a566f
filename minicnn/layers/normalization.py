"""BatchNormalization: each channel rescaled to mean 0 and variance 1, then given a learnt scale and shift.

Training (``training=True``): the statistics of this batch, over every axis but the last
(the channels), M = x.size / C values per channel:

    mu = mean(x),  var = mean((x - mu)**2),  s = 1 / sqrt(var + epsilon)
    x_hat = (x - mu) * s,  y = gamma * x_hat + beta

and, once per call, the moving statistics follow the batch as Keras updates them:

    moving_mean     = moving_mean * momentum     + mu  * (1 - momentum)
    moving_variance = moving_variance * momentum + var * (1 - momentum)

Inference (``training=False``): the same formula with mu, var replaced by the moving mean and
variance, which are constants there.

Shapes: x (N, ..., C) -> y (N, ..., C), e.g. (N, H, W, C) after a Conv2D or (N, F) after a
Dense; gamma, beta, moving_mean, moving_variance (C,), in that order in ``params`` (and so in
``get_weights`` and the model file), as Keras orders its weights. gamma and beta are trained;
the moving statistics are not (``non_trainable_params``): no gradient, the optimiser leaves
them alone, but they are saved and loaded with the model and counted by ``summary()``.

Backward (dbeta = sum dy, dgamma = sum dy * x_hat over the M values of each channel). At
inference dx = dy * gamma * s. In training mu and var depend on every x_i too. With g = dL/dx_hat
= gamma * dy, ds/dx_i = -s**3 (x_i - mu) / M = -s**2 x_hat_i / M (the mu-term of dvar/dx_i sums
to zero), so dx_hat_j/dx_i = s (delta_ij - 1/M) - s x_hat_j x_hat_i / M, and summing over j:

    dL/dx_i = s * (g_i - mean(g) - x_hat_i * mean(g * x_hat))
            = gamma * s * (dy_i - dbeta / M - x_hat_i * dgamma / M)

The plain twin, :mod:`minicnn.plain.normalization`, walks the same graph backwards node by node
instead; the tests check that both agree and that both equal central differences.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from minicnn import backend, checks
from minicnn.layers.base import Layer, Shape


class BatchNormalization(Layer):
    """Normalise each channel by its batch statistics (training) or its moving statistics (inference).

    Parameters
    ----------
    axis : int, default -1
        The channel axis; minicnn normalises channels-last data, so only the last axis is
        allowed (-1, or its positive index counting the batch axis, e.g. 3 for (N, H, W, C)).
    momentum : float, default 0.99
        In [0, 1]; how much of the moving statistics each training call keeps.
    epsilon : float, default 1e-3
        > 0; added to the variance before its square root.
    center : bool, default True
        Learn the shift beta (False: beta = 0, no such parameter).
    scale : bool, default True
        Learn the scale gamma (False: gamma = 1, no such parameter).
    name : str, optional
        Unique within a model; by default "batch_normalization", "batch_normalization_1", ...
    input_shape : int or tuple of int, optional
        Only for a model's first layer.

    Attributes
    ----------
    non_trainable_params : tuple of str
        ("moving_mean", "moving_variance"): parameters without a gradient, which the
        optimiser skips and ``summary()`` counts as non-trainable.

    Raises
    ------
    TypeError, ValueError
        An argument of the wrong type or outside its range (the message names it).
    """

    non_trainable_params = ("moving_mean", "moving_variance")

    def __init__(
        self,
        axis: int = -1,
        momentum: float = 0.99,
        epsilon: float = 1e-3,
        center: bool = True,
        scale: bool = True,
        name: str | None = None,
        input_shape: Shape | int | None = None,
    ) -> None:
        super().__init__(name=name, input_shape=input_shape)
        where = "BatchNormalization"
        if not checks.is_whole_number(axis):
            raise TypeError(f"{where}: axis must be an int (the last axis: -1), got {checks.describe(axis)}")
        self.axis = int(axis)
        self.momentum = checks.check_number(where, "momentum", momentum, 0, 1)
        self.epsilon = checks.check_number(where, "epsilon", epsilon, 0, include_low=False)
        self.center = checks.check_bool(where, "center", center)
        self.scale = checks.check_bool(where, "scale", scale)

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        """The shape is unchanged; an error when ``axis`` is not the last axis of (N, *input_shape)."""
        if self.axis not in (-1, len(input_shape)):
            raise ValueError(
                f"layer {self.describe()}: axis must be the last (channel) axis, -1 or {len(input_shape)} for "
                f"inputs (N, {', '.join(map(str, input_shape))}), got {self.axis}; minicnn's data is channels-last"
            )
        return input_shape

    def parameter_shapes(self, input_shape: Shape) -> dict[str, Shape]:
        """gamma, beta (if scale, center) and moving_mean, moving_variance, each (C,), in Keras's order."""
        channels = (input_shape[-1],)
        shapes = {"gamma": channels} if self.scale else {}
        if self.center:
            shapes["beta"] = channels
        return {**shapes, "moving_mean": channels, "moving_variance": channels}

    def build(self, input_shape: Shape, rng: np.random.Generator | None = None) -> Shape:
        """gamma = 1, beta = 0, moving_mean = 0, moving_variance = 1 (Keras's initial values); the shape is kept."""
        output_shape = super().build(input_shape, rng)
        xp = backend.array_module()
        initial = {"gamma": xp.ones, "beta": xp.zeros, "moving_mean": xp.zeros, "moving_variance": xp.ones}
        for key, shape in self.parameter_shapes(self.input_shape).items():
            self.params[key] = initial[key](shape, dtype=self.dtype)
        return output_shape

    def gamma_beta(self) -> tuple[Any, Any]:
        """(gamma, beta), with 1 and 0 standing in for those that ``scale=False`` / ``center=False`` leave out."""
        return self.params.get("gamma", 1.0), self.params.get("beta", 0.0)

    def forward(self, x: Any, training: bool = False) -> Any:
        """x (N, ..., C) -> y (N, ..., C); in training also one update of the moving statistics.

        The same numbers as :func:`minicnn.plain.normalization.batch_norm_forward_train` (with
        :func:`~minicnn.plain.normalization.moving_average`) or
        :func:`~minicnn.plain.normalization.batch_norm_forward_inference`, within rounding, computed
        with these tricks: x_hat and y written into kept buffers in the fast mode, the statistics
        reduced over the axes of x without a reshape, the scale s multiplied rather than divided.
        """
        self.check_input(x)
        xp = backend.array_module()
        axes = tuple(range(x.ndim - 1))
        gamma, beta = self.gamma_beta()
        x_hat = self.array("normalized", x.shape, x.dtype)  # kept: backward needs x_hat
        if training:
            mean = x.mean(axis=axes)
            xp.subtract(x, mean, out=x_hat)
            variance = xp.square(x_hat).mean(axis=axes)  # divided by M, as Keras (ops.moments)
            # In place: the optimiser, get_weights and the model file all hold these very arrays.
            self.params["moving_mean"][...] = self.params["moving_mean"] * self.momentum + mean * (1 - self.momentum)
            moving_variance = self.params["moving_variance"]
            moving_variance[...] = moving_variance * self.momentum + variance * (1 - self.momentum)
        else:
            xp.subtract(x, self.params["moving_mean"], out=x_hat)
            variance = self.params["moving_variance"]
        self.inv_std = 1 / xp.sqrt(variance + self.epsilon)  # s, (C,)
        x_hat *= self.inv_std
        y = self.array("output", x.shape, x.dtype)
        xp.multiply(x_hat, gamma, out=y)
        y += beta
        self.x_hat, self.training = x_hat, training
        return y

    def backward(self, dy: Any) -> Any:
        """dy (N, ..., C) -> dx (N, ..., C); fills grads["gamma"] and grads["beta"] (those that exist).

        Training: dx = gamma * s * (dy - dbeta / M - x_hat * dgamma / M); inference: dx = dy * gamma * s.
        The same numbers as :func:`minicnn.plain.normalization.batch_norm_backward_train` or
        :func:`~minicnn.plain.normalization.batch_norm_backward_inference` within rounding, computed with
        the closed form above (the plain twin goes node by node), dL/dx in a kept buffer in the fast mode.
        """
        xp = backend.array_module()
        axes = tuple(range(dy.ndim - 1))
        gamma, _ = self.gamma_beta()
        dx = self.array("input_gradient", dy.shape, dy.dtype)
        xp.multiply(dy, self.x_hat, out=dx)  # dx as scratch: dy * x_hat
        dgamma = dx.sum(axis=axes)
        dbeta = dy.sum(axis=axes)
        if self.scale:
            self.grads["gamma"] = dgamma
        if self.center:
            self.grads["beta"] = dbeta
        if not self.compute_input_gradient:
            return None
        if not self.training:
            xp.multiply(dy, gamma * self.inv_std, out=dx)
            return dx
        count = dy.size // dy.shape[-1]  # M values per channel
        xp.multiply(self.x_hat, dgamma / count, out=dx)
        xp.subtract(dy, dx, out=dx)
        dx -= dbeta / count
        dx *= gamma * self.inv_std
        return dx

    def get_config(self) -> dict[str, Any]:
        """The constructor arguments: axis, momentum, epsilon, center, scale, name."""
        config = super().get_config()
        config.update(
            axis=self.axis, momentum=self.momentum, epsilon=self.epsilon, center=self.center, scale=self.scale
        )
        return config
