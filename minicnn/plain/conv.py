"""Conv2D the textbook way: first by explicit loops, then by im2col, one matrix product and col2im.

    z[n, oh, ow, f] = b[f] + sum_{i, j, c} x_pad[n, oh*SH + i, ow*SW + j, c] * w[i, j, c, f]

Shapes: x (N, H, W, C), w (KH, KW, C, F), b (F,) -> z (N, OH, OW, F). No activation here:
the fast Conv2D's ``activation="relu"`` is :func:`minicnn.plain.activations.relu_forward`
applied to z.

"same" padding follows TensorFlow (and the fast Conv2D): the output is ceil(H / SH) pixels
and, when the padding needed is odd, the extra row or column of zeros goes after (bottom,
right). "valid" pads nothing.
"""

from __future__ import annotations

import math

import numpy as np


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """Zeros before and after one axis for "same": total = max((ceil(size/stride) - 1)*stride + kernel - size, 0).

    Parameters
    ----------
    size, kernel, stride : int
        The input length H (or W), the window length KH and the step SH along the axis.

    Returns
    -------
    tuple of two ints
        (before, after); the odd pixel goes after, as in TensorFlow.
    """
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def pad(x, kernel_size, strides, padding):
    """x_pad = x with rows and columns of zeros around it for "same" (:func:`same_padding` on each axis).

    Parameters
    ----------
    x : ndarray (N, H, W, C)
    kernel_size : tuple (KH, KW)
    strides : tuple (SH, SW)
    padding : {"valid", "same"}

    Returns
    -------
    x_pad : ndarray (N, H + top + bottom, W + left + right, C); x itself for "valid"
    offset : tuple (top, left), where x starts inside x_pad; (0, 0) for "valid"
    """
    if padding == "valid":
        return x, (0, 0)
    (top, bottom), (left, right) = (same_padding(x.shape[a + 1], kernel_size[a], strides[a]) for a in (0, 1))
    return np.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0))), (top, left)


def conv2d_forward_loops(x, w, b, strides=(1, 1), padding="valid"):
    """z[n, oh, ow, f] = b[f] + sum_{i,j,c} x_pad[n, oh*SH + i, ow*SW + j, c] * w[i, j, c, f], by seven loops.

    Parameters
    ----------
    x : ndarray (N, H, W, C)
    w : ndarray (KH, KW, C, F)
    b : ndarray (F,)
    strides : tuple (SH, SW)
    padding : {"valid", "same"}

    Returns
    -------
    z : ndarray (N, OH, OW, F)
    cache : tuple (x, w, b, strides, padding), what :func:`conv2d_backward_loops` needs
    """
    (kh, kw, channels, filters), (sh, sw) = w.shape, strides
    x_pad, _ = pad(x, (kh, kw), strides, padding)
    out_h, out_w = (x_pad.shape[1] - kh) // sh + 1, (x_pad.shape[2] - kw) // sw + 1
    z = np.zeros((x.shape[0], out_h, out_w, filters), dtype=np.result_type(x, w))
    for n, oh, ow, f in np.ndindex(z.shape):
        total = b[f]
        for i, j, c in np.ndindex(kh, kw, channels):
            total += x_pad[n, oh * sh + i, ow * sw + j, c] * w[i, j, c, f]
        z[n, oh, ow, f] = total
    return z, (x, w, b, strides, padding)


def conv2d_backward_loops(dz, cache):
    """The forward's loops again, each product x_pad * w sending dz back to both factors.

        dx_pad[n, oh*SH + i, ow*SW + j, c] += dz[n, oh, ow, f] * w[i, j, c, f]
        dw[i, j, c, f] += dz[n, oh, ow, f] * x_pad[n, oh*SH + i, ow*SW + j, c]
        db[f] = sum_{n, oh, ow} dz[n, oh, ow, f]

    Parameters
    ----------
    dz : ndarray (N, OH, OW, F), dL/dz
    cache : what :func:`conv2d_forward_loops` returned

    Returns
    -------
    dx : ndarray (N, H, W, C), without the rows and columns that fell on padding
    dw : ndarray (KH, KW, C, F)
    db : ndarray (F,)
    """
    x, w, b, (sh, sw), padding = cache
    (kh, kw, channels, _), (height, width) = w.shape, x.shape[1:3]
    x_pad, (top, left) = pad(x, (kh, kw), (sh, sw), padding)
    dx_pad, dw = np.zeros_like(x_pad, dtype=dz.dtype), np.zeros_like(w, dtype=dz.dtype)
    for n, oh, ow, f in np.ndindex(dz.shape):
        for i, j, c in np.ndindex(kh, kw, channels):
            dx_pad[n, oh * sh + i, ow * sw + j, c] += dz[n, oh, ow, f] * w[i, j, c, f]
            dw[i, j, c, f] += dz[n, oh, ow, f] * x_pad[n, oh * sh + i, ow * sw + j, c]
    db = dz.sum(axis=(0, 1, 2))
    return dx_pad[:, top : top + height, left : left + width], dw, db


