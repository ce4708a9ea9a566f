"""The losses the textbook way: binary and categorical cross-entropy (on probabilities, on logits, and
their fused gradient p - y) and the mean squared error.

Binary cross-entropy:

    L = mean_n  -[ y log p + (1 - y) log(1 - p) ]                     p = sigmoid(z)
      = mean_n  max(z, 0) - z y + log(1 + exp(-|z|))                  (the same, from the logit z)
    dL/dp = (-y / p + (1 - y) / (1 - p)) / N        dL/dz = (p - y) / N

Shapes: p (or z) and y (N, 1) or (N,), the same; L is a scalar. N counts every entry.

Categorical cross-entropy (K classes, one-hot rows y; sparse labels c become one-hot rows first):

    L = mean_n  -sum_k y_k log q_k        q = p / sum_k p_k   (Keras renormalises each row)
      = mean_n  -sum_k y_k log_softmax(z)_k                           (from the logits z)
    dL/dz = (p - y) / N  for p = softmax(z)                           (N rows)

Mean squared error: L = mean of (p - y)**2 over every entry;  dL/dp = 2 (p - y) / size.

As the fast loss (and Keras), p (or q) is clipped to [EPSILON, 1 - EPSILON] before the log, so
the loss stays finite; the clipping is flat, so dL/dp is 0 where p was clipped.
"""

from __future__ import annotations

import numpy as np

from minicnn.plain.activations import log_softmax, softmax

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


def one_hot(labels, num_classes):
    """Class indices c (N,) or (N, 1) -> one-hot rows (N, K): row n is 1 at column c_n, 0 elsewhere.

    Parameters
    ----------
    labels : ndarray (N,) or (N, 1), whole numbers in [0, num_classes)
    num_classes : int, K

    Returns
    -------
    ndarray (N, K) of 0.0 and 1.0
    """
    return np.eye(num_classes)[np.asarray(labels).reshape(-1).astype(int)]


def categorical_cross_entropy_forward(p, y):
    """L = mean_n -sum_k y_k log q_k, q = p / (its row sum), clipped to [EPSILON, 1 - EPSILON] (as Keras).

    Parameters
    ----------
    p : ndarray (N, K), probabilities (rows summing to 1)
    y : ndarray (N, K), one-hot rows (:func:`one_hot` for class indices)

    Returns
    -------
    loss : ndarray of shape ()
    cache : tuple (p, y)
    """
    q = np.clip(p / p.sum(axis=-1, keepdims=True), EPSILON, 1 - EPSILON)
    return (-(y * np.log(q)).sum(axis=-1)).mean(), (p, y)


def categorical_cross_entropy_backward(dloss, cache):
    """dL/dp: dL/dq = -y / q / N (0 where q was clipped), then back through q = p / s, s = sum_k p_k.

    dq_k/dp_j = ([k = j] - q_k) / s, so dL/dp_j = (dL/dq_j - sum_k dL/dq_k q_k) / s.

    Parameters
    ----------
    dloss : float, dL_total/dL
    cache : what :func:`categorical_cross_entropy_forward` returned

    Returns
    -------
    dp : ndarray (N, K)
    """
    p, y = cache
    s = p.sum(axis=-1, keepdims=True)
    q = p / s
    inside = (q > EPSILON) & (q < 1 - EPSILON)
    dq = -y / np.clip(q, EPSILON, 1 - EPSILON) * inside
    return dloss * (dq - (dq * q).sum(axis=-1, keepdims=True)) / s / len(p)


def softmax_categorical_cross_entropy_backward(dloss, cache):
    """dL/dz = dloss * (p - y) / N for p = softmax(z): dL/dp times the softmax Jacobian, cancelled by hand.

    dL/dz_j = sum_k (-y_k / p_k) p_k ([k = j] - p_j) = p_j sum_k y_k - y_j = p_j - y_j (rows of y sum to 1).

    Parameters
    ----------
    dloss : float, dL_total/dL
    cache : what :func:`categorical_cross_entropy_forward` returned (p = softmax(z))

    Returns
    -------
    dz : ndarray (N, K)
    """
    p, y = cache
    return dloss * (p - y) / len(p)


def categorical_cross_entropy_logits_forward(z, y):
    """L = mean_n -sum_k y_k log_softmax(z)_k: the loss of p = softmax(z), never taking log(0).

    Parameters
    ----------
    z : ndarray (N, K), logits
    y : ndarray (N, K), one-hot rows

    Returns
    -------
    loss : ndarray of shape ()
    cache : tuple (z, y)
    """
    return (-(y * log_softmax(z)).sum(axis=-1)).mean(), (z, y)


def categorical_cross_entropy_logits_backward(dloss, cache):
    """dL/dz = dloss * (softmax(z) * sum_k y_k - y) / N, which is (softmax(z) - y) / N for one-hot rows.

    Parameters
    ----------
    dloss : float, dL_total/dL
    cache : what :func:`categorical_cross_entropy_logits_forward` returned

    Returns
    -------
    dz : ndarray (N, K)
    """
    z, y = cache
    return dloss * (softmax(z) * y.sum(axis=-1, keepdims=True) - y) / len(z)


def mean_squared_error_forward(p, y):
    """L = mean of (p - y)**2 over every entry.

    Parameters
    ----------
    p : ndarray (N, ...), predictions
    y : ndarray of the shape of p, targets

    Returns
    -------
    loss : ndarray of shape ()
    cache : ndarray, p - y
    """
    difference = p - y
    return (difference * difference).mean(), difference


def mean_squared_error_backward(dloss, cache):
    """dL/dp = dloss * 2 (p - y) / size.

    Parameters
    ----------
    dloss : float, dL_total/dL
    cache : what :func:`mean_squared_error_forward` returned

    Returns
    -------
    dp : ndarray of the shape of p
    """
    difference = cache
    return dloss * 2 * difference / difference.size
