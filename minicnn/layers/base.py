"""Layer: the contract every layer follows.

A layer is a function y = f(x; params) that can also run backwards:

* ``build(input_shape, rng)`` creates the parameters once the input shape is known
  and returns the output shape (shapes here exclude the batch axis);
* ``forward(x, training)`` computes y and keeps what ``backward`` will need;
* ``backward(dy)`` receives dL/dy, fills ``self.grads`` with dL/dparam (same keys
  as ``self.params``) and returns dL/dx.

Parameters are plain arrays in the dict ``self.params``; optimisers update them in
place, so ``layer.params["kernel"][...] = w`` changes the layer too.

Large layers return arrays they keep and reuse (see :meth:`Layer.buffer`): the result
of ``forward`` is valid until the same layer's next ``forward``, and that of
``backward`` until its next ``backward``. Copy a result to keep it longer.
"""

from __future__ import annotations

import re
from typing import Any

import numpy

from minicnn import backend

Shape = tuple[int, ...]


def snake_case(class_name: str) -> str:
    """'MaxPool2D' -> 'max_pool2d', the default name of a layer of that class."""
    return re.sub(r"(?<=[a-z])(?=[A-Z])", "_", class_name).lower()


def reuse_or_allocate(store: dict[Any, Any], key: Any, shape: Shape, dtype: Any) -> Any:
    """``store[key]``, allocated once and grown only when needed, viewed as ``shape``.

    The kept array is replaced when a batch with more rows, other trailing axes, another
    dtype or another backend arrives; a smaller batch (the last one of an epoch) gets a
    view of its first rows.
    """
    xp = backend.array_module()
    kept = store.get(key)
    if (kept is None or not isinstance(kept, xp.ndarray) or kept.dtype != dtype
            or kept.shape[1:] != tuple(shape[1:]) or kept.shape[0] < shape[0]):
        kept = xp.empty(shape, dtype=dtype)
        store[key] = kept
    return kept[: shape[0]]


class Layer:
    """Base class: holds params/grads, the shapes and the name; subclasses do the math."""

    def __init__(self, name: str | None = None, input_shape: Shape | None = None) -> None:
        self.name = name
        self.input_shape = tuple(input_shape) if input_shape is not None else None
        self.output_shape: Shape | None = None
        self.params: dict[str, Any] = {}
        self.grads: dict[str, Any] = {}
        self.dtype: str | None = None
        self.built = False
        # The first layer of a model never needs dL/dx (nobody consumes it), and for a
        # convolution over a 300x300 image skipping it saves a large col2im.
        self.compute_input_gradient = True
        self._buffers: dict[str, Any] = {}

    # ---- construction -------------------------------------------------------------
    def build(self, input_shape: Shape, rng: numpy.random.Generator | None = None) -> Shape:
        """Create parameters for inputs of ``input_shape`` (no batch axis); return the output shape."""
        self.input_shape = tuple(input_shape)
        self.dtype = backend.default_dtype()
        self.output_shape = self.compute_output_shape(self.input_shape)
        self.built = True
        return self.output_shape

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        """Output shape (no batch axis) for a given input shape; layers that change shape override it."""
        return input_shape

    def count_params(self) -> int:
        """Number of scalars in this layer's parameters."""
        return sum(int(numpy.prod(value.shape)) for value in self.params.values())

    def get_config(self) -> dict[str, Any]:
        """The constructor arguments that rebuild this layer (saved as JSON with the model)."""
        config: dict[str, Any] = {"name": self.name}
        if self.input_shape is not None:
            config["input_shape"] = list(self.input_shape)
        return config

    # ---- state that is not a parameter (e.g. Dropout's random-number counter) ------
    def get_state(self) -> dict[str, int]:
        """Non-trainable state a checkpoint must keep so that training resumes exactly."""
        return {}

    def set_state(self, state: dict[str, int]) -> None:
        """Restore what :meth:`get_state` returned."""

    # ---- buffers reused from step to step ---------------------------------------------
    def buffer(self, name: str, shape: Shape, dtype: Any) -> Any:
        """An uninitialised array of ``shape`` that this layer keeps and hands out again next step.

        Why: the study's first layers produce arrays of hundreds of MB per batch. A fresh
        array costs a page fault per page the first time it is written, every step, and
        that costs as much as the arithmetic. Only use it for arrays that are dead by the
        time the same layer runs again.
        """
        return reuse_or_allocate(self._buffers, name, shape, dtype)

    # ---- memory report ------------------------------------------------------------
    def workspace_bytes(self, batch_size: int) -> int:
        """Bytes of temporary buffers this layer needs for one batch (beyond its input and output)."""
        return 0

    # ---- checks --------------------------------------------------------------------
    def describe(self) -> str:
        """'conv2d (Conv2D)': how errors and the summary name this layer."""
        return f"{self.name or snake_case(type(self).__name__)} ({type(self).__name__})"

    def check_input(self, x: Any) -> None:
        """Raise a clear error when ``x`` does not have the shape and dtype this layer was built for."""
        if not self.built:
            raise RuntimeError(f"layer {self.describe()} is not built; call build(input_shape) first")
        if tuple(x.shape[1:]) != self.input_shape:
            raise ValueError(
                f"layer {self.describe()}: expected input of shape (None, "
                f"{', '.join(map(str, self.input_shape))}), got {tuple(x.shape)}"
            )
        if str(x.dtype) != self.dtype:
            raise TypeError(
                f"layer {self.describe()}: expected input dtype {self.dtype}, got {x.dtype} "
                "(cast inputs to the model's dtype; mixing types would silently change precision)"
            )

    # ---- the math (subclasses) ------------------------------------------------------
    def forward(self, x: Any, training: bool = False) -> Any:
        raise NotImplementedError

    def backward(self, dy: Any) -> Any:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<{self.describe()}>"
