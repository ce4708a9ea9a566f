"""Plain nested-loop versions of the layers: the textbook formulas, slow and obviously right.

The fast, vectorised layers in minicnn must give the same numbers.
"""

from __future__ import annotations

import math

import numpy as np


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow's 'same' rule, written out: output = ceil(size / stride), extra pixel after."""
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def conv2d_reference(x, kernel, bias, strides=(1, 1), padding="valid"):
    """y[n, oh, ow, f] = bias[f] + sum_{i,j,c} x_pad[n, oh*sh + i, ow*sw + j, c] * kernel[i, j, c, f]."""
    n, h, w, c = x.shape
    kh, kw, _, filters = kernel.shape
    sh, sw = strides
    if padding == "same":
        x = np.pad(x, ((0, 0), same_padding(h, kh, sh), same_padding(w, kw, sw), (0, 0)))
    out_h = (x.shape[1] - kh) // sh + 1
    out_w = (x.shape[2] - kw) // sw + 1
    y = np.zeros((n, out_h, out_w, filters))
    for b in range(n):
        for oh in range(out_h):
            for ow in range(out_w):
                for f in range(filters):
                    total = bias[f]
                    for i in range(kh):
                        for j in range(kw):
                            for ch in range(c):
                                total += x[b, oh * sh + i, ow * sw + j, ch] * kernel[i, j, ch, f]
                    y[b, oh, ow, f] = total
    return y


def maxpool_reference(x, pool_size=(2, 2), strides=(2, 2)):
    """y[n, oh, ow, c] = max over the window at (oh*sh, ow*sw); windows that do not fit are dropped."""
    n, h, w, c = x.shape
    ph, pw = pool_size
    sh, sw = strides
    out_h = (h - ph) // sh + 1
    out_w = (w - pw) // sw + 1
    y = np.zeros((n, out_h, out_w, c))
    for b in range(n):
        for oh in range(out_h):
            for ow in range(out_w):
                for ch in range(c):
                    y[b, oh, ow, ch] = max(x[b, oh * sh + i, ow * sw + j, ch] for i in range(ph) for j in range(pw))
    return y


def im2col_reference(x, kernel_size, strides):
    """cols[n, oh, ow, i, j, c] = x[n, oh*sh + i, ow*sw + j, c], one output pixel at a time."""
    n, h, w, c = x.shape
    kh, kw = kernel_size
    sh, sw = strides
    out_h, out_w = (h - kh) // sh + 1, (w - kw) // sw + 1
    cols = np.zeros((n, out_h, out_w, kh, kw, c), dtype=x.dtype)
    for b in range(n):
        for oh in range(out_h):
            for ow in range(out_w):
                cols[b, oh, ow] = x[b, oh * sh : oh * sh + kh, ow * sw : ow * sw + kw, :]
    return cols


def col2im_reference(cols, x_shape, strides):
    """dx[n, oh*sh + i, ow*sw + j, c] += cols[n, oh, ow, i, j, c], one window element at a time."""
    n, out_h, out_w, kh, kw, c = cols.shape
    sh, sw = strides
    dx = np.zeros(x_shape, dtype=cols.dtype)
    for b in range(n):
        for oh in range(out_h):
            for ow in range(out_w):
                dx[b, oh * sh : oh * sh + kh, ow * sw : ow * sw + kw, :] += cols[b, oh, ow]
    return dx