def im2col(x, kernel_size, strides):
    """cols[n, oh, ow, i, j, c] = x[n, oh*SH + i, ow*SW + j, c]: every window copied, one output pixel at a time.

    Parameters
    ----------
    x : ndarray (N, H, W, C), already padded
    kernel_size : tuple (KH, KW)
    strides : tuple (SH, SW)

    Returns
    -------
    cols : ndarray (N, OH, OW, KH, KW, C); ``cols.reshape(N*OH*OW, KH*KW*C)`` is the im2col matrix
    """
    (kh, kw), (sh, sw) = kernel_size, strides
    out_h, out_w = (x.shape[1] - kh) // sh + 1, (x.shape[2] - kw) // sw + 1
    cols = np.zeros((x.shape[0], out_h, out_w, kh, kw, x.shape[3]), dtype=x.dtype)
    for n, oh, ow in np.ndindex(cols.shape[:3]):
        cols[n, oh, ow] = x[n, oh * sh : oh * sh + kh, ow * sw : ow * sw + kw, :]
    return cols


def col2im(cols, x_shape, strides):
    """The adjoint of :func:`im2col`: dx[n, oh*SH + i, ow*SW + j, c] += cols[n, oh, ow, i, j, c].

    Each window is added back onto the pixels it was copied from; windows overlap, so it adds
    (``+=``), never assigns.

    Parameters
    ----------
    cols : ndarray (N, OH, OW, KH, KW, C)
    x_shape : tuple (N, H, W, C), the padded input's shape
    strides : tuple (SH, SW)

    Returns
    -------
    dx : ndarray of shape x_shape
    """
    (kh, kw), (sh, sw) = cols.shape[3:5], strides
    dx = np.zeros(x_shape, dtype=cols.dtype)
    for n, oh, ow in np.ndindex(cols.shape[:3]):
        dx[n, oh * sh : oh * sh + kh, ow * sw : ow * sw + kw, :] += cols[n, oh, ow]
    return dx


def conv2d_forward_im2col(x, w, b, strides=(1, 1), padding="valid"):
    """z = cols @ W + b, with cols = im2col(x_pad) (M, KH*KW*C), M = N*OH*OW, and W = w as (KH*KW*C, F).

    Parameters
    ----------
    x : ndarray (N, H, W, C)
    w : ndarray (KH, KW, C, F)
    b : ndarray (F,)
    strides : tuple (SH, SW)
    padding : {"valid", "same"}

    Returns
    -------
    z : ndarray (N, OH, OW, F)
    cache : tuple (x, cols, w, strides, padding), what :func:`conv2d_backward_im2col` needs
    """
    x_pad, _ = pad(x, w.shape[:2], strides, padding)
    cols = im2col(x_pad, w.shape[:2], strides)  # (N, OH, OW, KH, KW, C)
    n, oh, ow = cols.shape[:3]
    z = cols.reshape(n * oh * ow, -1) @ w.reshape(-1, w.shape[3]) + b  # (M, K) @ (K, F) + (F,)
    return z.reshape(n, oh, ow, w.shape[3]), (x, cols, w, strides, padding)


def conv2d_backward_im2col(dz, cache):
    """The product z = cols @ W + b differentiated: dW = cols.T @ dz, db = sum of dz, dx = col2im(dz @ W.T).

    Parameters
    ----------
    dz : ndarray (N, OH, OW, F), dL/dz
    cache : what :func:`conv2d_forward_im2col` returned

    Returns
    -------
    dx : ndarray (N, H, W, C)
    dw : ndarray (KH, KW, C, F)
    db : ndarray (F,)
    """
    x, cols, w, strides, padding = cache
    cols_matrix, dz_matrix = cols.reshape(dz[..., 0].size, -1), dz.reshape(-1, w.shape[3])  # (M, K), (M, F)
    dw = (cols_matrix.T @ dz_matrix).reshape(w.shape)  # (K, M) @ (M, F)
    db = dz.sum(axis=(0, 1, 2))
    dcols = (dz_matrix @ w.reshape(-1, w.shape[3]).T).reshape(cols.shape)  # (M, F) @ (F, K)
    x_pad, (top, left) = pad(x, w.shape[:2], strides, padding)
    dx_pad = col2im(dcols, x_pad.shape, strides)
    return dx_pad[:, top : top + x.shape[1], left : left + x.shape[2]], dw, db
