"""Weight initialisers: where a network's first guess comes from.

Random numbers are drawn on the host with a seeded NumPy generator and then
moved to the active backend (:func:`minicnn.backend.to_device`; on CuPy, a copy to
the GPU), so a model built with the same seed starts from the same weights on NumPy
and on CuPy.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from minicnn import backend


def fans(shape: tuple[int, ...]) -> tuple[int, int]:
    """(fan_in, fan_out) of a kernel, as Keras counts them.

    - Dense kernel (in, out): fan_in = in, fan_out = out.
    - Conv kernel (KH, KW, C_in, C_out): each input/output channel sees ``KH*KW`` weights,
      so ``fan_in = KH*KW*C_in`` and ``fan_out = KH*KW*C_out``.

    Parameters
    ----------
    shape : tuple of int
        The kernel's shape, output axis last.

    Returns
    -------
    tuple of two ints
        (fan_in, fan_out).
    """
    receptive_field = int(np.prod(shape[:-2])) if len(shape) > 2 else 1
    return shape[-2] * receptive_field, shape[-1] * receptive_field


def glorot_uniform(shape: tuple[int, ...], rng: np.random.Generator, dtype: str) -> Any:
    """Uniform in [-limit, limit] with limit = sqrt(6 / (fan_in + fan_out)) (Keras's default).

    Parameters
    ----------
    shape : tuple of int
        Shape of the array to make.
    rng : numpy.random.Generator
        The seeded generator the numbers come from (on the host).
    dtype : str
        "float32" or "float64".

    Returns
    -------
    ndarray
        Of ``shape`` and ``dtype``, on the active backend.
    """
    fan_in, fan_out = fans(shape)
    limit = np.sqrt(6.0 / (fan_in + fan_out))
    return backend.to_device(rng.uniform(-limit, limit, size=shape).astype(dtype))


def he_normal(shape: tuple[int, ...], rng: np.random.Generator, dtype: str) -> Any:
    """Normal with std = sqrt(2 / fan_in), truncated at 2 std as in Keras; suits ReLU networks.

    Parameters
    ----------
    shape : tuple of int
        Shape of the array to make.
    rng : numpy.random.Generator
        The seeded generator the numbers come from (on the host).
    dtype : str
        "float32" or "float64".

    Returns
    -------
    ndarray
        Of ``shape`` and ``dtype``, on the active backend.
    """
    fan_in, _ = fans(shape)
    std = np.sqrt(2.0 / fan_in)
    # Keras's truncated normal: redraw values beyond 2 std. The 0.8796 undoes the
    # variance lost by truncation so the final std is still sqrt(2 / fan_in).
    values = rng.standard_normal(size=shape)
    outside = np.abs(values) > 2.0
    while outside.any():
        values[outside] = rng.standard_normal(size=int(outside.sum()))
        outside = np.abs(values) > 2.0
    return backend.to_device((values * std / 0.87962566103423978).astype(dtype))


def zeros(shape: tuple[int, ...], rng: np.random.Generator, dtype: str) -> Any:
    """All zeros (Keras's default for biases); ``rng`` is not used.

    Parameters
    ----------
    shape : tuple of int
        Shape of the array to make.
    rng : numpy.random.Generator
        The seeded generator the numbers come from (on the host).
    dtype : str
        "float32" or "float64".

    Returns
    -------
    ndarray
        Of ``shape`` and ``dtype``, on the active backend.
    """
    return backend.array_module().zeros(shape, dtype=dtype)


INITIALIZERS: dict[str, Callable[..., Any]] = {
    "glorot_uniform": glorot_uniform,
    "he_normal": he_normal,
    "zeros": zeros,
}


def get(name: str) -> Callable[..., Any]:
    """Look an initialiser up by name.

    Parameters
    ----------
    name : str, one of {"glorot_uniform", "he_normal", "zeros"}
        The initialiser's name, as Keras spells it.

    Returns
    -------
    callable
        ``initializer(shape, rng, dtype) -> array``.

    Raises
    ------
    ValueError
        An unknown name; the message lists the known ones.
    """
    if not isinstance(name, str) or name not in INITIALIZERS:
        raise ValueError(f"unknown initializer {name!r}; choose one of {', '.join(INITIALIZERS)}")
    return INITIALIZERS[name]
