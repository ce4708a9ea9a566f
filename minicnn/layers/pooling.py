"""MaxPool2D: keep the largest value of each window.

    y[n, oh, ow, c] = max_{i, j} x[n, oh*SH + i, ow*SW + j, c]

Shapes: x (N, H, W, C) -> y (N, OH, OW, C) with OH = floor((H - PH) / SH) + 1 (Keras's
"valid" rule: a last odd row or column that fits no window is dropped).

The gradient of a max flows only to the element that won: dL/dx at the winner is
dL/dy, zero elsewhere. When several elements tie for the max, exactly one (the
first in row-major window order) receives the gradient, as in TensorFlow, so the
gradient is never counted twice.

As in im2col, we loop over the ``PH*PW`` window *offsets* (4 for a 2x2 pool), each a
strided slice of the whole batch, never over pixels. Both passes are elementwise, so
each thread of :func:`minicnn.parallel.over_batch` pools its own part of the batch.

A ReLU before a max pool can move after it: max(relu(a), relu(b)) = relu(max(a, b)).
A model's fast mode does that (see ``model_owns_memory`` in base.py): while it lasts,
``self.applies_relu`` is True and the layer before (its ``relu_applied_by`` names this
pool) skips its ReLU. The pool folds the ReLU into its own passes rather than run it as
one more pass over the output:

    forward:   relu(max(a, b, c, d)) = max(0, a, b, c, d)   start the running max at 0
    backward:  the ReLU passes no gradient where y <= 0     close those windows before
                                                            looking for winners

Called directly, ``applies_relu`` is False: the pool is a plain max pool.
"""

from __future__ import annotations

from typing import Any

from minicnn import backend, parallel
from minicnn.im2col import output_size
from minicnn.layers.base import Layer, Shape, as_pair


