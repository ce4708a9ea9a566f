"""Dropout: during training, zero each value with probability ``rate``.

Inverted dropout:  y = x * mask / (1 - rate),  mask[k] = 1 with probability 1 - rate.
Dividing by the keep probability keeps E[y] = x, so inference is simply y = x.
Backward: dL/dx = dL/dy * mask / (1 - rate), the same scaling.

Shapes: x (N, ...) -> y (N, ...), unchanged.

The masks are reproducible: call k of a layer draws from the seed (layer seed, k).
A checkpoint stores k, so a resumed run draws the same masks as an unbroken one.

Where the mask is drawn (``masks_on_device``, off by default):

* off: by NumPy on the host, then copied to the backend (:func:`minicnn.backend.random_uniform`),
  so a NumPy and a CuPy run with the same seed drop the same units. On an H200 the study's
  dropout took 0.004 s of a 0.022 s step, most of it drawing 1M numbers on one CPU thread
  and copying 4 MB.
* on: by the backend's own generator (``xp.random.default_rng``: on CuPy, on the GPU, with no
  copy). Still seeded by (layer seed, k), so still reproducible on one backend, but CuPy's
  generator gives other numbers than NumPy's for the same seed: a CPU and a GPU run no longer
  drop the same units. That is the trade: speed for CPU/GPU-identical masks. On NumPy both
  settings draw with NumPy, but "on" draws from another seed, so its masks differ from "off".
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
    masks_on_device : bool, default False
        Draw the masks with the backend's generator (on CuPy: on the GPU, no copy) instead of
        NumPy's on the host; the module docstring says what this trades away.

    Raises
    ------
    ValueError
        ``rate`` is outside [0, 1).
    TypeError
        ``masks_on_device`` is not a bool.
    """

    def __init__(
        self,
        rate: float,
        seed: int | None = None,
        name: str | None = None,
        input_shape: Shape | int | None = None,
        masks_on_device: bool = False,
    ) -> None:
        super().__init__(name=name, input_shape=input_shape)
        self.rate = checks.check_number("Dropout", "rate", rate, 0, 1, include_high=False)
        if type(masks_on_device) is not bool:
            raise TypeError(f"Dropout: masks_on_device must be True or False, got {masks_on_device!r}")
        self.masks_on_device = masks_on_device
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
        if self.masks_on_device:
            uniform = device_uniform(x.shape, seed=(self.seed, self.calls), dtype=str(x.dtype))
        else:
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
        """The constructor arguments: rate, seed, name, and masks_on_device when it is on.

        (Left out when off, so that files saved before the option existed read the same.)
        """
        config = super().get_config()
        config.update(rate=self.rate, seed=self.seed)
        if self.masks_on_device:
            config.update(masks_on_device=True)
        return config


def device_uniform(shape: tuple[int, ...], seed: tuple[int, ...], dtype: str) -> Any:
    """Uniform numbers in [0, 1) drawn by the backend's own generator (on CuPy: on the GPU).

    The fast twin of :func:`minicnn.backend.random_uniform`, which draws with NumPy on the host
    and copies. CuPy's ``default_rng`` takes one whole number, so the seed tuple is first turned
    into one by NumPy's generator seeded with the tuple (which hashes a seed list).

    Parameters
    ----------
    shape : tuple of int
        Shape of the result, e.g. x's (N, ...).
    seed : tuple of int
        (layer seed, call number).
    dtype : str
        "float32" or "float64".

    Returns
    -------
    ndarray
        Of ``shape`` and ``dtype``, on the active backend.
    """
    xp = backend.array_module()
    one_seed = int(np.random.default_rng(list(seed)).integers(2**31))  # NumPy hashes the seed list
    # to_device: a no-op for CuPy's result; the CPU stand-in's generator hands back a host array.
    return backend.to_device(xp.random.default_rng(one_seed).random(shape, dtype=dtype))
