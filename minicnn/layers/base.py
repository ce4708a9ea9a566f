"""Layer: the contract every layer follows, and who owns memory.

A layer is a function y = f(x; params) that can also run backwards:

* ``build(input_shape, rng)`` creates the parameters once the input shape is known
  and returns the output shape (shapes here exclude the batch axis);
* ``forward(x, training)`` computes y and keeps what ``backward`` will need;
* ``backward(dy)`` receives dL/dy, fills ``self.grads`` with dL/dparam (same keys
  as ``self.params``) and returns dL/dx.

Parameters are plain arrays in the dict ``self.params``; optimisers update them in
place, so ``layer.params["kernel"][...] = w`` changes the layer too.

Who owns memory
---------------
A layer called directly behaves like a plain function: ``forward`` returns a fresh
array, ``backward`` returns a fresh dL/dx, and neither ever writes into its arguments.
(Flatten returns a reshaped *view* of its argument: no copy, and nothing is written.)

A model's training loop is different: it owns every array that flows between its
layers, and nobody else holds on to them. There the layers may save time and memory:

* kept buffers: a layer writes its output and dL/dx into arrays it keeps from step to
  step (``Layer.array``), instead of allocating hundreds of MB afresh each step;
* in-place activation gradients: a fused ReLU turns dL/dy into dL/dz inside ``dy``;
* no dL/dx for the first layer: nobody consumes the gradient of the images;
* one im2col workspace for all Conv2D layers: the model's ``workspace`` dict, kept from
  step to step (a layer called directly allocates its own, each call);
* the ReLU folded into the max pool: max pooling commutes with ReLU, max(relu(a),
  relu(b)) = relu(max(a, b)), so when a Conv2D or Dense with ``activation="relu"`` feeds
  a MaxPool2D, the pool applies that ReLU inside its own max (max(0, a, b, c, d)) and the
  layer before skips it: the ReLU then costs no pass of its own, forward or backward (on
  its own, the study's first ReLU ran over 363 MB per batch). Two flags say so while it
  lasts, ``conv.relu_applied_by == "max_pool2d"`` and ``pool.applies_relu``; the conv keeps
  its ReLU object all along. :func:`relu_folds` finds the pairs, ``repr`` shows the flags
  and ``model.summary()`` lists the pairs.

Only :func:`model_owns_memory` switches these on (it is the one place that sets the flags),
only ``Sequential`` calls it (in fit, evaluate, predict and train_on_batch), and it always
switches them off again, also when training stops with an exception or Ctrl-C. Both modes
compute the same numbers, bit for bit; the fast mode only decides where they are written.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np

from minicnn import backend, checks

Shape = tuple[int, ...]
"""The shape of one sample, without the batch axis: (H, W, C) for images, (features,) for vectors."""


def snake_case(class_name: str) -> str:
    """'MaxPool2D' -> 'max_pool2d', the default name of a layer of that class.

    Parameters
    ----------
    class_name : str
        A class name in CamelCase.

    Returns
    -------
    str
        The name in snake_case.
    """
    return re.sub(r"(?<=[a-z])(?=[A-Z])", "_", class_name).lower()


def as_shape(shape: int | Sequence[int] | None) -> Shape | None:
    """A shape without the batch axis: 3 -> (3,) (as Keras allows for 1-D inputs); (8, 8, 1) stays.

    Parameters
    ----------
    shape : int or sequence of int or None
        Positive sizes; None passes through.

    Returns
    -------
    tuple of int or None
        The shape as a tuple of Python ints.

    Raises
    ------
    ValueError
        A size that is not a positive int, or an empty shape.
    """
    if shape is None:
        return None
    if not (checks.is_whole_number(shape) or isinstance(shape, (tuple, list))):
        raise ValueError(f"input_shape must be a positive int or a tuple of them, got {checks.describe(shape)}")
    dims = (shape,) if checks.is_whole_number(shape) else tuple(shape)
    if not dims or not all(checks.is_whole_number(dim) and dim >= 1 for dim in dims):
        raise ValueError(f"input_shape must be a positive int or a tuple of them, got {shape!r}")
    return tuple(int(dim) for dim in dims)


def as_pair(value: int | tuple[int, int], what: str) -> tuple[int, int]:
    """3 -> (3, 3); (3, 5) stays; anything else is an error naming ``what`` (kernel, pool and stride sizes).

    Parameters
    ----------
    value : int or tuple of two ints
        A size or a pair of sizes, each a positive int.
    what : str
        Names the argument in the error message, e.g. "Conv2D kernel_size".

    Returns
    -------
    tuple of two ints
        The pair.

    Raises
    ------
    ValueError
        ``value`` is neither a positive int nor a pair of them.
    """
    pair = (value, value) if checks.is_whole_number(value) else value
    if (
        not isinstance(pair, (tuple, list))
        or len(pair) != 2
        or not all(checks.is_whole_number(v) and v >= 1 for v in pair)
    ):
        raise ValueError(f"{what} must be a positive int or a pair of them, got {checks.describe(value)}")
    return (int(pair[0]), int(pair[1]))


def reuse_or_allocate(store: dict[Any, Any], key: Any, shape: Shape, dtype: Any) -> Any:
    """``store[key]``, allocated once and grown only when needed, viewed as ``shape``.

    The kept array is replaced when a batch with more rows, other trailing axes, another
    dtype or another backend arrives; a smaller batch (the last one of an epoch) gets a
    view of its first rows.

    Parameters
    ----------
    store : dict
        Where the kept arrays live, e.g. a layer's buffers.
    key : hashable
        The array's name in ``store``.
    shape : tuple of int
        The shape wanted, batch axis first.
    dtype : dtype or str
        The dtype wanted.

    Returns
    -------
    ndarray
        An uninitialised array of ``shape``: the kept one, or a view of its first rows.
    """
    xp = backend.array_module()
    kept = store.get(key)
    if (
        kept is None
        or type(kept) is not xp.ndarray
        or kept.dtype != dtype
        or kept.shape[1:] != tuple(shape[1:])
        or kept.shape[0] < shape[0]
    ):
        kept = xp.empty(shape, dtype=dtype)
        store[key] = kept
    return kept[: shape[0]]


class Layer:
    """Base class: holds params/grads, the shapes and the name; subclasses do the math.

    Parameters
    ----------
    name : str, optional
        Unique within a model; a model names an unnamed layer after its class
        ("conv2d", "conv2d_1", ...).
    input_shape : int or tuple of int, optional
        The shape of one sample, without the batch axis; only for a model's first layer.

    Attributes
    ----------
    params : dict of str to ndarray
        The parameters, e.g. ``{"kernel": ..., "bias": ...}``; optimisers update them in place.
    grads : dict of str to ndarray
        dL/dparam under the same keys, filled by :meth:`backward`.
    input_shape, output_shape : tuple of int
        The shapes of one sample, set by :meth:`build`.
    dtype : str
        The float type of the parameters and of the inputs the layer accepts.
    built : bool
        Whether :meth:`build` has run.
    reuse_memory, compute_input_gradient : bool
        The switches of the fast mode (kept buffers; dL/dx wanted); only
        :func:`model_owns_memory` changes them.
    shared_workspace : dict or None
        The model's scratch arrays that its layers share (the im2col buffer), in the fast
        mode only; None when the layer is called directly.
    commutes_with_relu : bool
        True for layers whose output is unchanged when a ReLU moves from before them to
        after them (max pooling): :func:`relu_folds` may fold the ReLU into them.
    non_trainable_params : tuple of str
        The keys of ``params`` that no gradient trains (a class attribute; empty here,
        ("moving_mean", "moving_variance") in BatchNormalization): ``backward`` fills no
        ``grads`` for them, the optimiser leaves them alone, ``summary()`` counts them as
        non-trainable and the gradient checks skip them.
    """

    non_trainable_params: tuple[str, ...] = ()

    def __init__(self, name: str | None = None, input_shape: Shape | int | None = None) -> None:
        self.name = checks.check_optional_str(type(self).__name__, "name", name)
        self.input_shape = as_shape(input_shape)
        self.output_shape: Shape | None = None
        self.params: dict[str, Any] = {}
        self.grads: dict[str, Any] = {}
        self.dtype: str | None = None
        self.built = False
        # The fast mode (see the module docstring); only model_owns_memory changes these three.
        self.reuse_memory = False
        self.compute_input_gradient = True
        self.shared_workspace: dict[str, Any] | None = None
        # True in layers whose output is unchanged when a ReLU moves from before them to after
        # them (max pooling); relu_folds looks for it.
        self.commutes_with_relu = False
        self._buffers: dict[str, Any] = {}

    # ---- construction -------------------------------------------------------------
    def build(self, input_shape: Shape, rng: np.random.Generator | None = None) -> Shape:
        """Create the parameters for inputs of ``input_shape``; return the output shape.

        Parameters
        ----------
        input_shape : tuple of int
            The shape of one sample, without the batch axis.
        rng : np.random.Generator, optional
            Where the initial weights come from (a model passes one seeded per layer).

        Returns
        -------
        tuple of int
            The shape of one output sample.
        """
        self.input_shape = as_shape(input_shape)
        self.dtype = backend.default_dtype()
        self.output_shape = self.compute_output_shape(self.input_shape)
        self.built = True
        return self.output_shape

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        """Output shape (no batch axis) for a given input shape; layers that change shape override it."""
        return input_shape

    def parameter_shapes(self, input_shape: Shape) -> dict[str, Shape]:
        """The shape of every parameter :meth:`build` would create for ``input_shape``, allocating nothing.

        ``load_model`` compares these with the arrays stored in a file before any layer is built.
        """
        return {}

    def count_params(self) -> int:
        """Number of scalars in this layer's parameters."""
        return sum(int(np.prod(value.shape)) for value in self.params.values())

    def count_trainable_params(self) -> int:
        """Number of scalars in the parameters a gradient trains: all but ``non_trainable_params``."""
        return sum(
            int(np.prod(value.shape)) for key, value in self.params.items() if key not in self.non_trainable_params
        )

    def get_config(self) -> dict[str, Any]:
        """The constructor arguments that rebuild this layer (saved as JSON with the model)."""
        config: dict[str, Any] = {"name": self.name}
        if self.input_shape is not None:
            config["input_shape"] = list(self.input_shape)
        return config

    # ---- state that is not a parameter (e.g. Dropout's random-number counter) ------
    def get_state(self) -> dict[str, int]:
        """Non-trainable state a checkpoint must keep so that training resumes exactly."""
        return {}

    def set_state(self, state: dict[str, int]) -> None:
        """Restore what :meth:`get_state` returned."""

    # ---- arrays this layer writes its results into ----------------------------------
    def array(self, name: str, shape: Shape, dtype: Any) -> Any:
        """An uninitialised array for one of this layer's results (its output, dL/dx, a scratch array).

        Called directly, the layer gets a fresh array each time. When a model owns the memory
        (``self.reuse_memory``), it gets the same kept buffer ``name`` back step after step.
        Why: the study's first layers produce arrays of hundreds of MB per batch, and a fresh
        array costs a page fault per page the first time it is written, every step, which
        costs as much as the arithmetic.
        """
        if self.reuse_memory:
            return reuse_or_allocate(self._buffers, name, shape, dtype)
        return backend.array_module().empty(shape, dtype=dtype)

    # ---- memory report ------------------------------------------------------------
    def workspace_bytes(self, batch_size: int) -> int:
        """Bytes of temporary buffers this layer needs for one batch (beyond its input and output)."""
        return 0

    # ---- checks --------------------------------------------------------------------
    def describe(self) -> str:
        """'conv2d (Conv2D)': how errors and the summary name this layer."""
        return f"{self.name or snake_case(type(self).__name__)} ({type(self).__name__})"

    def check_input(self, x: Any) -> None:
        """Raise a clear error when ``x`` does not have the shape and dtype this layer was built for."""
        if not self.built:
            raise RuntimeError(f"layer {self.describe()} is not built; call build(input_shape) first")
        if tuple(x.shape[1:]) != self.input_shape:
            raise ValueError(
                f"layer {self.describe()}: expected input of shape (None, "
                f"{', '.join(map(str, self.input_shape))}), got {tuple(x.shape)}"
            )
        if str(x.dtype) != self.dtype:
            raise TypeError(
                f"layer {self.describe()}: expected input dtype {self.dtype}, got {x.dtype} "
                "(cast inputs to the model's dtype; mixing types would silently change precision)"
            )

    # ---- the math (subclasses) ------------------------------------------------------
    def forward(self, x: Any, training: bool = False) -> Any:
        """Compute the layer's output y for a batch x, keeping what :meth:`backward` will need.

        Parameters
        ----------
        x : ndarray of shape (N, *input_shape)
            A batch on the active backend, in the layer's dtype; never written into.
        training : bool
            True inside ``fit`` (Dropout then drops); False for evaluation and prediction.

        Returns
        -------
        ndarray of shape (N, *output_shape)
            y; a fresh array, unless the model owns the memory.
        """
        raise NotImplementedError

    def backward(self, dy: Any) -> Any:
        """Given dL/dy, fill ``self.grads`` with dL/dparam and return dL/dx.

        Parameters
        ----------
        dy : ndarray of shape (N, *output_shape)
            dL/dy for the last forward's output; never written into, unless the model owns it.

        Returns
        -------
        ndarray of shape (N, *input_shape) or None
            dL/dx; None when the model needs none (its first layer in the fast mode).
        """
        raise NotImplementedError

    def fast_mode_notes(self) -> list[str]:
        """What the fast mode changes in this layer right now, e.g. ["applies the ReLU of the layer before"].

        Empty outside the fast mode; ``repr`` shows it.
        """
        return []

    def __repr__(self) -> str:
        return f"<{', '.join([self.describe(), *self.fast_mode_notes()])}>"


