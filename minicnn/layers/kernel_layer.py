"""KernelLayer: what Conv2D and Dense have in common.

Both compute z = (x combined with a kernel) + bias and then an activation, y = a(z).
This class holds that shared part: the kernel and bias parameters with their
initialisers, the optional fused activation, and the chain rule through it:

    backward(dy):  dz = a'(z) * dy   (the activation's backward)
                   then backward_before_activation(dz), the layer's own math.

A model whose last layer is sigmoid feeding binary cross-entropy skips a'(z)
and calls ``backward_before_activation`` directly with the fused gradient.
"""

from __future__ import annotations

from typing import Any

import numpy

from minicnn import initializers
from minicnn.layers import activations
from minicnn.layers.base import Layer, Shape


class KernelLayer(Layer):
    """Base of layers with a ``kernel``, a ``bias`` and an optional fused activation."""

    def __init__(self, activation: str | None, kernel_initializer: str, bias_initializer: str,
                 name: str | None = None, input_shape: Shape | None = None) -> None:
        super().__init__(name=name, input_shape=input_shape)
        self.activation_name = activation
        self.activation = activations.get(activation)
        self.kernel_initializer_name = kernel_initializer
        self.bias_initializer_name = bias_initializer
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)

    def create_parameters(self, kernel_shape: tuple[int, ...], rng: numpy.random.Generator | None) -> None:
        """params["kernel"] of ``kernel_shape`` and params["bias"] of its last axis, from the initialisers."""
        rng = rng if rng is not None else numpy.random.default_rng(0)
        self.params["kernel"] = self.kernel_initializer(kernel_shape, rng, self.dtype)
        self.params["bias"] = self.bias_initializer((kernel_shape[-1],), rng, self.dtype)

    def backward(self, dy: Any) -> Any:
        """dy -> dx; fills grads["kernel"] and grads["bias"].

        With activation="relu", ``dy`` is overwritten (it becomes dL/dz); pass a copy to keep it.
        """
        # dy is the next layer's backward output, used by no one else: ReLU reuses it for dz
        return self.backward_before_activation(self.activation.backward_in_place(dy))

    def backward_before_activation(self, dz: Any) -> Any:
        """Backward from dz = dL/dz, the gradient at the pre-activation output z."""
        raise NotImplementedError

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(activation=self.activation_name, kernel_initializer=self.kernel_initializer_name,
                      bias_initializer=self.bias_initializer_name)
        return config
