"""Dropout: during training, zero each value with probability ``rate``.

Inverted dropout:  y = x * mask / (1 - rate),  mask[k] = 1 with probability 1 - rate.
Dividing by the keep probability keeps E[y] = x, so inference is simply y = x.
Backward: dL/dx = dL/dy * mask / (1 - rate), the same scaling.

Shapes: x (N, ...) -> y (N, ...), unchanged.

The masks are reproducible: call k of a layer draws from the seed (layer seed, k).
A checkpoint stores k, so a resumed run draws the same masks as an unbroken one.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from minicnn import backend, checks
from minicnn.layers.base import Layer, Shape


class Dropout(Layer):
    """Randomly zero a fraction ``rate`` of the inputs during training (identity at inference).

    Parameters
    ----------
    rate : float
        Fraction of the inputs to drop, 0 <= rate < 1.
    seed : int, optional
        Seed of the masks; a Sequential model sets it from its own seed when left None.
    name : str, optional
        Unique within a model; by default "dropout", "dropout_1", ...
    input_shape : tuple of int, optional
        Only for a model's first layer.

    Raises
    ------
    ValueError
        ``rate`` is outside [0, 1).
    """

    def __init__(
        self, rate: float, seed: int | None = None, name: str | None = None, input_shape: Shape | int | None = None
    ) -> None:
        super().__init__(name=name, input_shape=input_shape)
        self.rate = checks.check_number("Dropout", "rate", rate, 0, 1, include_high=False)
        self.seed = None if seed is None else checks.check_whole_number("Dropout", "seed", seed, 0)
        self.calls = 0  # training forward passes so far; with the seed it fixes the next mask

    def build(self, input_shape: Shape, rng: np.random.Generator | None = None) -> Shape:
        """Draw the layer's seed from ``rng`` when none was given; the shape is unchanged."""
        if self.seed is None:
            self.seed = int(rng.integers(2**31)) if rng is not None else 0
        return super().build(input_shape, rng)

    def forward(self, x: Any, training: bool = False) -> Any:
        """x (N, ...) -> y = x * mask / (1 - rate) in training (a new mask each call); y = x otherwise.

        The same numbers as :func:`minicnn.plain.dropout.dropout_forward` (bit for bit) with the mask
        ``backend.random_uniform(x.shape, seed=(self.seed, call number)) >= rate``.
        """
        if not training or self.rate == 0.0:
            self.scale = None
            return x
        keep = 1.0 - self.rate
        uniform = backend.random_uniform(x.shape, seed=(self.seed, self.calls), dtype=str(x.dtype))
        self.calls += 1
        # mask / keep in one array: 1/keep where kept, 0 where dropped (same dtype as x)
        self.scale = (uniform >= self.rate) * x.dtype.type(1.0 / keep)
        return x * self.scale

    def backward(self, dy: Any) -> Any:
        """dL/dx = dL/dy * mask / (1 - rate), with the mask of the last forward (dy itself after inference).

        The same numbers as :func:`minicnn.plain.dropout.dropout_backward` (bit for bit).
        """
        if self.scale is None:
            return dy
        return dy * self.scale

    def get_state(self) -> dict[str, int]:
        """The seed and the number of masks drawn so far, so that a resumed run draws the same masks."""
        return {"seed": int(self.seed or 0), "calls": self.calls}

    def set_state(self, state: dict[str, int]) -> None:
        """Restore what :meth:`get_state` returned."""
        self.seed = int(state["seed"])
        self.calls = int(state["calls"])

    def get_config(self) -> dict[str, Any]:
        """The constructor arguments: rate, seed, name."""
        config = super().get_config()
        config.update(rate=self.rate, seed=self.seed)
        return config
