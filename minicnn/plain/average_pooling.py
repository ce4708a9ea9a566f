"""AveragePooling2D and GlobalAveragePooling2D the textbook way: one window at a time.

    AveragePooling2D:        y[n, oh, ow, c] = mean_{i, j} x[n, oh*SH + i, ow*SW + j, c]
                             dx[n, oh*SH + i, ow*SW + j, c] += dy[n, oh, ow, c] / (PH * PW)   for every (i, j)
    GlobalAveragePooling2D:  y[n, c] = mean_{h, w} x[n, h, w, c]      dx[n, h, w, c] = dy[n, c] / (H * W)

Shapes: x (N, H, W, C) -> y (N, OH, OW, C), OH = floor((H - PH) / SH) + 1 (Keras's "valid": a last
row or column that fits no window is dropped, and gets no gradient); the global pool gives (N, C).
Unlike a max, every element of a window shares its gradient equally.
"""

from __future__ import annotations

import numpy as np


def average_pool_forward(x, pool_size=(2, 2), strides=(2, 2)):
    """y[n, oh, ow, c] = the mean of the (PH, PW) window of x at (oh*SH, ow*SW), one window at a time.

    Parameters
    ----------
    x : ndarray (N, H, W, C)
    pool_size : tuple (PH, PW)
    strides : tuple (SH, SW)

    Returns
    -------
    y : ndarray (N, OH, OW, C)
    cache : tuple (x.shape, pool_size, strides), what :func:`average_pool_backward` needs
    """
    (ph, pw), (sh, sw) = pool_size, strides
    out_h, out_w = (x.shape[1] - ph) // sh + 1, (x.shape[2] - pw) // sw + 1
    y = np.zeros((x.shape[0], out_h, out_w, x.shape[3]), dtype=x.dtype)
    for n, oh, ow, c in np.ndindex(y.shape):
        y[n, oh, ow, c] = x[n, oh * sh : oh * sh + ph, ow * sw : ow * sw + pw, c].mean()
    return y, (x.shape, pool_size, strides)


def average_pool_backward(dy, cache):
    """dx: each window's dy / (PH * PW) added to each of its elements (overlapping windows add up).

    Parameters
    ----------
    dy : ndarray (N, OH, OW, C), dL/dy
    cache : what :func:`average_pool_forward` returned

    Returns
    -------
    dx : ndarray (N, H, W, C)
    """
    shape, (ph, pw), (sh, sw) = cache
    dx = np.zeros(shape, dtype=dy.dtype)
    for n, oh, ow, c in np.ndindex(dy.shape):
        dx[n, oh * sh : oh * sh + ph, ow * sw : ow * sw + pw, c] += dy[n, oh, ow, c] / (ph * pw)
    return dx


def global_average_pool_forward(x):
    """y[n, c] = the mean of x[n, :, :, c] over all H * W positions.

    Parameters
    ----------
    x : ndarray (N, H, W, C)

    Returns
    -------
    y : ndarray (N, C)
    cache : tuple, x.shape
    """
    return x.mean(axis=(1, 2)), x.shape


def global_average_pool_backward(dy, cache):
    """dx[n, h, w, c] = dy[n, c] / (H * W) at every position.

    Parameters
    ----------
    dy : ndarray (N, C), dL/dy
    cache : what :func:`global_average_pool_forward` returned

    Returns
    -------
    dx : ndarray (N, H, W, C)
    """
    height, width = cache[1:3]
    return np.broadcast_to(dy[:, None, None, :] / (height * width), cache).copy()
