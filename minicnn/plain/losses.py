"""Binary cross-entropy the textbook way: on probabilities, on logits, and its gradient p - y.

    L = mean_n  -[ y log p + (1 - y) log(1 - p) ]                     p = sigmoid(z)
      = mean_n  max(z, 0) - z y + log(1 + exp(-|z|))                  (the same, from the logit z)
    dL/dp = (-y / p + (1 - y) / (1 - p)) / N        dL/dz = (p - y) / N

Shapes: p (or z) and y (N, 1) or (N,), the same; L is a scalar. N counts every entry.

As the fast loss (and Keras), p is clipped to [EPSILON, 1 - EPSILON] before the log, so the
loss stays finite; the clipping is flat, so dL/dp is 0 where p was clipped.
"""

from __future__ import annotations

import numpy as np

EPSILON = 1e-7
"""p is clipped to [EPSILON, 1 - EPSILON] (Keras's epsilon)."""


def binary_cross_entropy_forward(p, y):
    """L = mean of -[y log p + (1 - y) log(1 - p)], with p clipped to [EPSILON, 1 - EPSILON].

    Parameters
    ----------
    p : ndarray (N, 1) or (N,), probabilities
    y : ndarray of the shape of p, labels in [0, 1]

    Returns
    -------
    loss : ndarray of shape (), the mean over the batch
    cache : tuple (p, y)
    """
    q = np.clip(p, EPSILON, 1 - EPSILON)
    return (-(y * np.log(q) + (1 - y) * np.log(1 - q))).mean(), (p, y)


def binary_cross_entropy_backward(dloss, cache):
    """dL/dp = dloss * (-y / p + (1 - y) / (1 - p)) / N, and 0 where p was clipped.

    Parameters
    ----------
    dloss : float, dL_total/dL (1.0 when L is the total loss)
    cache : what :func:`binary_cross_entropy_forward` returned

    Returns
    -------
    dp : ndarray of the shape of p
    """
    p, y = cache
    inside = (p > EPSILON) & (p < 1 - EPSILON)
    q = np.clip(p, EPSILON, 1 - EPSILON)
    return dloss * (-(y / q) + (1 - y) / (1 - q)) / p.size * inside


def sigmoid_binary_cross_entropy_backward(dloss, cache):
    """dL/dz = dloss * (p - y) / N for p = sigmoid(z): the two factors dL/dp * dp/dz, cancelled by hand.

    dL/dp = (p - y) / (p (1 - p) N) and dp/dz = p (1 - p), so dL/dz = (p - y) / N: exact and
    stable, where the product of the two factors is 0 * inf once p rounds to 1 in float32.

    Parameters
    ----------
    dloss : float, dL_total/dL
    cache : what :func:`binary_cross_entropy_forward` returned (p = sigmoid(z))

    Returns
    -------
    dz : ndarray of the shape of p
    """
    p, y = cache
    return dloss * (p - y) / p.size


def binary_cross_entropy_logits_forward(z, y):
    """L = mean of max(z, 0) - z y + log(1 + exp(-|z|)), which is the loss of p = sigmoid(z), never overflowing.

    Parameters
    ----------
    z : ndarray (N, 1) or (N,), logits
    y : ndarray of the shape of z, labels in [0, 1]

    Returns
    -------
    loss : ndarray of shape ()
    cache : tuple (z, y)
    """
    return (np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z)))).mean(), (z, y)


def binary_cross_entropy_logits_backward(dloss, cache):
    """dL/dz = dloss * (sigmoid(z) - y) / N.

    Parameters
    ----------
    dloss : float, dL_total/dL
    cache : what :func:`binary_cross_entropy_logits_forward` returned

    Returns
    -------
    dz : ndarray of the shape of z
    """
    z, y = cache
    e = np.exp(-np.abs(z))  # sigmoid(z) without overflow, as in minicnn.plain.activations.sigmoid
    return dloss * (np.where(z >= 0, 1 / (1 + e), e / (1 + e)) - y) / z.size
