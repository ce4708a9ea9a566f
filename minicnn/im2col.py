"""im2col and col2im: turning a convolution into one matrix multiplication.

A convolution slides a (KH, KW) window over the image. ``im2col`` copies every
window into one row of a matrix, so that the whole convolution becomes a single
GEMM with the kernel reshaped to ``(KH*KW*C, F)``:

    x (N, H, W, C)                         cols (N, OH, OW, KH, KW, C)
    +----+----+----+----+                  one row per output pixel:
    | a  | b  | c  | d  |    KH=KW=2       (n, 0, 0): a b e f
    +----+----+----+----+    stride 1      (n, 0, 1): b c f g
    | e  | f  | g  | h  |   ---------->    (n, 0, 2): c d g h
    +----+----+----+----+                  (n, 1, 0): e f i j ...
    | i  | j  | k  | l  |
    +----+----+----+----+

``im2col`` never loops over pixels. It first builds a *view* of x with the shape
of cols: no data is copied, the view just walks x's memory with repeating steps
(strides). Moving one output pixel to the right moves SW pixels in x; moving one
step inside the window moves one pixel. Then a single assignment copies the view
into the cols buffer. Each contiguous run it copies is ``KW*C`` values long (a window
row); an earlier version that copied one kernel offset at a time, ``KH*KW`` strided
slices with runs of only C values, was ~5x slower for 32 or more channels. The
plain twin, :func:`minicnn.plain.conv.im2col`, copies one window per output
pixel in a Python loop: the definition, slow and obviously right, that the
tests compare this function with.

``col2im`` is the adjoint: it adds each column block back to the pixels it came
from. Overlapping windows touch the same pixel several times, so it must *add*
(``+=``), never assign, and a view cannot do that; it loops over the ``KH*KW`` kernel
*offsets*: for offset (i, j), the pixels every window saw there form one strided
slice of the image, ``dx[:, i::stride, j::stride, :]``, updated in one vectorised
addition. A 3x3 kernel means only 9 additions. Backward needs col2im only of a
product, dL/dcols = dz @ kernel_matrix.T, so ``col2im_matmul`` does both at once,
offset by offset. The plain col2im, :func:`minicnn.plain.conv.col2im`, adds one
window per output pixel back in a Python loop.

Both functions work on already-padded images; padding is the layer's business.
"""

from __future__ import annotations

import math
from typing import Any

from minicnn import backend, parallel


def output_size(input_size: int, kernel_size: int, stride: int, padding: str) -> int:
    """Output length along one spatial axis, by the Keras / TensorFlow rule.

    - "valid": floor((input - kernel) / stride) + 1 (windows stay inside the image);
    - "same": ceil(input / stride) (padding keeps the size at stride 1).

    Parameters
    ----------
    input_size : int
        Length of the input along the axis (H or W).
    kernel_size : int
        Length of the window along the axis.
    stride : int
        Step between two windows.
    padding : str, one of {"valid", "same"}
        The padding rule.

    Returns
    -------
    int
        The output length; 0 or less when no "valid" window fits.
    """
    if padding == "valid":
        return (input_size - kernel_size) // stride + 1
    if padding == "same":
        return math.ceil(input_size / stride)
    raise ValueError(f"unknown padding {padding!r}; choose 'valid' or 'same'")


def padding_amounts(input_size: int, kernel_size: int, stride: int, padding: str) -> tuple[int, int]:
    """(before, after) zero padding along one axis; TensorFlow puts the odd pixel after (bottom/right).

    Parameters
    ----------
    input_size, kernel_size, stride : int
        As for :func:`output_size`.
    padding : str, one of {"valid", "same"}
        "valid" needs no padding: (0, 0).

    Returns
    -------
    tuple of two ints
        Zeros to add before (top/left) and after (bottom/right) the input.
    """
    if padding == "valid":
        return 0, 0
    out = output_size(input_size, kernel_size, stride, padding)
    total = max((out - 1) * stride + kernel_size - input_size, 0)
    return total // 2, total - total // 2


