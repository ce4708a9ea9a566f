"""AveragePooling2D and GlobalAveragePooling2D: the mean of each window, or of the whole image.

    AveragePooling2D:        y[n, oh, ow, c] = (1 / (PH*PW)) sum_{i, j} x[n, oh*SH + i, ow*SW + j, c]
    GlobalAveragePooling2D:  y[n, c] = (1 / (H*W)) sum_{h, w} x[n, h, w, c]

Shapes: x (N, H, W, C) -> y (N, OH, OW, C) with OH = floor((H - PH) / SH) + 1 (Keras's "valid"
rule: a last row or column that fits no window is dropped); the global pool gives (N, C), or
(N, 1, 1, C) with ``keepdims=True``.

Backward: a mean passes dL/dy to each of its terms, divided by their number, so every element
of a window receives dy / (PH*PW) (elements in several overlapping windows add those up, the
dropped edge receives 0), and every pixel receives dy[n, c] / (H*W) from the global pool.

As in MaxPool2D we loop over the PH*PW window *offsets*, each a strided slice of the whole batch,
never over pixels. Unlike a max, a mean does not commute with ReLU (mean(relu(a), relu(b)) is not
relu(mean(a, b))), so no ReLU is ever folded into these pools.

Plain twins: :mod:`minicnn.plain.average_pooling`.
"""

from __future__ import annotations

from typing import Any

from minicnn import backend, checks
from minicnn.im2col import output_size
from minicnn.layers.base import Layer, Shape, as_pair


def check_images(layer: Layer, input_shape: Shape) -> None:
    """An error naming ``layer`` when ``input_shape`` is not (H, W, C)."""
    if len(input_shape) != 3:
        raise ValueError(f"layer {layer.describe()} expects images (H, W, C) per sample, got shape {input_shape}")


class AveragePooling2D(Layer):
    """Average pooling over (PH, PW) windows (Keras's ``AveragePooling2D``, alias ``AvgPool2D``).

    Parameters
    ----------
    pool_size : int or tuple of two ints, default 2
        Window size (PH, PW).
    strides : int or tuple of two ints, optional
        Step (SH, SW) between two windows; by default ``pool_size`` (windows side by side).
    padding : str, default "valid"
        Only "valid" (windows stay inside the image) is implemented.
    name : str, optional
        Unique within a model; by default "average_pooling2d", "average_pooling2d_1", ...
    input_shape : tuple of three ints (H, W, C), optional
        Only for a model's first layer.

    Raises
    ------
    ValueError
        A pool size or stride that is not a positive int or pair, or a padding other than "valid".
    """

    def __init__(
        self,
        pool_size: int | tuple[int, int] = 2,
        strides: int | tuple[int, int] | None = None,
        padding: str = "valid",
        name: str | None = None,
        input_shape: Shape | int | None = None,
    ) -> None:
        super().__init__(name=name, input_shape=input_shape)
        self.pool_size = as_pair(pool_size, "AveragePooling2D: pool_size")
        self.strides = as_pair(strides if strides is not None else pool_size, "AveragePooling2D: strides")
        self.padding = checks.check_choice("AveragePooling2D", "padding", padding, ("valid",))

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        """(H, W, C) -> (OH, OW, C) by the "valid" rule; an error when no window fits."""
        check_images(self, input_shape)
        height, width, channels = input_shape
        out_h = output_size(height, self.pool_size[0], self.strides[0], "valid")
        out_w = output_size(width, self.pool_size[1], self.strides[1], "valid")
        if out_h < 1 or out_w < 1:
            raise ValueError(
                f"layer {self.describe()}: pool {self.pool_size} is larger than its input {height}x{width}; "
                "the output would be empty"
            )
        return (out_h, out_w, channels)

    def window_slices(self) -> list[tuple[slice, slice, slice, slice]]:
        """For each offset (i, j) of a window, row-major: the index of that element of every window.

        ``x[index]`` is (N, OH, OW, C): the element at offset (i, j) of each of the OH x OW windows.
        """
        out_h, out_w, _ = self.output_shape
        (ph, pw), (sh, sw) = self.pool_size, self.strides
        return [
            (slice(None), slice(i, i + sh * (out_h - 1) + 1, sh), slice(j, j + sw * (out_w - 1) + 1, sw), slice(None))
            for i in range(ph)
            for j in range(pw)
        ]

    def forward(self, x: Any, training: bool = False) -> Any:
        """x (N, H, W, C) -> y (N, OH, OW, C): the sum over the window offsets, divided by PH*PW.

        The same numbers as :func:`minicnn.plain.average_pooling.average_pool_forward` within rounding,
        computed with these tricks: one strided slice of the batch per window offset, a kept buffer in the
        fast mode.
        """
        self.check_input(x)
        y = self.array("output", (x.shape[0], *self.output_shape), x.dtype)
        first, *others = self.window_slices()
        y[...] = x[first]
        for window in others:
            y += x[window]
        y /= self.pool_size[0] * self.pool_size[1]
        self.batch_size = x.shape[0]  # backward needs only the shape of x, not x
        return y

    def backward(self, dy: Any) -> Any:
        """dy (N, OH, OW, C) -> dx (N, H, W, C): dy / (PH*PW) to every element of its window.

        The same numbers as :func:`minicnn.plain.average_pooling.average_pool_backward` within rounding,
        computed with these tricks: one strided slice per window offset; windows side by side write
        their share once (only the dropped edge is zeroed), overlapping ones add into a zeroed dx.
        """
        share = dy / (self.pool_size[0] * self.pool_size[1])
        dx = self.array("input_gradient", (self.batch_size, *self.input_shape), dy.dtype)
        out_h, out_w, _ = self.output_shape
        if self.strides == self.pool_size:  # tiling: every covered element lies in exactly one window
            dx[:, out_h * self.pool_size[0] :] = 0
            dx[:, :, out_w * self.pool_size[1] :] = 0
            for window in self.window_slices():
                dx[window] = share
        else:
            dx[...] = 0
            for window in self.window_slices():
                dx[window] += share  # an element of several windows gets each one's share
        return dx

    def get_config(self) -> dict[str, Any]:
        """The constructor arguments: pool_size, strides, padding, name (and input_shape when given)."""
        config = super().get_config()
        config.update(pool_size=list(self.pool_size), strides=list(self.strides), padding=self.padding)
        return config


