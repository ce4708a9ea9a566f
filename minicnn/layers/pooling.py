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
A model's fast mode does that (see ``model_owns_memory`` in base.py): it lends this
layer the ReLU of the layer before, kept in ``self.activation`` (otherwise the
identity). The pool then folds it into its own passes rather than run it as one
more pass over the output:

    forward:   relu(max(a, b, c, d)) = max(0, a, b, c, d)   start the running max at 0
    backward:  the ReLU passes no gradient where y <= 0     mark those windows as
                                                            already routed ("taken")

Called directly, the layer never holds a ReLU.
"""

from __future__ import annotations

from typing import Any

from minicnn import backend, parallel
from minicnn.im2col import output_size
from minicnn.layers import activations
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
        self.activation: activations.Activation = activations.Linear()  # a lent ReLU in the fast mode
        self.commutes_with_relu = True
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
        its own images; in the fast mode a lent ReLU starts the maximum at 0.
        """
        self.check_input(x)
        y = self.array("output", (x.shape[0], *self.output_shape), x.dtype)
        parallel.over_batch(lambda rows: self.pool(x[rows], y[rows]), len(x))
        # Backward finds each window's winner again by comparing x with y. Keeping x costs
        # nothing extra when the layer before keeps it anyway (as in the study's model).
        self.x, self.y = x, y
        return y

    def relu_lent(self) -> bool:
        """True while a model's fast mode has lent this pool the ReLU of the layer before."""
        return isinstance(self.activation, activations.ReLU)

    def pool(self, x: Any, y: Any) -> None:
        """y = the max of every window of x, x (n, H, W, C) -> y (n, OH, OW, C), written into y.

        With a lent ReLU, y = max(0, window): the ReLU costs no pass of its own.
        """
        xp = backend.array_module()
        offsets = self.window_offsets()
        if self.relu_lent():
            xp.maximum(x[self.window_slice(*offsets[0])], 0, out=y)
        else:
            y[...] = x[self.window_slice(*offsets[0])]
        for i, j in offsets[1:]:
            xp.maximum(y, x[self.window_slice(i, j)], out=y)

    def backward(self, dy: Any) -> Any:
        """dy (N, OH, OW, C) -> dx (N, H, W, C): each dy goes to its window's first winner.

        The same numbers as :func:`minicnn.plain.pooling.max_pool_backward` (bit for bit; within rounding where
        overlapping windows share a winner, whose gradients are then added in another order), computed
        with these tricks: the winners found again offset by offset (x == y), a ``taken`` mask for the
        first-winner rule, each thread its own images, kept buffers in the fast mode.
        """
        dx = self.array("input_gradient", self.x.shape, dy.dtype)
        taken = self.array("taken", dy.shape, bool)  # windows whose winner was already found
        winner = self.array("winner", dy.shape, bool)
        parallel.over_batch(
            lambda rows: self.route_gradient(dy[rows], self.x[rows], self.y[rows], dx[rows], taken[rows], winner[rows]),
            len(dy),
        )
        return dx

    def route_gradient(self, dy: Any, x: Any, y: Any, dx: Any, taken: Any, winner: Any) -> None:
        """dx = dy at each window's first winner (x == y), zero elsewhere; ``taken`` and ``winner`` are scratch."""
        xp = backend.array_module()
        out_h, out_w, _ = self.output_shape
        (ph, pw), tiling = self.pool_size, self.strides == self.pool_size
        if tiling:
            # Windows side by side: the offsets' slices below write every covered element once,
            # so only an odd last row or column, which no window covers, needs its zeros.
            dx[:, out_h * ph :] = 0
            dx[:, :, out_w * pw :] = 0
        else:
            dx[...] = 0  # overlapping windows add into dx; gaps between windows stay zero
        if self.relu_lent():
            # y = relu(max): where y <= 0 the ReLU passes no gradient, so no element of that
            # window may receive one; marking the window as already taken does exactly that.
            xp.less_equal(y, 0, out=taken)
        else:
            taken[...] = False
        for i, j in self.window_offsets():
            window = self.window_slice(i, j)
            xp.equal(x[window], y, out=winner)
            xp.greater(winner, taken, out=winner)  # winner and not taken: on a tie only the first offset wins
            taken |= winner
            if tiling:
                xp.multiply(dy, winner, out=dx[window])  # dy at this offset's winners, 0 elsewhere
            else:
                dx[window] += dy * winner  # overlapping windows may share an element: add

    def get_config(self) -> dict[str, Any]:
        """The constructor arguments: pool_size, strides, name (and input_shape when given)."""
        config = super().get_config()
        config.update(pool_size=list(self.pool_size), strides=list(self.strides))
        return config
