"""KernelLayer: what Conv2D and Dense have in common.

Both compute z = (x combined with a kernel) + bias and then an activation, y = a(z).
This class holds that shared part: the kernel and bias parameters with their
initialisers, the optional fused activation, and the first step of the chain rule
through it, dL/dz = dL/dy * a'(z). Each layer's own ``backward(dy)`` takes that
step and then does its own math in ``backward_from_dz(dz)``.

A model whose last layer is a sigmoid feeding binary cross-entropy skips a'(z):
the loss hands it dL/dz directly (:func:`minicnn.losses.start_backward`), and the model
calls ``backward_from_dz``.

In a model's fast mode, a ReLU layer that feeds a max pool leaves its ReLU to the pool
(``relu_applied_by`` names the pool; see "Who owns memory" in base.py): forward then
returns z and backward receives dL/dz, the pool having applied the ReLU both ways.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from minicnn import initializers
from minicnn.layers import activations
from minicnn.layers.base import Layer, Shape


class KernelLayer(Layer):
    """Base of layers with a ``kernel``, a ``bias`` and an optional fused activation.

    Parameters
    ----------
    activation : str or None
        "relu", "sigmoid", "tanh", "softmax", "linear" or None (no activation), applied to z.
    kernel_initializer, bias_initializer : str
        Names from :mod:`minicnn.initializers`.
    name : str, optional
        Unique within a model.
    input_shape : int or tuple of int, optional
        Only for a model's first layer.

    Attributes
    ----------
    activation : Activation
        The fused activation object (:class:`~minicnn.layers.activations.Identity` for None).
    relu_applied_by : str or None
        The name of the max pool that applies this layer's ReLU, in a model's fast mode only
        (set by :func:`~minicnn.layers.base.model_owns_memory`); None: the layer applies it.
    """

    def __init__(
        self,
        activation: str | None,
        kernel_initializer: str,
        bias_initializer: str,
        name: str | None = None,
        input_shape: Shape | int | None = None,
    ) -> None:
        super().__init__(name=name, input_shape=input_shape)
        self.activation_name = activation
        self.activation = activations.get(activation)
        self.relu_applied_by: str | None = None
        self.kernel_initializer_name = kernel_initializer
        self.bias_initializer_name = bias_initializer
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)

    def create_parameters(self, kernel_shape: tuple[int, ...], rng: np.random.Generator | None) -> None:
        """params["kernel"] of ``kernel_shape`` and params["bias"] of its last axis, from the initialisers."""
        rng = rng if rng is not None else np.random.default_rng(0)
        self.params["kernel"] = self.kernel_initializer(kernel_shape, rng, self.dtype)
        self.params["bias"] = self.bias_initializer((kernel_shape[-1],), rng, self.dtype)

    def activation_forward(self, z: Any) -> Any:
        """y = a(z), written into ``z`` (this call's own pre-activation); y = z if the next pool applies the ReLU."""
        if self.relu_applied_by is not None:
            return z  # the max pool after this layer applies the ReLU: relu(max(z)) = max(0, z...)
        return self.activation.forward_in_place(z)

    def activation_backward(self, dy: Any) -> Any:
        """dL/dz = dL/dy * a'(z) through ``self.activation``; dL/dz = dy when the next pool has applied the ReLU.

        In a model's fast mode the model owns ``dy`` and nobody reads it afterwards, so a
        ReLU may write dL/dz into it; called directly, ``dy`` stays untouched.
        """
        if self.relu_applied_by is not None:
            return dy  # the pool's backward already passed no gradient where relu' = 0
        if self.reuse_memory:
            return self.activation.backward_in_place(dy)
        return self.activation.backward(dy)

    def backward_from_dz(self, dz: Any) -> Any:
        """The layer's own backward, from dz = dL/dz: fills grads and returns dL/dx (or None)."""
        raise NotImplementedError

    def fast_mode_notes(self) -> list[str]:
        """["its ReLU applied by max_pool2d"] while the fast mode folds the ReLU into that pool."""
        return [] if self.relu_applied_by is None else [f"its ReLU applied by {self.relu_applied_by}"]

    def get_config(self) -> dict[str, Any]:
        """The base config plus the activation and the initialisers' names."""
        config = super().get_config()
        config.update(
            activation=self.activation_name,
            kernel_initializer=self.kernel_initializer_name,
            bias_initializer=self.bias_initializer_name,
        )
        return config
