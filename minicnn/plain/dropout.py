"""Dropout the textbook way, with the mask passed in (inverted dropout, as the fast Dropout).

    y = x * mask / (1 - rate)        dx = dy * mask / (1 - rate)
    mask[k] = 1 with probability 1 - rate, else 0; at inference y = x

Dividing by the keep probability 1 - rate keeps E[y] = x, so inference needs no rescaling.
Shapes: x (N, ...) -> y (N, ...), unchanged.
"""

from __future__ import annotations

import numpy as np


def dropout_mask(shape, rate, rng):
    """mask[k] = uniform[k] >= rate: True (kept) with probability 1 - rate.

    The fast Dropout draws its uniforms with ``backend.random_uniform(shape, seed=(layer seed,
    call number))``; pass the same numbers to get the same mask.

    Parameters
    ----------
    shape : tuple of int
    rate : float, in [0, 1)
    rng : numpy.random.Generator, or an ndarray of uniforms in [0, 1) of ``shape``

    Returns
    -------
    mask : bool ndarray of ``shape``
    """
    uniform = rng if isinstance(rng, np.ndarray) else rng.random(shape)
    return uniform >= rate


def dropout_forward(x, rate, mask):
    """y = x * mask / (1 - rate).

    Parameters
    ----------
    x : ndarray (N, ...)
    rate : float, in [0, 1)
    mask : bool ndarray (N, ...), True where x is kept

    Returns
    -------
    y : ndarray (N, ...)
    cache : ndarray (N, ...), the scale mask / (1 - rate) in the dtype of x
    """
    scale = (mask / (1 - rate)).astype(x.dtype)  # 1/(1 - rate) where kept, 0 where dropped
    return x * scale, scale


def dropout_backward(dy, cache):
    """dx = dy * mask / (1 - rate): the same scale as forward.

    Parameters
    ----------
    dy : ndarray (N, ...), dL/dy
    cache : what :func:`dropout_forward` returned

    Returns
    -------
    dx : ndarray (N, ...)
    """
    return dy * cache
