"""Sequential: a stack of layers, run forward and backward.

In use (``Adam`` from :mod:`minicnn.optimizers`, ``BinaryCrossentropy`` from :mod:`minicnn.losses`):

    model = Sequential([...], seed=0)
    model.compile(optimizer=Adam(1e-4), loss=BinaryCrossentropy(), metrics=["accuracy"])
    history = model.fit(x, y, batch_size=32, epochs=60, validation_split=0.2)

As in Keras, the model is split in three files, one job each:

* this file, the model itself: its layers, ``build``, ``forward``/``backward``,
  ``summary`` and the weights;
* :mod:`minicnn.training`, the training loop it inherits: ``compile``, ``fit``,
  ``evaluate``, ``predict``, ``train_on_batch``, callbacks and resume bookkeeping
  (:class:`minicnn.training.TrainableModel` lists what the loop needs from this file);
* :mod:`minicnn.saving`, reading models and checkpoints back (``load_model``). Writing
  them is here (``save``, ``save_weights``), on the file format of :mod:`minicnn.files`,
  so that every import points one way: saving -> model -> files.

Everything is reproducible from ``seed``: the initial weights (layer k draws from
seed (seed, k)), the shuffling of epoch e, and the dropout masks.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from minicnn import backend, checks, files, summary
from minicnn.files import ModelFileError
from minicnn.layers import (
    AveragePooling2D,
    BatchNormalization,
    Conv2D,
    Dense,
    Dropout,
    Flatten,
    GlobalAveragePooling2D,
    Identity,
    Input,
    Layer,
    MaxPool2D,
    activations,
)
from minicnn.layers.base import Shape, as_shape, relu_folds, snake_case
from minicnn.training import Trainer

LAYER_CLASSES: dict[str, type[Layer]] = {
    cls.__name__: cls for cls in (Conv2D, MaxPool2D, Dense, Flatten, Dropout, Identity)
}
LAYER_CLASSES.update({cls.__name__: cls for cls in (BatchNormalization, GlobalAveragePooling2D, AveragePooling2D)})
# Every activation class (ReLU, Sigmoid, ...) is a layer too: registered from the one table
# of activations, so a new activation's model files load without a line here.
LAYER_CLASSES.update({cls.__name__: cls for cls in activations.ACTIVATIONS.values()})
# Model files written before the identity layer was renamed say "Linear".
LAYER_CLASSES["Linear"] = Identity


def layer_names(layers: list[Layer]) -> list[str]:
    """Each layer's name: its own, or one after its class ("conv2d", "conv2d_1", ...), as build gives it."""
    names = []
    used: dict[str, int] = {}
    # A name some layer already has is skipped, so that a layer added to a built model
    # (whose layers carry their names by then) gets the name it would get in one list.
    taken = {layer.name for layer in layers if layer.name is not None}
    for layer in layers:
        if layer.name is not None:
            names.append(layer.name)
            continue
        base = snake_case(type(layer).__name__)
        count = used.get(base, 0)
        name = base if count == 0 else f"{base}_{count}"
        while name in taken:
            count += 1
            name = f"{base}_{count}"
        names.append(name)
        taken.add(name)
        used[base] = count + 1
    return names


def parameter_shapes(layers: list[Layer], input_shape: Shape) -> dict[str, Shape]:
    """{"layer/param": shape} of every parameter the layers would create for ``input_shape``, allocating nothing.

    Raises
    ------
    ValueError
        A layer does not fit the shape it would receive.
    """
    shapes = {}
    shape = as_shape(input_shape)
    for layer, name in zip(layers, layer_names(layers), strict=True):
        output_shape = layer.compute_output_shape(shape)  # first: it refuses a shape that does not fit
        for key, parameter_shape in layer.parameter_shapes(shape).items():
            shapes[f"{name}/{key}"] = tuple(parameter_shape)
        shape = output_shape
    return shapes


