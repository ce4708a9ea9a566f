"""MaxPool2D the textbook way: one window at a time, and the gradient routed to its winner.

    y[n, oh, ow, c] = max_{i, j} x[n, oh*SH + i, ow*SW + j, c]
    dx[n, oh*SH + i*, ow*SW + j*, c] += dy[n, oh, ow, c]   at the winner (i*, j*) of each window

Shapes: x (N, H, W, C) -> y (N, OH, OW, C), OH = floor((H - PH) / SH) + 1 (Keras's "valid":
a last row or column that fits no window is dropped).

Ties: when several elements of a window share the maximum, only the first in row-major
window order (smallest i, then smallest j) receives the gradient, exactly as the fast
MaxPool2D and TensorFlow do; ``np.argmax`` returns that first one.
"""

from __future__ import annotations

import numpy as np


def max_pool_forward(x, pool_size=(2, 2), strides=(2, 2)):
    """y[n, oh, ow, c] = max of the (PH, PW) window of x at (oh*SH, ow*SW), one window at a time.

    Parameters
    ----------
    x : ndarray (N, H, W, C)
    pool_size : tuple (PH, PW)
    strides : tuple (SH, SW)

    Returns
    -------
    y : ndarray (N, OH, OW, C)
    cache : tuple (x, pool_size, strides), what :func:`max_pool_backward` needs
    """
    (ph, pw), (sh, sw) = pool_size, strides
    out_h, out_w = (x.shape[1] - ph) // sh + 1, (x.shape[2] - pw) // sw + 1
    y = np.zeros((x.shape[0], out_h, out_w, x.shape[3]), dtype=x.dtype)
    for n, oh, ow, c in np.ndindex(y.shape):
        y[n, oh, ow, c] = x[n, oh * sh : oh * sh + ph, ow * sw : ow * sw + pw, c].max()
    return y, (x, pool_size, strides)


def max_pool_backward(dy, cache):
    """dx = dy at each window's first winner (row-major order breaks ties), zero elsewhere.

    Overlapping windows (strides < pool_size) may share a winner, which then receives the
    sum of their gradients.

    Parameters
    ----------
    dy : ndarray (N, OH, OW, C), dL/dy
    cache : what :func:`max_pool_forward` returned

    Returns
    -------
    dx : ndarray (N, H, W, C)
    """
    x, (ph, pw), (sh, sw) = cache
    dx = np.zeros(x.shape, dtype=dy.dtype)
    for n, oh, ow, c in np.ndindex(dy.shape):
        window = x[n, oh * sh : oh * sh + ph, ow * sw : ow * sw + pw, c]
        i, j = np.unravel_index(np.argmax(window), window.shape)  # the first maximum, row-major
        dx[n, oh * sh + i, ow * sw + j, c] += dy[n, oh, ow, c]
    return dx
