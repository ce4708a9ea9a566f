"""Dense and Flatten the textbook way.

    Dense:   z = x @ w + b            dw = x.T @ dz,  db = sum_n dz,  dx = dz @ w.T
    Flatten: (N, d1, d2, ...) -> (N, d1*d2*...), row-major (C) order, as Keras

Shapes: x (N, I), w (I, O), b (O,) -> z (N, O). No activation here: the fast Dense's
``activation="relu"`` is :func:`minicnn.plain.activations.relu_forward` applied to z.
"""

from __future__ import annotations


def dense_forward(x, w, b):
    """z = x @ w + b.

    Parameters
    ----------
    x : ndarray (N, I)
    w : ndarray (I, O)
    b : ndarray (O,)

    Returns
    -------
    z : ndarray (N, O)
    cache : tuple (x, w)
    """
    z = x @ w + b  # (N, I) @ (I, O) + (O,)
    return z, (x, w)


def dense_backward(dz, cache):
    """dx = dz @ w.T,  dw = x.T @ dz,  db = the sum of dz over the batch.

    Parameters
    ----------
    dz : ndarray (N, O), dL/dz
    cache : what :func:`dense_forward` returned

    Returns
    -------
    dx : ndarray (N, I)
    dw : ndarray (I, O)
    db : ndarray (O,)
    """
    x, w = cache
    dx = dz @ w.T  # (N, O) @ (O, I)
    dw = x.T @ dz  # (I, N) @ (N, O)
    db = dz.sum(axis=0)
    return dx, dw, db


def flatten_forward(x):
    """y[n, k] = x[n, d1, d2, ...] with k running through the d's in row-major order.

    Parameters
    ----------
    x : ndarray (N, d1, d2, ...)

    Returns
    -------
    y : ndarray (N, d1*d2*...)
    cache : tuple, the input shape
    """
    return x.reshape(x.shape[0], -1), x.shape


def flatten_backward(dy, cache):
    """dx = dy reshaped back: flattening only renames the entries, so their gradients move with them.

    Parameters
    ----------
    dy : ndarray (N, d1*d2*...)
    cache : what :func:`flatten_forward` returned

    Returns
    -------
    dx : ndarray (N, d1, d2, ...)
    """
    return dy.reshape(cache)