class Sequential(Trainer):
    """A linear stack of layers.

    The model is built (every layer gets its input shape, name and parameters) as soon as
    the input shape is known: given by ``Input(shape)`` as the first entry, by
    ``input_shape=`` on the first layer, or by :meth:`build`. As in Keras, all of these work:

    >>> from minicnn.layers import Dense, Input
    >>> Sequential([Input((4,)), Dense(2)]).count_params()
    10
    >>> model = Sequential()
    >>> model.add(Dense(2, input_shape=(4,)))        # built here already
    >>> model.built, model.output_shape
    (True, (2,))
    >>> model.add(Dense(1))                          # built on the output shape (2,)
    >>> model.count_params()
    13
    >>> model = Sequential([Dense(2), Dense(1)])
    >>> model.build((4,))                            # or give the shape last
    >>> model(np.ones((3, 4))).shape                 # model(x): inference, as predict, in one pass
    (3, 1)

    Once built, each :meth:`add` builds the new layer on the current output shape.

    Parameters
    ----------
    layers : list of Layer, optional
        The layers, first to last; the list may start with an :class:`~minicnn.layers.Input`.
    seed : int, default 0
        Fixes the initial weights, the shuffling and the dropout masks.
    name : str, default "sequential"
        Shown by :meth:`summary`.

    Attributes
    ----------
    layers : list of Layer
        The layers, first to last (an ``Input`` is not one of them: it only gives the shape).
    workspace : dict of str to ndarray
        Scratch arrays the layers share in the fast mode (the im2col buffer of every Conv2D),
        owned by the model and kept from step to step; empty until the first step.
    """

    def __init__(self, layers: list[Layer | Input] | None = None, seed: int = 0, name: str = "sequential") -> None:
        super().__init__()
        self.layers: list[Layer] = []
        self.workspace: dict[str, Any] = {}  # the fast mode's shared scratch arrays (see layers/base.py)
        self.seed = checks.check_whole_number("Sequential", "seed", seed, 0)
        if not isinstance(name, str):
            raise TypeError(f"Sequential: name must be a str, got {checks.describe(name)}")
        self.name = name
        # The shape an Input gave, until the model is built (then layers[0].input_shape says it).
        self.declared_input_shape: Shape | None = None
        entries = [] if layers is None else layers
        if not isinstance(entries, (list, tuple)):
            raise TypeError(f"Sequential: layers must be a list of Layer objects, got {checks.describe(entries)}")
        for index, entry in enumerate(entries):
            if isinstance(entry, Input):
                self.add(entry)  # refuses an Input that is not first
            elif isinstance(entry, Layer):
                self.append(entry)
            else:
                raise TypeError(
                    f"Sequential: layers[{index}] must be a Layer, got {checks.describe(entry)} "
                    "(an Input may come first)"
                )
        shape = self.known_input_shape()
        if self.layers and shape is not None:
            self.build(shape)  # all at once: an error then names the layer that does not fit

    # ---- building -------------------------------------------------------------------
    def add(self, layer: Layer | Input) -> None:
        """Append ``layer`` to the stack; build it at once when the input shape is known.

        ``model.add(Input(shape))`` first gives the input shape. Once the input shape is
        known (from that ``Input``, or the first layer's ``input_shape=``), each added layer is
        built on the current output shape, with the seed (seed, index) and the name it would
        get in :meth:`build`.

        Parameters
        ----------
        layer : Layer or Input
            The next layer, or an ``Input`` before any layer.

        Raises
        ------
        TypeError
            ``layer`` is neither a Layer nor an Input.
        ValueError
            An ``Input`` after the first layer (or a second one), or a layer that does not fit
            the current output shape or repeats a name; the model is left as it was.
        """
        if isinstance(layer, Input):
            if self.layers or self.declared_input_shape is not None:
                where = f"after {self.layers[-1].describe()}" if self.layers else "after another Input"
                raise ValueError(
                    f"Sequential.add: {layer!r} must come first, got it {where}; "
                    "a model has one input, given before its first layer"
                )
            self.declared_input_shape = layer.shape
            return
        if not isinstance(layer, Layer):
            raise TypeError(f"Sequential.add: layer must be a Layer or an Input, got {checks.describe(layer)}")
        if any(existing is layer for existing in self.layers):
            raise ValueError(f"Sequential.add: layer {layer.describe()} is already in model {self.name!r}")
        self.append(layer)
        if not self.built and (shape := self.known_input_shape()) is not None and len(self.layers) == 1:
            self.build_last_layer(shape, where="Sequential.add")
        elif len(self.layers) > 1 and self.layers[-2].built:
            self.build_last_layer(self.layers[-2].output_shape, where="Sequential.add")

    def append(self, layer: Layer) -> None:
        """Put ``layer`` at the end of the stack, unbuilt; :meth:`add` also builds it."""
        if not self.layers and self.declared_input_shape is not None and layer.input_shape is not None:
            if layer.input_shape != self.declared_input_shape:
                raise ValueError(
                    f"Sequential: layer {layer.describe()} has input_shape={layer.input_shape}, but the model "
                    f"starts with Input(shape={self.declared_input_shape}); give the shape once"
                )
        self.layers.append(layer)

    def known_input_shape(self) -> Shape | None:
        """The input shape if anything gave one yet (an Input, or the first layer's input_shape), else None."""
        if self.declared_input_shape is not None:
            return self.declared_input_shape
        return self.layers[0].input_shape if self.layers else None

    def build_last_layer(self, shape: Shape, where: str) -> None:
        """Build the last layer on ``shape`` (the output of the layer before); remove it again if it does not fit."""
        index = len(self.layers) - 1
        layer = self.layers[index]
        name = layer_names(self.layers)[index]
        if name in {other.name for other in self.layers[:index]}:
            self.layers.pop()
            raise ValueError(
                f"{where}: layer names must be unique within a model; {name!r} is taken by an earlier layer"
            )
        given_name, layer.name = layer.name, name  # so that an error names the layer as the model would
        try:
            layer.compute_output_shape(shape)  # refuses a shape that does not fit, before anything changes
        except ValueError as error:
            layer.name = given_name
            self.layers.pop()
            after = f"the output {shape} of {self.layers[-1].describe()}" if self.layers else f"the input {shape}"
            prefix = f"layer {layer.describe()} "  # most messages name the layer already
            reason = f"it {str(error)[len(prefix) :]}" if str(error).startswith(prefix) else str(error)
            raise ValueError(f"{where}: layer {layer.describe()} does not fit {after}: {reason}") from error
        layer.build(shape, np.random.default_rng([self.seed, index]))

    def build(self, input_shape: Shape | int) -> None:
        """Give every layer its input shape, name and parameters (layer k draws from seed (seed, k)).

        Building again (with the same or another shape) starts every layer afresh from its seed.

        Parameters
        ----------
        input_shape : int or tuple of int
            The shape of one input sample, e.g. (300, 300, 1).

        Raises
        ------
        ValueError
            The model has no layers, two layers share a name, or a layer does not fit the
            shape it receives (the error names it).
        """
        if not self.layers:
            raise ValueError("cannot build an empty Sequential model; add layers first")
        shape = as_shape(input_shape)
        names = layer_names(self.layers)
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"layer names must be unique within a model; repeated: {duplicates}")
        given_names = [layer.name for layer in self.layers]
        for layer, name in zip(self.layers, names, strict=True):
            layer.name = name  # first, so that an error names the layer as the model calls it
        try:
            parameter_shapes(self.layers, shape)  # every layer must fit before any layer is built
        except ValueError:
            for layer, name in zip(self.layers, given_names, strict=True):
                layer.name = name
            raise
        for index, layer in enumerate(self.layers):
            shape = layer.build(shape, np.random.default_rng([self.seed, index]))
        self.declared_input_shape = None  # from now on layers[0].input_shape says it

    @property
    def built(self) -> bool:
        """Whether every layer has its input shape and parameters."""
        return bool(self.layers) and all(layer.built for layer in self.layers)

    @property
    def input_shape(self) -> Shape:
        """The shape of one input sample, e.g. (300, 300, 1)."""
        self.require_built()
        return self.layers[0].input_shape

    @property
    def output_shape(self) -> Shape:
        """The shape of one output sample, e.g. (1,)."""
        self.require_built()
        return self.layers[-1].output_shape

    @property
    def dtype(self) -> str:
        """The float type of the parameters; inputs are cast to it."""
        self.require_built()
        return self.layers[0].dtype

    def require_built(self) -> None:
        """Raise RuntimeError, saying how to build, when the model is not built."""
        if not self.built:
            if not self.layers:
                raise RuntimeError(f"model {self.name!r} has no layers yet; add some with model.add(layer)")
            raise RuntimeError(
                "the model is not built: start it with Input((H, W, C)), give the first layer "
                "input_shape=(H, W, C), or call model.build(shape)"
            )

    def count_params(self) -> int:
        """Number of scalars in all parameters."""
        self.require_built()
        return sum(layer.count_params() for layer in self.layers)

    def parameters(self) -> list[tuple[str, Any, Any]]:
        """(name, value, gradient) for every parameter, e.g. ("conv2d/kernel", array, array)."""
        return [
            (f"{layer.name}/{key}", value, layer.grads.get(key))
            for layer in self.layers
            for key, value in layer.params.items()
        ]

    # ---- forward and backward --------------------------------------------------------
    def forward(self, x: Any, training: bool = False) -> Any:
        """x (N, H, W, C) on the active backend -> the last layer's output, e.g. (N, 1).

        Parameters
        ----------
        x : ndarray of shape (N, *input_shape)
            A batch on the active backend, in the model's dtype (``fit`` and ``predict``
            prepare it; called directly, prepare it yourself).
        training : bool, default False
            True runs Dropout as in training.

        Returns
        -------
        ndarray of shape (N, *output_shape)
        """
        self.require_built()
        for layer in self.layers:
            x = layer.forward(x, training=training)
        return x

    def __call__(self, x: Any, training: bool = False) -> Any:
        """``model(x)``: the outputs for a batch in one forward pass, as Keras's ``model(x)``.

        The same numbers as :meth:`predict`, but like Keras: one pass over all of ``x`` at
        once (no batching, so memory grows with N), and the result stays on the active backend
        (a NumPy array on NumPy; a CuPy array on CuPy, where ``mc.backend.to_numpy`` brings it
        to the host), as Keras returns a tensor where ``predict`` returns NumPy. ``x`` is
        checked and cast to the model's dtype as in ``predict``; the layers run as when called
        directly (fresh arrays, no kept buffers).

        Parameters
        ----------
        x : ndarray of shape (N, *input_shape), or nested lists
            Images or feature vectors, any numeric dtype, on the host or the active backend.
        training : bool, default False
            True runs Dropout and BatchNormalization as in training (BatchNormalization then
            also moves its moving statistics, as in Keras).

        Returns
        -------
        ndarray of shape (N, *output_shape)
            On the active backend, in the model's dtype; e.g. (N, 1) probabilities for a sigmoid model.

        Raises
        ------
        RuntimeError
            The model is not built.
        TypeError, ValueError
            ``x`` of the wrong shape or type, or with NaN or infinite values.
        """
        where = "model(x)"
        self.require_built()
        if not isinstance(training, bool):
            raise TypeError(f"{where}: training must be True or False, got {checks.describe(training)}")
        x = self.checked_images(where, "x", x)
        if x.dtype.kind not in "biuf":
            raise TypeError(f"{where}: x must hold int or float numbers, got dtype {x.dtype}")
        return self.forward(backend.to_device(x, dtype=self.dtype), training=training)

    def backward(self, gradient: Any, from_dz: bool = False) -> Any:
        """Backpropagate dL/doutput from the last layer to the first; fills every layer's grads.

        With ``from_dz=True``, ``gradient`` is dL/dz, the gradient *before* the last layer's
        activation (the fused gradient of a sigmoid + binary cross-entropy or softmax + categorical
        cross-entropy pair, (p - y) / N, that
        :func:`minicnn.losses.start_backward` returns with ``from_dz=True``): the last
        activation is skipped. Returns the first layer's dL/dx (None in the fast mode
        a training loop uses, where nobody needs it).

        Parameters
        ----------
        gradient : ndarray of shape (N, *output_shape)
            dL/doutput, or dL/dz with ``from_dz=True``.
        from_dz : bool, default False
            Start after the last layer's activation.

        Returns
        -------
        ndarray of shape (N, *input_shape) or None
        """
        layers = self.layers
        if from_dz:
            last = layers[-1]
            gradient = last.backward_from_dz(gradient)  # a standalone activation returns dz as it is
            layers = layers[:-1]
        for layer in reversed(layers):
            gradient = layer.backward(gradient)
        return gradient

    def relu_folds(self) -> list[tuple[Layer, Layer]]:
        """(layer, pool) pairs whose ReLU the fast mode folds into the pool (:func:`minicnn.layers.base.relu_folds`)."""
        return relu_folds(self.layers)

    # ---- summary ---------------------------------------------------------------------
    def summary(self, batch_size: int | None = None, print_fn: Callable[[str], Any] | None = None) -> None:
        """Print the Keras table: Layer (type) | Output Shape | Param #.

        Parameters
        ----------
        batch_size : int, optional
            Also report memory per layer (parameter bytes, output bytes at this batch size,
            temporary workspace) and an estimate for one training step with Adam.
        print_fn : callable, optional
            Receives the text instead of ``print`` (as in Keras), e.g. ``lines.append``.
        """
        self.require_built()
        (print_fn or print)(summary.summary_text(self, batch_size))

    def memory_estimate(self, batch_size: int) -> dict[str, int]:
        """Bytes for one training step, by kind (see :func:`minicnn.summary.memory_estimate`)."""
        self.require_built()
        return summary.memory_estimate(self, batch_size)

    # ---- weights ----------------------------------------------------------------------
    def get_weights(self) -> list[np.ndarray]:
        """Host copies of every parameter, layer by layer (kernel then bias), as Keras orders them."""
        return [backend.to_numpy(value).copy() for _, value, _ in self.parameters()]

    def set_weights(self, weights: list[Any]) -> None:
        """Copy a list like :meth:`get_weights`'s into the parameters; count and shapes must match.

        Raises
        ------
        TypeError
            ``weights`` is not a list, or an entry does not hold numbers.
        ValueError
            Another number of arrays, another shape, or NaN or infinite values; nothing is copied then.
        """
        where = "set_weights"
        parameters = self.parameters()
        if not isinstance(weights, (list, tuple)):
            raise TypeError(
                f"{where}: weights must be a list of arrays as get_weights returns, got {checks.describe(weights)}"
            )
        if len(weights) != len(parameters):
            raise ValueError(f"{where}: model {self.name!r} has {len(parameters)} weight arrays, got {len(weights)}")
        weights = [checks.as_numeric_array(where, f"weights[{index}]", new) for index, new in enumerate(weights)]
        for index, ((name, value, _), new) in enumerate(zip(parameters, weights, strict=True)):
            if tuple(new.shape) != tuple(value.shape):
                raise ValueError(f"{where}: weight {name!r} has shape {tuple(value.shape)}, got {tuple(new.shape)}")
            checks.check_finite(where, f"weights[{index}] ({name})", new, value.dtype)
        for (_, value, _), new in zip(parameters, weights, strict=True):
            value[...] = backend.to_device(new, dtype=value.dtype)

    def get_named_weights(self) -> dict[str, np.ndarray]:
        """Host copies of every parameter keyed "layer/param" (how model files store them)."""
        return {name: backend.to_numpy(value).copy() for name, value, _ in self.parameters()}

    def set_named_weights(self, weights: dict[str, np.ndarray], source: str = "weights") -> None:
        """Copy ``weights`` ("layer/param" -> array) into the parameters; names and shapes must match."""
        expected = {name: value for name, value, _ in self.parameters()}
        missing = sorted(set(expected) - set(weights))
        unexpected = sorted(set(weights) - set(expected))
        if missing or unexpected:
            raise ModelFileError(
                f"{source} do not fit model {self.name!r}: missing {missing or 'nothing'}, "
                f"unexpected {unexpected or 'nothing'}"
            )
        for name, value in expected.items():
            if tuple(weights[name].shape) != tuple(value.shape):
                raise ModelFileError(
                    f"{source}: layer parameter {name!r} has shape {tuple(weights[name].shape)} "
                    f"but the model expects {tuple(value.shape)}"
                )
            if weights[name].dtype.kind not in "biuf":
                raise ModelFileError(
                    f"{source}: layer parameter {name!r} must hold numbers, got dtype {weights[name].dtype}"
                )
            bad = checks.count_non_finite(weights[name], value.dtype)
            if bad:
                raise ModelFileError(f"{source}: layer parameter {name!r} holds {bad} NaN or infinite values")
        for name, value in expected.items():
            value[...] = backend.to_device(weights[name], dtype=value.dtype)

    # ---- architecture as data --------------------------------------------------------------
    def get_config(self) -> dict[str, Any]:
        """The architecture (and compile settings) as JSON-able data."""
        config: dict[str, Any] = {
            "name": self.name,
            "seed": self.seed,
            "input_shape": list(self.input_shape),
            "dtype": self.dtype,
            "layers": [{"class_name": type(layer).__name__, "config": layer.get_config()} for layer in self.layers],
        }
        compile_config = self.get_compile_config()
        if compile_config is not None:
            config["compile"] = compile_config
        return config

    @classmethod
    def from_config(cls, config: dict[str, Any], stored_shapes: dict[str, Shape] | None = None) -> Sequential:
        """Rebuild a model (with fresh weights) from :meth:`get_config`.

        Parameters
        ----------
        config : dict
            What :meth:`get_config` returned; each layer's values go through its constructor's checks.
        stored_shapes : dict of str to tuple of int, optional
            The shapes of the weights a file holds ("layer/param" -> shape). When given, the
            layers' parameter shapes must be exactly these *before* any layer is built, so a
            config cannot make the model allocate more than the file itself holds.

        Raises
        ------
        ModelFileError
            An unknown layer class, or parameters that differ from ``stored_shapes``.
        TypeError, ValueError
            A config value that a constructor refuses.
        """
        layers = []
        if not isinstance(config.get("layers"), list):
            raise ModelFileError(f"the config has no list of layers, got {checks.describe(config.get('layers'))}")
        for entry in config["layers"]:
            class_name = entry["class_name"]
            if class_name not in LAYER_CLASSES:
                raise ModelFileError(
                    f"unknown layer class {class_name!r} in the config; minicnn has {', '.join(LAYER_CLASSES)}"
                )
            layer_config = {
                key: tuple(value) if isinstance(value, list) else value for key, value in entry["config"].items()
            }
            layers.append(LAYER_CLASSES[class_name](**layer_config))
        if stored_shapes is not None:
            check_stored_shapes(parameter_shapes(layers, tuple(config["input_shape"])), stored_shapes)
        previous = backend.default_dtype()
        backend.set_default_dtype(config.get("dtype", previous))
        try:
            model = cls(layers, seed=config["seed"], name=config["name"])
            if not model.built:
                model.build(tuple(config["input_shape"]))
        finally:
            backend.set_default_dtype(previous)
        if config.get("compile"):
            model.compile_from_config(config["compile"])
        return model

    # ---- files: the format is minicnn.files; minicnn.saving.load_model reads them back ---------
    def file_arrays(self, training_state: bool = True, include_optimizer: bool = True) -> dict[str, np.ndarray]:
        """The entries of this model's file (their names are listed in :mod:`minicnn.files`).

        Parameters
        ----------
        training_state : bool, default True
            Besides format, config and ``weights/<layer>/<param>``, also each layer's state
            (Dropout's mask counter), the completed epochs, the position inside an
            interrupted epoch and the history: everything needed to resume exactly.
        include_optimizer : bool, default True
            With ``training_state``, also the optimiser's step counter and slots.

        Returns
        -------
        dict of str to numpy.ndarray
            Host arrays, ready for :func:`minicnn.files.write_npz_atomic`.
        """
        arrays = {"format": np.array(files.FORMAT), "config": files.encode_json(self.get_config())}
        arrays.update({f"{files.WEIGHTS}{name}": value for name, value in self.get_named_weights().items()})
        if not training_state:
            return arrays
        arrays["state"] = files.encode_json({layer.name: layer.get_state() for layer in self.layers})
        history = self.history.history if self.history is not None else {}
        arrays["training"] = files.encode_json(
            {"completed_epochs": self.completed_epochs, "history": history, "partial_epoch": self.partial_epoch}
        )
        if include_optimizer and self.optimizer is not None:
            state = self.optimizer.get_state()
            arrays.update({f"{files.OPTIMIZER}{key}": np.asarray(value) for key, value in state.items()})
        return arrays

    def save(self, path: str | Path, include_optimizer: bool = True) -> Path:
        """Write everything needed to resume training exactly to ``path`` atomically; ``minicnn.load_model`` reads it.

        Parameters
        ----------
        path : str or os.PathLike
            The ``.npz`` file to write or replace. minicnn writes its own format (see
            :mod:`minicnn.files`), which Keras cannot read: a name ending in .keras, .h5 or
            .hdf5 is refused. Any other name is written as given (no suffix is added).
        include_optimizer : bool, default True
            Also store the optimiser's step counter and slots (needed to resume exactly).

        Returns
        -------
        pathlib.Path
            ``path``.

        Raises
        ------
        ValueError
            ``path`` ends in .keras, .h5 or .hdf5 (Keras's formats); nothing is written then.
        """
        files.check_model_path("save", path)  # before anything is computed or written
        return files.write_npz_atomic(path, self.file_arrays(include_optimizer=include_optimizer))

    def save_weights(self, path: str | Path) -> Path:
        """Write the parameters (and the architecture, for checking) to ``path`` atomically.

        Parameters
        ----------
        path : str or os.PathLike
            The ``.npz`` file to write or replace (not Keras's ``.weights.h5``: see :meth:`save`).

        Returns
        -------
        pathlib.Path
            ``path``.

        Raises
        ------
        ValueError
            ``path`` ends in .keras, .h5 or .hdf5; nothing is written then.
        """
        files.check_model_path("save_weights", path)
        return files.write_npz_atomic(path, self.file_arrays(training_state=False))

    def load_weights(self, path: str | Path) -> None:
        """Load parameters written by save_weights/save; names and shapes must match this model.

        Raises
        ------
        ModelFileError
            The file is missing or not a minicnn model file, or its weights do not fit.
        """
        weights = files.entries_under(files.read_npz(path), files.WEIGHTS)
        self.set_named_weights(weights, source=f"weights in {path}")


def check_stored_shapes(expected: dict[str, Shape], stored: dict[str, Shape]) -> None:
    """The parameters a config describes must be exactly the arrays stored beside it: names and shapes.

    Raises
    ------
    ModelFileError
        Names missing or unexpected, or a shape that differs (the first one is named).
    """
    missing = sorted(set(expected) - set(stored))
    unexpected = sorted(set(stored) - set(expected))
    if missing or unexpected:
        raise ModelFileError(
            f"its weights do not fit its config: missing {missing or 'nothing'}, unexpected {unexpected or 'nothing'}"
        )
    for name, shape in expected.items():
        if tuple(stored[name]) != shape:
            raise ModelFileError(
                f"its config gives layer parameter {name!r} the shape {shape}, "
                f"but the file stores {tuple(stored[name])}"
            )