def relu_folds(layers: Sequence[Layer]) -> list[tuple[Layer, Layer]]:
    """The (layer, pool) pairs whose ReLU the fast mode folds into the pool.

    A pair is a layer with ``activation="relu"`` (Conv2D or Dense) followed directly by a layer
    that ``commutes_with_relu`` (MaxPool2D). :func:`model_owns_memory` folds exactly these, and
    ``Sequential.summary()`` lists them.

    Parameters
    ----------
    layers : sequence of Layer
        A model's layers, first to last.

    Returns
    -------
    list of (Layer, Layer)
        (the layer whose ReLU moves, the pool that applies it), first to last.
    """
    return [
        (layer, pool)
        for layer, pool in zip(layers[:-1], layers[1:], strict=True)
        if pool.commutes_with_relu and getattr(layer, "activation_name", None) == "relu"
    ]


def set_relu_fold(layer: Layer, pool: Layer, folded: bool) -> None:
    """Fold ``layer``'s ReLU into ``pool`` (``folded=True``) or give it back: both flags, set together.

    ``layer.relu_applied_by`` names the pool that applies the ReLU (None: the layer applies it
    itself); ``pool.applies_relu`` says that the pool applies the ReLU of the layer before it.
    The layer's ReLU object never moves.
    """
    layer.relu_applied_by = pool.name if folded else None
    pool.applies_relu = folded


