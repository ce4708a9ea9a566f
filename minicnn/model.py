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
    Layer,
    MaxPool2D,
    ReLU,
    Sigmoid,
)
from minicnn.layers.base import Shape, as_shape, relu_folds, snake_case
from minicnn.training import Trainer

LAYER_CLASSES: dict[str, type[Layer]] = {
    cls.__name__: cls for cls in (Conv2D, MaxPool2D, Dense, Flatten, Dropout, ReLU, Sigmoid, Identity)
}
LAYER_CLASSES.update({cls.__name__: cls for cls in (BatchNormalization, GlobalAveragePooling2D, AveragePooling2D)})
# Model files written before the identity layer was renamed say "Linear".
LAYER_CLASSES["Linear"] = Identity


def layer_names(layers: list[Layer]) -> list[str]:
    """Each layer's name: its own, or one after its class ("conv2d", "conv2d_1", ...), as build gives it."""
    names = []
    used: dict[str, int] = {}
    for layer in layers:
        if layer.name is not None:
            names.append(layer.name)
            continue
        base = snake_case(type(layer).__name__)
        count = used.get(base, 0)
        names.append(base if count == 0 else f"{base}_{count}")
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

    Parameters
    ----------
    layers : list of Layer, optional
        The layers, first to last; give the first one ``input_shape=(H, W, C)`` (or call
        :meth:`build`).
    seed : int, default 0
        Fixes the initial weights, the shuffling and the dropout masks.
    name : str, default "sequential"
        Shown by :meth:`summary`.

    Attributes
    ----------
    layers : list of Layer
        The layers, first to last.
    workspace : dict of str to ndarray
        Scratch arrays the layers share in the fast mode (the im2col buffer of every Conv2D),
        owned by the model and kept from step to step; empty until the first step.
    """

    def __init__(self, layers: list[Layer] | None = None, seed: int = 0, name: str = "sequential") -> None:
        super().__init__()
        self.layers: list[Layer] = []
        self.workspace: dict[str, Any] = {}  # the fast mode's shared scratch arrays (see layers/base.py)
        self.seed = checks.check_whole_number("Sequential", "seed", seed, 0)
        if not isinstance(name, str):
            raise TypeError(f"Sequential: name must be a str, got {checks.describe(name)}")
        self.name = name
        for layer in checks.check_list_of("Sequential", "layers", [] if layers is None else layers, Layer):
            self.add(layer)
        if self.layers and self.layers[0].input_shape is not None:
            self.build(self.layers[0].input_shape)

    # ---- building -------------------------------------------------------------------
    def add(self, layer: Layer) -> None:
        """Append ``layer`` to the stack."""
        if not isinstance(layer, Layer):
            raise TypeError(f"Sequential.add: layer must be a Layer, got {checks.describe(layer)}")
        self.layers.append(layer)

    def build(self, input_shape: Shape | int) -> None:
        """Give every layer its input shape, name and parameters (layer k draws from seed (seed, k)).

        Parameters
        ----------
        input_shape : int or tuple of int
            The shape of one input sample, e.g. (300, 300, 1).

        Raises
        ------
        ValueError
            The model has no layers, two layers share a name, or a layer does not fit the
            shape it receives.
        """
        if not self.layers:
            raise ValueError("cannot build an empty Sequential model; add layers first")
        shape = as_shape(input_shape)
        for layer, name in zip(self.layers, layer_names(self.layers), strict=True):
            layer.name = name
        for index, layer in enumerate(self.layers):
            shape = layer.build(shape, np.random.default_rng([self.seed, index]))
        names = [layer.name for layer in self.layers]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"layer names must be unique within a model; repeated: {duplicates}")

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
            raise RuntimeError(
                "the model is not built: give the first layer input_shape=(H, W, C) or call model.build(shape)"
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

    def backward(self, gradient: Any, from_dz: bool = False) -> Any:
        """Backpropagate dL/doutput from the last layer to the first; fills every layer's grads.

        With ``from_dz=True``, ``gradient`` is dL/dz, the gradient *before* the last layer's
        activation (the fused sigmoid + binary cross-entropy gradient, (p - y) / N, that
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
            if not isinstance(last, Sigmoid):  # a standalone Sigmoid layer has no math left to do
                gradient = last.backward_from_dz(gradient)
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
            The ``.npz`` file to write or replace.
        include_optimizer : bool, default True
            Also store the optimiser's step counter and slots (needed to resume exactly).

        Returns
        -------
        pathlib.Path
            ``path``.
        """
        return files.write_npz_atomic(path, self.file_arrays(include_optimizer=include_optimizer))

    def save_weights(self, path: str | Path) -> Path:
        """Write the parameters (and the architecture, for checking) to ``path`` atomically."""
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
