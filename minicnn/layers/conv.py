"""Conv2D: a 2-D convolution computed as im2col + one matrix multiplication.

    z[n, oh, ow, f] = bias[f] + sum_{i, j, c} x_pad[n, oh*SH + i, ow*SW + j, c] * kernel[i, j, c, f],   y = a(z)

Shapes: x (N, H, W, C) -> y (N, OH, OW, F);  kernel (KH, KW, C, F);  bias (F,).

With cols = im2col(x_pad) reshaped to ``(N*OH*OW, KH*KW*C)`` and the kernel reshaped
to W ``(KH*KW*C, F)``, the whole layer is ``z = cols @ W + bias`` and ``y = a(z)``.
The backward pass is the same product differentiated:

    dL/dz      = dL/dy * a'(z)        (the activation's part)
    dL/dkernel = cols.T @ dz          dL/dbias = sum of dz over N, OH, OW
    dL/dcols   = dz @ W.T             dL/dx    = col2im(dL/dcols)   (both in col2im_matmul)

Memory: cols is ``KH*KW`` times larger than x. For the study's second layer at batch
32 that is 0.8 GB, so we process the batch in chunks whose cols fit in a fixed
workspace, and reuse that one buffer for every chunk. Called directly, a layer allocates
its workspace once per call; in a model's fast mode every Conv2D uses the model's one
workspace (``shared_workspace``, see base.py), step after step. The chunks are the same
in both modes, so are the numbers.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import numpy as np

from minicnn import backend, checks, parallel
from minicnn.im2col import col2im_matmul, im2col, output_size, padding_amounts
from minicnn.layers.base import Shape, as_pair, reuse_or_allocate
from minicnn.layers.kernel_layer import KernelLayer

# Upper bound on the im2col buffer of one layer. A multi-gigabyte temporary would dominate
# the memory of a step, and larger chunks are not faster: the products of a smaller chunk
# stay closer to the cache (the study's step took 5 % less time with 32 MiB than with 64 MiB;
# benchmarks/README.md).
WORKSPACE_BYTES = 32 * 2**20
"""The most bytes one im2col buffer may take on the CPU (32 MiB); a batch is processed in chunks that fit."""

# A GPU has no such cache to stay in, and each chunk costs it a dozen kernel launches (the
# study's second layer, 25 MB of cols per image, would take 32 chunks of one image each). So it
# gets a larger bound, and every layer of the study runs as one chunk (the largest, 0.8 GB of
# cols). On an H200 that took the study's step from 0.049 to 0.022 s (benchmarks/README.md).
GPU_WORKSPACE_BYTES = 2**30
"""The most bytes one im2col buffer may take on a GPU (1 GiB)."""


def workspace_limit() -> int:
    """WORKSPACE_BYTES on NumPy, GPU_WORKSPACE_BYTES on CuPy: the bound on one im2col buffer."""
    return WORKSPACE_BYTES if backend.backend_name() == "numpy" else GPU_WORKSPACE_BYTES


class Conv2D(KernelLayer):
    """2-D convolution over channels-last images, with an optional fused activation.

    Parameters
    ----------
    filters : int
        Number of output channels F.
    kernel_size : int or tuple of two ints
        Window size (KH, KW); an int means a square window.
    strides : int or tuple of two ints, default 1
        Step (SH, SW) between two windows.
    padding : str, one of {"valid", "same"}, default "valid"
        "valid": no padding. "same": TensorFlow's rule, output = ceil(input / stride), the odd
        padding pixel goes to the bottom/right.
    activation : str or None, one of {None, "relu", "sigmoid", "linear"}, default None
        Applied to z = conv(x) + bias, fused into this layer.
    kernel_initializer : str, default "glorot_uniform"
        A name from :mod:`minicnn.initializers`.
    bias_initializer : str, default "zeros"
        A name from :mod:`minicnn.initializers`.
    name : str, optional
        Unique within a model; by default "conv2d", "conv2d_1", ...
    input_shape : tuple of three ints (H, W, C), optional
        Only for a model's first layer.

    Raises
    ------
    ValueError
        An unknown padding, or a size that is not a positive int.
    """

    def __init__(
        self,
        filters: int,
        kernel_size: int | tuple[int, int],
        strides: int | tuple[int, int] = 1,
        padding: str = "valid",
        activation: str | None = None,
        kernel_initializer: str = "glorot_uniform",
        bias_initializer: str = "zeros",
        name: str | None = None,
        input_shape: Shape | int | None = None,
    ) -> None:
        super().__init__(activation, kernel_initializer, bias_initializer, name=name, input_shape=input_shape)
        if not isinstance(padding, str) or padding not in ("valid", "same"):
            raise ValueError(f"Conv2D: unknown padding {padding!r}; choose 'valid' or 'same'")
        self.filters = checks.check_whole_number("Conv2D", "filters", filters, 1)
        self.kernel_size = as_pair(kernel_size, "Conv2D: kernel_size")
        self.strides = as_pair(strides, "Conv2D: strides")
        self.padding = padding

    # ---- shapes ------------------------------------------------------------------
    def compute_output_shape(self, input_shape: Shape) -> Shape:
        """(H, W, C) -> (OH, OW, F) by :func:`minicnn.im2col.output_size`; an error when no window fits."""
        if len(input_shape) != 3:
            raise ValueError(f"layer {self.describe()} expects images (H, W, C) per sample, got shape {input_shape}")
        height, width, _ = input_shape
        out_h = output_size(height, self.kernel_size[0], self.strides[0], self.padding)
        out_w = output_size(width, self.kernel_size[1], self.strides[1], self.padding)
        if out_h < 1 or out_w < 1:
            raise ValueError(
                f"layer {self.describe()}: kernel {self.kernel_size} is larger than its input "
                f"{height}x{width} with padding {self.padding!r}; the output would be empty"
            )
        return (out_h, out_w, self.filters)

    def parameter_shapes(self, input_shape: Shape) -> dict[str, Shape]:
        """kernel (KH, KW, C, F) and bias (F,) for images (H, W, C)."""
        return {"kernel": (*self.kernel_size, input_shape[2], self.filters), "bias": (self.filters,)}

    def build(self, input_shape: Shape, rng: np.random.Generator | None = None) -> Shape:
        """Create kernel (KH, KW, C, F) and bias (F,) for images (H, W, C); return (OH, OW, F)."""
        output_shape = super().build(input_shape, rng)
        self.create_parameters(self.parameter_shapes(input_shape)["kernel"], rng)
        return output_shape

    def padded_shape(self) -> tuple[int, int, tuple[int, int], tuple[int, int]]:
        """(padded H, padded W, (top, bottom), (left, right)) for this layer's input."""
        height, width, _ = self.input_shape
        pad_h = padding_amounts(height, self.kernel_size[0], self.strides[0], self.padding)
        pad_w = padding_amounts(width, self.kernel_size[1], self.strides[1], self.padding)
        return height + sum(pad_h), width + sum(pad_w), pad_h, pad_w

    def cols_bytes_per_image(self) -> int:
        """Size of one image's im2col rows: OH * OW * KH * KW * C values."""
        out_h, out_w, _ = self.output_shape
        kh, kw = self.kernel_size
        return out_h * out_w * kh * kw * self.input_shape[2] * np.dtype(self.dtype).itemsize

    def chunk_size(self, batch_size: int) -> int:
        """How many images' cols fit in :func:`workspace_limit` (at least one)."""
        return max(1, min(batch_size, workspace_limit() // self.cols_bytes_per_image()))

    def workspace_bytes(self, batch_size: int) -> int:
        """Bytes of the im2col buffer for a batch: one chunk's cols (at most workspace_limit(), at least one image)."""
        return self.chunk_size(batch_size) * self.cols_bytes_per_image()

    def cols_workspace(self, images: int) -> Any:
        """A flat buffer for the cols of ``images`` images, which every chunk of one call reuses.

        Called directly: a fresh array. In a model's fast mode: the model's one workspace,
        shared by all its Conv2D layers and kept from step to step. Sharing is safe: the layers
        run one at a time, and cols is dead as soon as a chunk's products are done, so four
        layers need one workspace, not four.
        """
        out_h, out_w, _ = self.output_shape
        size = images * out_h * out_w * math.prod(self.kernel_size) * self.input_shape[2]  # images * OH*OW*KH*KW*C
        if self.shared_workspace is None:
            return backend.array_module().empty(size, dtype=self.dtype)
        return reuse_or_allocate(self.shared_workspace, "cols", (size,), self.dtype)

    def pad(self, x: Any) -> Any:
        """Zero-pad x (N, H, W, C) for "same" padding; "valid" returns x itself (no copy)."""
        xp = backend.array_module()
        _, _, pad_h, pad_w = self.padded_shape()
        if pad_h == (0, 0) and pad_w == (0, 0):
            return x
        return xp.pad(x, ((0, 0), pad_h, pad_w, (0, 0)))

    def im2col_chunks(self, x_padded: Any) -> Iterator[tuple[slice, Any]]:
        """Yield (rows, cols) for the batch, a few images at a time.

        ``rows`` is a slice of the batch axis; ``cols`` ``(n*OH*OW, KH*KW*C)`` is the im2col matrix
        of those n images, in the workspace (valid until the next chunk is asked for).
        """
        batch = x_padded.shape[0]
        chunk = self.chunk_size(batch)
        workspace = self.cols_workspace(chunk)
        out_h, out_w, _ = self.output_shape
        for start in range(0, batch, chunk):
            rows = slice(start, min(start + chunk, batch))
            images = rows.stop - rows.start
            shape = (images, out_h, out_w, *self.kernel_size, self.input_shape[2])  # the cols of these images
            buffer = workspace[: math.prod(shape)].reshape(shape)  # the last chunk may use part of it
            cols = im2col(x_padded[rows], self.kernel_size, self.strides, out=buffer)
            yield rows, cols.reshape(images * out_h * out_w, -1)

    # ---- the math ------------------------------------------------------------------
    def forward(self, x: Any, training: bool = False) -> Any:
        """x (N, H, W, C) -> y (N, OH, OW, F).

        The same numbers as :func:`minicnn.plain.conv.conv2d_forward_im2col` and then the activation's
        plain forward (bit for bit while the batch fits one workspace chunk, else within rounding; within
        rounding of :func:`minicnn.plain.conv.conv2d_forward_loops`), computed with these tricks: im2col as
        a strided view copied chunk by chunk into one shared workspace, z written straight into the
        (kept) output, the bias added by every thread on its own images, the activation applied in place.
        """
        self.check_input(x)
        xp = backend.array_module()
        out_h, out_w, filters = self.output_shape
        kernel_matrix = self.params["kernel"].reshape(-1, filters)  # W: (KH*KW*C, F)
        x_padded = self.pad(x)  # (N, Hp, Wp, C)
        z = self.array("output", (x.shape[0], out_h, out_w, filters), self.dtype)
        for rows, cols in self.im2col_chunks(x_padded):
            # z = cols @ W for these images, written straight into z: (n*OH*OW, KH*KW*C) @ (KH*KW*C, F)
            xp.matmul(cols, kernel_matrix, out=z[rows].reshape(-1, filters))
        bias = self.params["bias"]
        # The plain statement: z += bias (broadcast over N, OH, OW). Split over the batch, each thread its own images.
        parallel.over_batch(lambda rows: xp.add(z[rows], bias, out=z[rows]), len(z))
        # Backward rebuilds cols from x chunk by chunk, rather than keep all of them (KH*KW times x).
        self.x_padded = x_padded
        return self.activation_forward(z)  # y = a(z); z is this call's own array

    def backward(self, dy: Any) -> Any:
        """dy (N, OH, OW, F) = dL/dy -> dx (N, H, W, C) = dL/dx; fills grads["kernel"] and grads["bias"].

        The same numbers as the activation's plain backward and then
        :func:`minicnn.plain.conv.conv2d_backward_im2col` (see :meth:`backward_from_dz`); in the fast
        mode dL/dz is written into ``dy``.
        """
        dz = self.activation_backward(dy)  # dL/dz = dL/dy * a'(z)
        return self.backward_from_dz(dz)

    def backward_from_dz(self, dz: Any) -> Any:
        """dz (N, OH, OW, F) = dL/dz -> dx (N, H, W, C); None when the model needs no dL/dx.

        The same numbers as :func:`minicnn.plain.conv.conv2d_backward_im2col`: dL/dkernel bit for bit
        (in one chunk), dL/dbias bit for bit for F >= 2, dL/dx within rounding (col2im_matmul adds
        kernel offset by offset, the plain col2im window by window); computed with these tricks: cols
        rebuilt chunk by chunk rather than kept, dL/dcols never built, an einsum for dL/dbias, no dL/dx
        for a first layer.
        """
        xp = backend.array_module()
        filters = self.filters
        kernel_matrix = self.params["kernel"].reshape(-1, filters)  # W: (KH*KW*C, F)
        dkernel = xp.zeros_like(kernel_matrix)
        dx_padded = None
        if self.compute_input_gradient:
            dx_padded = self.array("input_gradient", self.x_padded.shape, self.dtype)
            dx_padded[...] = 0  # col2im adds into it
        for rows, cols in self.im2col_chunks(self.x_padded):
            dz_rows = dz[rows]  # (n, OH, OW, F)
            dkernel += cols.T @ dz_rows.reshape(-1, filters)  # dL/dW = cols.T @ dz
            if dx_padded is not None:
                # dL/dx = col2im(dz @ W.T), computed kernel offset by kernel offset
                col2im_matmul(dz_rows, self.params["kernel"], dx_padded[rows].shape, self.strides, out=dx_padded[rows])
        self.grads["kernel"] = dkernel.reshape(self.params["kernel"].shape)
        self.grads["bias"] = self.sum_over_pixels(dz)  # dL/dbias = sum of dz over every output pixel
        if dx_padded is None:
            return None
        return self.unpad(dx_padded)

    @staticmethod
    def sum_over_pixels(dz: Any) -> Any:
        """dz (N, OH, OW, F) -> (F,): the sum over every image and pixel, ``dz.sum(axis=(0, 1, 2))``.

        Why einsum: ``dz.sum(axis=(0, 1, 2))`` adds the N*OH*OW rows of F values one after
        another, and NumPy's reduction pays a fixed overhead per row: 2.8 million rows of 32
        values for the study's first layer, 0.094 s per step on the development machine.
        ``einsum`` does the same additions in the same order (row after row; the tests check
        the result is bit for bit equal for F >= 2) in one tight loop, 4x faster. A GPU takes
        a third way, explained below.
        """
        xp = backend.array_module()
        # The plain statement: dz.sum(axis=(0, 1, 2)). Per-backend tuning, the same sum:
        dz_matrix = dz.reshape(-1, dz.shape[-1])  # (M, F), M = N*OH*OW
        if backend.backend_name() == "numpy":
            return xp.einsum("mf->f", dz_matrix)  # the CPU: one tight loop, row after row
        # On a GPU, CuPy's sum down the columns of a tall (M, F) matrix is slow: 0.067 s for the
        # study's first layer on an H200, half of the whole training step. The same sum as a
        # product with a vector of ones is one cuBLAS matrix-vector product: 0.0001 s. (It adds
        # in another order, so its last bits can differ from the CPU's.)
        return xp.ones(dz_matrix.shape[0], dtype=dz_matrix.dtype) @ dz_matrix

    def unpad(self, dx_padded: Any) -> Any:
        """Drop the gradient that fell on padding pixels: (N, Hp, Wp, C) -> (N, H, W, C)."""
        height, width, _ = self.input_shape
        _, _, (top, _), (left, _) = self.padded_shape()
        return dx_padded[:, top : top + height, left : left + width, :]

    def get_config(self) -> dict[str, Any]:
        """The constructor arguments: filters, kernel_size, strides, padding, activation, initialisers, name."""
        config = super().get_config()
        config.update(
            filters=self.filters, kernel_size=list(self.kernel_size), strides=list(self.strides), padding=self.padding
        )
        return config
