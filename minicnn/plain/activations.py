"""ReLU, sigmoid, tanh and softmax the textbook way.

    relu(x) = max(x, 0)                         dx = dy * [x > 0]
    sigmoid(x) = 1 / (1 + exp(-x))              dx = dy * y * (1 - y)
    tanh(x)                                     dx = dy * (1 - y**2)
    softmax(x)_k = exp(x_k) / sum_j exp(x_j)    dx = y * (dy - sum_k dy_k y_k)     (over the last axis)

Shapes: x (N, ...) -> y (N, ...), unchanged; softmax x (N, K) -> y (N, K), each row summing to 1.
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


def tanh_forward(x):
    """y = tanh(x) = (exp(x) - exp(-x)) / (exp(x) + exp(-x)).

    Parameters
    ----------
    x : ndarray (N, ...)

    Returns
    -------
    y : ndarray (N, ...)
    cache : ndarray (N, ...), y (the derivative needs only y)
    """
    y = np.tanh(x)
    return y, y


def tanh_backward(dy, cache):
    """dx = dy * (1 - y**2), since tanh'(x) = 1 - tanh(x)**2.

    Parameters
    ----------
    dy : ndarray (N, ...), dL/dy
    cache : what :func:`tanh_forward` returned

    Returns
    -------
    dx : ndarray (N, ...)
    """
    y = cache
    return dy * (1 - y * y)


def softmax(x):
    """exp(x) / sum(exp(x)) over the last axis, the row maximum subtracted first so exp never overflows.

    softmax(x) = softmax(x - c) for any c (exp(-c) cancels above and below); c = max(x) makes
    every exponent <= 0.

    Parameters
    ----------
    x : ndarray (..., K)

    Returns
    -------
    ndarray (..., K), rows summing to 1
    """
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def log_softmax(x):
    """log(softmax(x)) = (x - max) - log(sum(exp(x - max))) over the last axis: never log(0).

    Parameters
    ----------
    x : ndarray (..., K)

    Returns
    -------
    ndarray (..., K)
    """
    shifted = x - x.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def softmax_forward(x):
    """y = softmax(x) over the last axis.

    Parameters
    ----------
    x : ndarray (N, K)

    Returns
    -------
    y : ndarray (N, K)
    cache : ndarray (N, K), y (the derivative needs only y)
    """
    y = softmax(x)
    return y, y


def softmax_backward(dy, cache):
    """dx = y * (dy - sum_k dy_k y_k), row by row: the Jacobian dy_k/dx_j = y_k ([k = j] - y_j) times dy.

    Parameters
    ----------
    dy : ndarray (N, K), dL/dy
    cache : what :func:`softmax_forward` returned

    Returns
    -------
    dx : ndarray (N, K)
    """
    y = cache
    return y * (dy - (dy * y).sum(axis=-1, keepdims=True))