@contextmanager
def model_owns_memory(layers: Sequence[Layer], workspace: dict[str, Any] | None = None) -> Iterator[None]:
    """Switch ``layers`` (a model's, first to last) into the fast mode for the duration of a ``with`` block.

    Inside: kept buffers, in-place activation gradients, no dL/dx for the first layer, one
    shared im2col workspace, and each ReLU that feeds a max pool folded into it (see "Who
    owns memory" above); this is the one place that sets those switches and flags.
    Afterwards, whatever happened inside, every layer is back as it was. A block inside
    another (``fit`` runs ``evaluate`` for validation) changes nothing. The kept buffers and
    the workspace stay allocated, so the next step reuses them.

    Parameters
    ----------
    layers : sequence of Layer
        A model's layers, first to last.
    workspace : dict, optional
        Where the layers keep the scratch arrays they share: the model's own ``workspace``,
        so that it lasts from step to step. By default a new one, for this block only.
    """
    if all(layer.reuse_memory for layer in layers):  # already fast: the outer block restores
        yield
        return
    workspace = {} if workspace is None else workspace
    folds = relu_folds(layers)
    try:
        for layer in layers:
            layer.reuse_memory = True
            layer.shared_workspace = workspace
        layers[0].compute_input_gradient = False
        for layer, pool in folds:
            set_relu_fold(layer, pool, folded=True)
        yield
    finally:
        for layer, pool in folds:
            set_relu_fold(layer, pool, folded=False)
        for layer in layers:
            layer.reuse_memory = False
            layer.compute_input_gradient = True
            layer.shared_workspace = None
