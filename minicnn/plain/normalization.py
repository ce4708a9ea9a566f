"""BatchNormalization the textbook way: the forward step by step, the backward node by node.

Training (batch statistics, over every axis but the last, the channels):

    mu  = mean(x)                 var = mean((x - mu)**2)        (divided by M, not M - 1)
    std = sqrt(var + epsilon)     x_hat = (x - mu) / std         y = gamma * x_hat + beta
    moving = moving * momentum + batch_statistic * (1 - momentum)   (Keras's update, one per call)

Inference: the same with mu, var replaced by the moving mean and variance, which then are
constants, so dx = dy * gamma / std.

Shapes: x (N, ..., C) -> y (N, ..., C); gamma, beta, the moving statistics (C,); M = x.size / C
values per channel. The backward here walks the graph above backwards one node at a time (as
CS231n's staged solution does); the fast :class:`minicnn.layers.BatchNormalization` uses the
closed form derived in its docstring, and the tests check that the two agree.
"""

from __future__ import annotations

import numpy as np


def batch_norm_forward_train(x, gamma, beta, epsilon=1e-3):
    """y = gamma * (x - mu) / sqrt(var + epsilon) + beta with the statistics of this batch.

    Parameters
    ----------
    x : ndarray (N, ..., C)
    gamma, beta : ndarray (C,)
    epsilon : float

    Returns
    -------
    y : ndarray (N, ..., C)
    cache : tuple (x_centered, std, x_hat, gamma, mu, var), what :func:`batch_norm_backward_train` needs;
        mu and var (C,) are the batch statistics the moving averages take in
    """
    rows = x.reshape(-1, x.shape[-1])  # (M, C): one row per position and sample
    mu = rows.mean(axis=0)
    centered = rows - mu
    var = (centered**2).mean(axis=0)
    std = np.sqrt(var + epsilon)
    x_hat = centered / std
    y = gamma * x_hat + beta
    return y.reshape(x.shape), (centered, std, x_hat, gamma, mu, var)


def batch_norm_backward_train(dy, cache):
    """dx, dgamma, dbeta through every node of the training forward, last node first.

    Parameters
    ----------
    dy : ndarray (N, ..., C), dL/dy
    cache : what :func:`batch_norm_forward_train` returned

    Returns
    -------
    dx : ndarray (N, ..., C)
    dgamma, dbeta : ndarray (C,)
    """
    centered, std, x_hat, gamma, _, _ = cache
    rows = dy.reshape(-1, dy.shape[-1])
    m = rows.shape[0]
    dbeta = rows.sum(axis=0)  # y = gamma * x_hat + beta
    dgamma = (rows * x_hat).sum(axis=0)
    dx_hat = rows * gamma
    dstd = -(dx_hat * centered).sum(axis=0) / std**2  # x_hat = centered / std
    dvar = dstd / (2 * std)  # std = sqrt(var + epsilon)
    dcentered = dx_hat / std + 2 * centered * dvar / m  # var = mean(centered**2), and x_hat's own path
    dmu = -dcentered.sum(axis=0)  # centered = x - mu
    dx = dcentered + dmu / m  # mu = mean(x)
    return dx.reshape(dy.shape), dgamma, dbeta


def batch_norm_forward_inference(x, gamma, beta, moving_mean, moving_variance, epsilon=1e-3):
    """y = gamma * (x - moving_mean) / sqrt(moving_variance + epsilon) + beta.

    Parameters
    ----------
    x : ndarray (N, ..., C)
    gamma, beta, moving_mean, moving_variance : ndarray (C,)
    epsilon : float

    Returns
    -------
    y : ndarray (N, ..., C)
    cache : tuple (x_hat, gamma, std), what :func:`batch_norm_backward_inference` needs
    """
    std = np.sqrt(moving_variance + epsilon)
    x_hat = (x - moving_mean) / std
    return gamma * x_hat + beta, (x_hat, gamma, std)


def batch_norm_backward_inference(dy, cache):
    """dx = dy * gamma / std (the statistics are constants), dgamma = sum(dy * x_hat), dbeta = sum(dy).

    Parameters
    ----------
    dy : ndarray (N, ..., C), dL/dy
    cache : what :func:`batch_norm_forward_inference` returned

    Returns
    -------
    dx : ndarray (N, ..., C)
    dgamma, dbeta : ndarray (C,)
    """
    x_hat, gamma, std = cache
    axes = tuple(range(dy.ndim - 1))
    return dy * gamma / std, (dy * x_hat).sum(axis=axes), dy.sum(axis=axes)


def moving_average(moving, batch_statistic, momentum=0.99):
    """Keras's update of a moving statistic: moving * momentum + batch_statistic * (1 - momentum).

    Parameters
    ----------
    moving, batch_statistic : ndarray (C,)
    momentum : float, in [0, 1]

    Returns
    -------
    ndarray (C,), the new moving statistic
    """
    return moving * momentum + batch_statistic * (1 - momentum)