def im2col(x: Any, kernel_size: tuple[int, int], stride: tuple[int, int], out: Any = None) -> Any:
    """Copy every (KH, KW) window of ``x`` into one row.

    The same numbers as :func:`minicnn.plain.conv.im2col` (bit for bit: a copy), computed with these tricks: a
    strided view of x copied once, each thread its own images, into a buffer the caller may keep.

    Parameters
    ----------
    x : ndarray of shape (N, H, W, C)
        The images, already padded.
    kernel_size : tuple of two ints
        The window size (KH, KW).
    stride : tuple of two ints
        The step (SH, SW) between two windows.
    out : ndarray of shape (N, OH, OW, KH, KW, C), optional
        Where to write the result (lets callers reuse a buffer); a new array when None.

    Returns
    -------
    cols : ndarray of shape (N, OH, OW, KH, KW, C)
        ``cols[n, oh, ow, i, j, c] = x[n, oh*SH + i, ow*SW + j, c]``;
        ``cols.reshape(N*OH*OW, KH*KW*C)`` is the im2col matrix.
    """
    xp = backend.array_module()
    n, height, width, channels = x.shape
    kh, kw = kernel_size
    sh, sw = stride
    oh = (height - kh) // sh + 1
    ow = (width - kw) // sw + 1
    step_n, step_h, step_w, step_c = x.strides  # bytes to the next image / row / column / channel
    windows = xp.lib.stride_tricks.as_strided(
        x,
        shape=(n, oh, ow, kh, kw, channels),
        # next output row = SH image rows down; next output column = SW columns right;
        # next row / column inside the window = one image row / column
        strides=(step_n, step_h * sh, step_w * sw, step_h, step_w, step_c),
    )
    if out is None:
        out = xp.empty(windows.shape, dtype=x.dtype)

    def copy_windows(rows: slice) -> None:
        out[rows] = windows[rows]  # the only copy: one row per window

    # The plain statement: out[...] = windows. Split over the batch, each thread copies its own images.
    parallel.over_batch(copy_windows, n)
    return out


def col2im_matmul(dz: Any, kernel: Any, x_shape: tuple[int, ...], stride: tuple[int, int], out: Any = None) -> Any:
    """dL/dx of a convolution: col2im(dz @ kernel_matrix.T), one kernel offset at a time.

    The same numbers as :func:`minicnn.plain.conv.col2im` of ``dz @ kernel_matrix.T`` within rounding (the F
    products per covering window reach each pixel in another order), computed with the trick below.

    Backward through ``y = cols @ kernel_matrix`` gives dL/dcols = dz @ kernel_matrix.T,
    and col2im adds every window row back onto the pixels it came from. Written per
    kernel offset (i, j), the column block of dL/dcols at that offset is simply
    ``dz @ kernel[i, j].T`` (an (M, F) @ (F, C) product), and the pixels every window
    saw at that offset are one strided slice of the image. So:

        dx[:, i::SH, j::SW, :] += (dz @ kernel[i, j].T)      for each of the KH*KW offsets

    This never builds the full ``(M, KH*KW*C)`` dL/dcols matrix: each product is small
    enough to stay in the CPU cache until it is added, which makes it ~1.5x faster.
    (It is also called a *transposed convolution*.) Overlapping windows touch the same
    pixel several times, so it must add (``+=``), never assign.

    Parameters
    ----------
    dz : ndarray of shape (N, OH, OW, F)
        The gradient dL/dz at the convolution's output.
    kernel : ndarray of shape (KH, KW, C, F)
        The convolution's kernel.
    x_shape : tuple of four ints
        (N, H, W, C), the shape of the padded input.
    stride : tuple of two ints
        The step (SH, SW) between two windows.
    out : ndarray of shape x_shape, optional
        A zero-filled array to add into; a new zero array when None.

    Returns
    -------
    dx : ndarray of shape (N, H, W, C)
        dL/dx of the padded input.
    """
    xp = backend.array_module()
    n, oh, ow, filters = dz.shape
    kh, kw, channels, _ = kernel.shape
    sh, sw = stride
    if out is None:
        out = xp.zeros(x_shape, dtype=dz.dtype)
    dz_matrix = dz.reshape(-1, filters)  # (M, F), M = N*OH*OW
    for i in range(kh):
        for j in range(kw):
            block = dz_matrix @ kernel[i, j].T  # (M, C): what the pixels at offset (i, j) receive
            out[:, i : i + sh * (oh - 1) + 1 : sh, j : j + sw * (ow - 1) + 1 : sw, :] += block.reshape(
                n, oh, ow, channels
            )
    return out
