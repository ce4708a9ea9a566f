"""ReLU and sigmoid the textbook way.

    relu(x) = max(x, 0)               dx = dy * [x > 0]
    sigmoid(x) = 1 / (1 + exp(-x))    dx = dy * y * (1 - y)

Shapes: x (N, ...) -> y (N, ...), unchanged.
"""

from __future__ import annotations

import numpy as np


def relu_forward(x):
    """y = max(x, 0).

    Parameters
    ----------
    x : ndarray (N, ...)

    Returns
    -------
    y : ndarray (N, ...)
    cache : ndarray (N, ...), x itself
    """
    return np.maximum(x, 0), x


def relu_backward(dy, cache):
    """dx = dy * [x > 0]: the gradient passes where x was positive (at x = 0 it takes the derivative 0).

    Parameters
    ----------
    dy : ndarray (N, ...), dL/dy
    cache : what :func:`relu_forward` returned

    Returns
    -------
    dx : ndarray (N, ...)
    """
    return dy * (cache > 0)


def sigmoid(x):
    """1 / (1 + exp(-x)), written so that exp never overflows: e = exp(-|x|) <= 1 and

        sigmoid(x) = 1 / (1 + e) for x >= 0,   e / (1 + e) for x < 0   (multiply by e / e).

    Parameters
    ----------
    x : ndarray, any shape

    Returns
    -------
    ndarray of the shape of x
    """
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


def sigmoid_forward(x):
    """y = sigmoid(x) = 1 / (1 + exp(-x)).

    Parameters
    ----------
    x : ndarray (N, ...)

    Returns
    -------
    y : ndarray (N, ...)
    cache : ndarray (N, ...), y (the derivative needs only y)
    """
    y = sigmoid(x)
    return y, y


def sigmoid_backward(dy, cache):
    """dx = dy * y * (1 - y), since sigmoid'(x) = sigmoid(x) * (1 - sigmoid(x)).

    Parameters
    ----------
    dy : ndarray (N, ...), dL/dy
    cache : what :func:`sigmoid_forward` returned

    Returns
    -------
    dx : ndarray (N, ...)
    """
    y = cache
    return dy * y * (1 - y)