class GlobalAveragePooling2D(Layer):
    """The mean of each channel over the whole image (Keras's ``GlobalAveragePooling2D``, alias ``GlobalAvgPool2D``).

    Parameters
    ----------
    keepdims : bool, default False
        Output (N, 1, 1, C) instead of (N, C).
    name : str, optional
        Unique within a model; by default "global_average_pooling2d", ...
    input_shape : tuple of three ints (H, W, C), optional
        Only for a model's first layer.
    """

    def __init__(self, keepdims: bool = False, name: str | None = None, input_shape: Shape | int | None = None) -> None:
        super().__init__(name=name, input_shape=input_shape)
        self.keepdims = checks.check_bool("GlobalAveragePooling2D", "keepdims", keepdims)

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        """(H, W, C) -> (C,), or (1, 1, C) with ``keepdims``."""
        check_images(self, input_shape)
        return (1, 1, input_shape[2]) if self.keepdims else (input_shape[2],)

    def forward(self, x: Any, training: bool = False) -> Any:
        """x (N, H, W, C) -> y (N, C) (or (N, 1, 1, C)): the mean over H and W.

        The same numbers as :func:`minicnn.plain.average_pooling.global_average_pool_forward` within
        rounding, written into a kept buffer in the fast mode.
        """
        self.check_input(x)
        y = self.array("output", (x.shape[0], x.shape[3]), x.dtype)
        backend.array_module().mean(x, axis=(1, 2), out=y)
        self.batch_size = x.shape[0]  # backward needs only the shape of x
        return y.reshape(x.shape[0], *self.output_shape)

    def backward(self, dy: Any) -> Any:
        """dy (N, C) (or (N, 1, 1, C)) -> dx (N, H, W, C) = dy / (H*W) at every pixel.

        The same numbers as :func:`minicnn.plain.average_pooling.global_average_pool_backward` (bit for
        bit), written into a kept buffer in the fast mode.
        """
        height, width, channels = self.input_shape
        dx = self.array("input_gradient", (self.batch_size, *self.input_shape), dy.dtype)
        dx[...] = dy.reshape(self.batch_size, 1, 1, channels) / (height * width)
        return dx

    def get_config(self) -> dict[str, Any]:
        """The constructor arguments: keepdims, name (and input_shape when given)."""
        config = super().get_config()
        config.update(keepdims=self.keepdims)
        return config


AvgPool2D = AveragePooling2D
"""Keras's other name for :class:`AveragePooling2D`."""

GlobalAvgPool2D = GlobalAveragePooling2D
"""Keras's other name for :class:`GlobalAveragePooling2D`."""