class MaxPool2D(Layer):
    """Max pooling over (PH, PW) windows.

    Parameters
    ----------
    pool_size : int or tuple of two ints, default 2
        Window size (PH, PW).
    strides : int or tuple of two ints, optional
        Step (SH, SW) between two windows; by default ``pool_size`` (windows do not overlap).
    name : str, optional
        Unique within a model; by default "max_pool2d", "max_pool2d_1", ...
    input_shape : tuple of three ints (H, W, C), optional
        Only for a model's first layer.

    Attributes
    ----------
    applies_relu : bool
        True while a model's fast mode folds the ReLU of the layer before into this pool
        (set by :func:`~minicnn.layers.base.model_owns_memory`); then y = relu(max(window)).
    """

    def __init__(
        self,
        pool_size: int | tuple[int, int] = 2,
        strides: int | tuple[int, int] | None = None,
        name: str | None = None,
        input_shape: Shape | int | None = None,
    ) -> None:
        super().__init__(name=name, input_shape=input_shape)
        self.pool_size = as_pair(pool_size, "MaxPool2D: pool_size")
        self.commutes_with_relu = True  # a ReLU before this layer may be folded into it
        self.applies_relu = False  # True while the fast mode folds the ReLU of the layer before into this pool
        self.strides = as_pair(strides if strides is not None else pool_size, "MaxPool2D: strides")

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        """(H, W, C) -> (OH, OW, C) by the "valid" rule; an error when no window fits."""
        if len(input_shape) != 3:
            raise ValueError(f"layer {self.describe()} expects images (H, W, C) per sample, got shape {input_shape}")
        height, width, channels = input_shape
        out_h = output_size(height, self.pool_size[0], self.strides[0], "valid")
        out_w = output_size(width, self.pool_size[1], self.strides[1], "valid")
        if out_h < 1 or out_w < 1:
            raise ValueError(
                f"layer {self.describe()}: pool {self.pool_size} is larger than its input {height}x{width}; "
                "the output would be empty"
            )
        return (out_h, out_w, channels)

    def window_offsets(self) -> list[tuple[int, int]]:
        """Every (i, j) inside a pooling window, in row-major order (that order breaks ties)."""
        return [(i, j) for i in range(self.pool_size[0]) for j in range(self.pool_size[1])]

    def window_slice(self, i: int, j: int) -> tuple[slice, slice, slice, slice]:
        """Index of the element at offset (i, j) of every window: x[window_slice(i, j)] is (N, OH, OW, C)."""
        out_h, out_w, _ = self.output_shape
        sh, sw = self.strides
        return (
            slice(None),
            slice(i, i + sh * (out_h - 1) + 1, sh),
            slice(j, j + sw * (out_w - 1) + 1, sw),
            slice(None),
        )

    def forward(self, x: Any, training: bool = False) -> Any:
        """x (N, H, W, C) -> y (N, OH, OW, C).

        The same numbers as :func:`minicnn.plain.pooling.max_pool_forward` (bit for bit), computed with these tricks:
        a running maximum over the PH*PW window offsets, each a strided slice of the batch, each thread
        its own images; with ``applies_relu`` the maximum starts at 0 (then the same numbers as the plain
        ReLU forward and then the plain max pool forward).
        """
        self.check_input(x)
        y = self.array("output", (x.shape[0], *self.output_shape), x.dtype)
        # The plain statement: self.pool(x, y). Split over the batch, each thread pools its own images.
        parallel.over_batch(lambda rows: self.pool(x[rows], y[rows]), len(x))
        # Backward finds each window's winner again by comparing x with y. Keeping x costs
        # nothing extra when the layer before keeps it anyway (as in the study's model).
        self.x, self.y = x, y
        return y

    def pool(self, x: Any, y: Any) -> None:
        """y = the max of every window of x, x (n, H, W, C) -> y (n, OH, OW, C), written into y.

        With ``applies_relu``, y = max(0, window) = relu(max(window)): the ReLU costs no pass of its own.
        """
        xp = backend.array_module()
        offsets = self.window_offsets()
        if self.applies_relu:
            xp.maximum(x[self.window_slice(*offsets[0])], 0, out=y)
        else:
            y[...] = x[self.window_slice(*offsets[0])]
        for i, j in offsets[1:]:
            xp.maximum(y, x[self.window_slice(i, j)], out=y)

    def backward(self, dy: Any) -> Any:
        """dy (N, OH, OW, C) -> dx (N, H, W, C): each dy goes to its window's first winner.

        The same numbers as :func:`minicnn.plain.pooling.max_pool_backward` (bit for bit; within rounding where
        overlapping windows share a winner, whose gradients are then added in another order), computed
        with these tricks: the winners found again offset by offset (x == y), a ``waiting`` mask for the
        first-winner rule, each thread its own images, kept buffers in the fast mode. With
        ``applies_relu``: the same numbers as the plain max pool backward and then the plain ReLU backward.
        """
        dx = self.array("input_gradient", self.x.shape, dy.dtype)
        waiting = self.array("waiting", dy.shape, bool)  # scratch: windows whose winner is not found yet
        winner = self.array("winner", dy.shape, bool)  # scratch: this offset's winners
        # The plain statement: self.route_gradient(dy, self.x, self.y, dx, waiting, winner).
        # Split over the batch, each thread routes the gradient of its own images.
        parallel.over_batch(
            lambda rows: self.route_gradient(
                dy[rows], self.x[rows], self.y[rows], dx[rows], waiting[rows], winner[rows]
            ),
            len(dy),
        )
        return dx

    def route_gradient(self, dy: Any, x: Any, y: Any, dx: Any, waiting: Any, winner: Any) -> None:
        """dx = dy at each window's first winner (x == y), zero elsewhere; ``waiting`` and ``winner`` are scratch.

        Three steps, one idea each:

        1. zero-fill what the offsets will not write (:meth:`clear_input_gradient`);
        2. open every window, except, with ``applies_relu``, those whose output is <= 0: there
           relu'(max) = 0, so no element of the window may receive a gradient;
        3. offset by offset in row-major order, the elements equal to their window's max that
           are still waiting win: on a tie only the first offset wins (as TensorFlow and the
           plain twin's ``argmax``), and its window then stops waiting.
        """
        xp = backend.array_module()
        tiling = self.strides == self.pool_size
        self.clear_input_gradient(dx, tiling)  # 1. zero-filling
        if self.applies_relu:  # 2. the ReLU mask: relu'(y) = [y > 0]
            xp.greater(y, 0, out=waiting)
        else:
            waiting[...] = True
        for i, j in self.window_offsets():  # 3. the first winner takes the gradient
            window = self.window_slice(i, j)
            xp.equal(x[window], y, out=winner)  # the elements at offset (i, j) that equal their window's max
            winner &= waiting  # ... of windows still waiting: a later tie does not win again
            waiting ^= winner  # those windows are served (winner lies inside waiting, so ^ removes it)
            if tiling:
                xp.multiply(dy, winner, out=dx[window])  # dy at this offset's winners, 0 elsewhere
            else:
                dx[window] += dy * winner  # overlapping windows may share an element: add

    def clear_input_gradient(self, dx: Any, tiling: bool) -> None:
        """Zero the elements of dx (n, H, W, C) that the winners' writes in :meth:`route_gradient` leave alone.

        Windows side by side (``tiling``): every covered element is written exactly once, so only
        an odd last row or column, which no window covers, needs its zeros. Overlapping or spaced
        windows add into dx, so all of it starts at zero.
        """
        out_h, out_w, _ = self.output_shape
        ph, pw = self.pool_size
        if tiling:
            dx[:, out_h * ph :] = 0
            dx[:, :, out_w * pw :] = 0
        else:
            dx[...] = 0

    def fast_mode_notes(self) -> list[str]:
        """["applies the ReLU of the layer before"] while the fast mode folds that ReLU into this pool."""
        return ["applies the ReLU of the layer before"] if self.applies_relu else []

    def get_config(self) -> dict[str, Any]:
        """The constructor arguments: pool_size, strides, name (and input_shape when given)."""
        config = super().get_config()
        config.update(pool_size=list(self.pool_size), strides=list(self.strides))
        return config
