"""Sequential: a stack of layers, trained with Keras's vocabulary.

    model = Sequential([...], seed=0)
    model.compile(optimizer=Adam(1e-4), loss=BinaryCrossentropy(), metrics=["accuracy"])
    history = model.fit(x, y, batch_size=32, epochs=60, validation_split=0.2)

One training step (``train_on_batch``) is the whole algorithm of deep learning:

1. forward:  run x through every layer, each keeping what its backward needs;
2. loss:     compare the output with y;
3. backward: run dL/doutput back through the layers in reverse, filling every grads dict;
4. update:   the optimiser moves every parameter a little against its gradient.

Everything is reproducible from ``seed``: the initial weights (layer k draws from
seed (seed, k)), the shuffling of epoch e, and the dropout masks.
"""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy
from tqdm.auto import tqdm

from minicnn import backend, io, losses, optimizers
from minicnn.callbacks import Callback, History
from minicnn.data.batches import Batches
from minicnn.layers import Conv2D, Dense, Dropout, Flatten, Layer, MaxPool2D, ReLU, Sigmoid
from minicnn.layers.activations import Linear
from minicnn.layers.base import Shape, snake_case

LAYER_CLASSES: dict[str, type[Layer]] = {
    cls.__name__: cls for cls in (Conv2D, MaxPool2D, Dense, Flatten, Dropout, ReLU, Sigmoid, Linear)
}
METRIC_NAMES = {"accuracy": "accuracy", "acc": "accuracy", "binary_accuracy": "accuracy"}


class TrainingDivergedError(FloatingPointError):
    """The loss became NaN or infinite; training stopped before the bad update was applied."""


def format_bytes(size: float) -> str:
    """1536 -> '1.5 KiB'."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


class Sequential:
    """A linear stack of layers.

    Parameters
    ----------
    layers : the layers, first to last; the first should be given ``input_shape=(H, W, C)``
        (or call :meth:`build`).
    seed : fixes initial weights, shuffling and dropout masks.
    name : shown by :meth:`summary`.
    """

    def __init__(self, layers: list[Layer] | None = None, seed: int = 0, name: str = "sequential") -> None:
        self.layers: list[Layer] = []
        self.seed = seed
        self.name = name
        self.optimizer: optimizers.Optimizer | None = None
        self.loss: losses.BinaryCrossentropy | None = None
        self.metrics: list[str] = []
        self.stop_training = False
        self.completed_epochs = 0
        self.partial_epoch: dict[str, Any] | None = None  # progress inside an interrupted epoch
        self.history: History | None = None
        for layer in layers or []:
            self.add(layer)
        if self.layers and self.layers[0].input_shape is not None:
            self.build(self.layers[0].input_shape)

    # ---- building -------------------------------------------------------------------
    def add(self, layer: Layer) -> None:
        if not isinstance(layer, Layer):
            raise TypeError(f"Sequential.add expects a Layer, got {type(layer).__name__}")
        self.layers.append(layer)

    def build(self, input_shape: Shape) -> None:
        """Give every layer its input shape, name and parameters (layer k draws from seed (seed, k))."""
        if not self.layers:
            raise ValueError("cannot build an empty Sequential model; add layers first")
        shape = tuple(int(size) for size in input_shape)
        used: dict[str, int] = {}
        for index, layer in enumerate(self.layers):
            if layer.name is None:
                base = snake_case(type(layer).__name__)
                count = used.get(base, 0)
                layer.name = base if count == 0 else f"{base}_{count}"
                used[base] = count + 1
            shape = layer.build(shape, numpy.random.default_rng([self.seed, index]))
        names = [layer.name for layer in self.layers]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"layer names must be unique within a model; repeated: {duplicates}")
        # Nobody consumes the gradient with respect to the images, so the first layer skips it.
        self.layers[0].compute_input_gradient = False
        for layer in self.layers[1:]:
            layer.compute_input_gradient = True

    @property
    def built(self) -> bool:
        return bool(self.layers) and all(layer.built for layer in self.layers)

    @property
    def input_shape(self) -> Shape:
        self.require_built()
        return self.layers[0].input_shape

    @property
    def dtype(self) -> str:
        self.require_built()
        return self.layers[0].dtype

    def require_built(self) -> None:
        if not self.built:
            raise RuntimeError(
                "the model is not built: give the first layer input_shape=(H, W, C) or call model.build(shape)"
            )

    def count_params(self) -> int:
        self.require_built()
        return sum(layer.count_params() for layer in self.layers)

    def parameters(self) -> list[tuple[str, Any, Any]]:
        """(name, value, gradient) for every parameter, e.g. ("conv2d/kernel", array, array)."""
        return [
            (f"{layer.name}/{key}", value, layer.grads.get(key))
            for layer in self.layers
            for key, value in layer.params.items()
        ]

    # ---- summary and memory report ----------------------------------------------------
    def summary(self, batch_size: int | None = None, print_fn: Any = print) -> str:
        """Print (and return) the Keras table: Layer (type) | Output Shape | Param #.

        With ``batch_size``, also a memory report per layer: parameter bytes, the bytes of
        the layer's output at that batch size, the layer's temporary workspace, and an
        estimate of the total for one training step with Adam.
        """
        self.require_built()
        itemsize = numpy.dtype(self.dtype).itemsize
        columns = [("Layer (type)", 29), ("Output Shape", 26), ("Param #", 12)]
        if batch_size:
            columns += [("Params", 12), ("Output", 12), ("Workspace", 12)]
        width = sum(size for _, size in columns)
        lines = [f'Model: "{self.name}"', "_" * width, "".join(title.ljust(size) for title, size in columns), "=" * width]
        for index, layer in enumerate(self.layers):
            cells = [layer.describe(), f"(None, {', '.join(map(str, layer.output_shape))})", f"{layer.count_params():,}"]
            if batch_size:
                cells += [
                    format_bytes(layer.count_params() * itemsize),
                    format_bytes(batch_size * math.prod(layer.output_shape) * itemsize),
                    format_bytes(layer.workspace_bytes(batch_size)),
                ]
            lines.append("".join(cell.ljust(size) for cell, (_, size) in zip(cells, columns)))
            lines.append("=" * width if index == len(self.layers) - 1 else "_" * width)
        total = self.count_params()
        lines += [f"Total params: {total:,}", f"Trainable params: {total:,}", "Non-trainable params: 0"]
        if batch_size:
            lines += ["", f"Memory estimate for one training step at batch size {batch_size} ({self.dtype}):"]
            lines += [f"  {label:<46}{format_bytes(size):>12}" for label, size in self.memory_estimate(batch_size).items()]
        text = "\n".join(lines)
        if print_fn is not None:
            print_fn(text)
        return text

    def memory_estimate(self, batch_size: int) -> dict[str, int]:
        """Bytes for one training step, by kind. An estimate: NumPy's own temporaries come on top."""
        itemsize = numpy.dtype(self.dtype).itemsize
        parameters = self.count_params() * itemsize
        outputs = sum(batch_size * math.prod(layer.output_shape) * itemsize for layer in self.layers)
        # Every layer but the first returns dL/dx, the size of its input; the large layers keep
        # that array as a buffer from step to step, so all of them count, not just the largest.
        input_gradients = sum(batch_size * math.prod(layer.input_shape) * itemsize for layer in self.layers[1:])
        input_bytes = batch_size * math.prod(self.input_shape) * itemsize
        estimate = {
            "weights": parameters,
            "gradients": parameters,
            "optimizer state (Adam: 2 per weight)": 2 * parameters,
            "input batch": input_bytes,
            "layer outputs kept for backward": outputs,
            "input gradients (dL/dx of every layer)": input_gradients,
            "im2col workspace (shared by all Conv2D)": max(layer.workspace_bytes(batch_size) for layer in self.layers),
        }
        estimate["total"] = sum(estimate.values())
        return estimate

    # ---- compile ---------------------------------------------------------------------
    def compile(self, optimizer: str | optimizers.Optimizer = "adam",
                loss: str | losses.BinaryCrossentropy = "binary_crossentropy",
                metrics: list[str] | None = None) -> None:
        """Choose the optimiser, the loss and the metrics reported by fit/evaluate."""
        self.optimizer = optimizers.get(optimizer)
        self.loss = losses.get(loss)
        self.metrics = []
        for metric in metrics or []:
            if metric not in METRIC_NAMES:
                raise ValueError(f"unknown metric {metric!r}; choose one of {', '.join(METRIC_NAMES)}")
            self.metrics.append(METRIC_NAMES[metric])

    def require_compiled(self) -> None:
        if self.optimizer is None or self.loss is None:
            raise RuntimeError("the model is not compiled: call model.compile(optimizer=..., loss=...) first")

    @property
    def fused_sigmoid(self) -> bool:
        """True when a sigmoid output feeds a probability BCE: then backward starts from dL/dz = (p - y) / N."""
        last = self.layers[-1]
        activation = getattr(last, "activation", last)
        return (isinstance(activation, Sigmoid) and isinstance(self.loss, losses.BinaryCrossentropy)
                and not self.loss.from_logits)

    # ---- forward and backward --------------------------------------------------------
    def forward(self, x: Any, training: bool = False) -> Any:
        """x (N, H, W, C) on the active backend -> the last layer's output (N, 1)."""
        self.require_built()
        for layer in self.layers:
            x = layer.forward(x, training=training)
        return x

    def backward(self) -> None:
        """Backpropagate the loss of the last forward pass; fills every layer's grads."""
        layers = self.layers
        if self.fused_sigmoid:
            last = layers[-1]
            gradient_z = self.loss.gradient_before_sigmoid()
            if isinstance(last, Sigmoid):
                gradient = gradient_z  # a standalone Sigmoid layer: skip it
            else:
                gradient = last.backward_before_activation(gradient_z)
            layers = layers[:-1]
        else:
            gradient = self.loss.backward()
        for layer in reversed(layers):
            gradient = layer.backward(gradient)

    def prepare_batch(self, x: Any, y: Any = None) -> tuple[Any, Any]:
        """Check a host batch and move it to the backend in the model's dtype; y becomes (N, 1)."""
        self.require_built()
        x_shape = tuple(x.shape)
        if len(x_shape) != len(self.input_shape) + 1 or x_shape[1:] != self.input_shape:
            raise ValueError(
                f"model {self.name!r} expects input of shape (None, {', '.join(map(str, self.input_shape))}), "
                f"got {x_shape}"
            )
        if x.dtype.kind not in "iuf":
            raise TypeError(f"model {self.name!r} expects numeric images (int or float), got dtype {x.dtype}")
        x = backend.to_device(x, dtype=self.dtype)
        if y is None:
            return x, None
        if len(y) != x_shape[0]:
            raise ValueError(f"x has {x_shape[0]} samples but y has {len(y)}")
        y = backend.to_device(y, dtype=self.dtype).reshape(x_shape[0], *self.layers[-1].output_shape)
        return x, y

    def sample_weight(self, y: Any, class_weight: dict[int, float] | None) -> Any:
        """Per-sample weights (N,) from a class_weight dict such as {0: 0.67, 1: 1.97}, or None."""
        if not class_weight:
            return None
        xp = backend.array_module()
        labels = y.reshape(-1)
        weights = xp.ones_like(labels)
        for label, weight in class_weight.items():
            weights[labels == label] = weight
        return weights

    def batch_metrics(self, output: Any, y: Any) -> dict[str, Any]:
        """Metric values of one batch as 0-d backend arrays (kept on the device until logged)."""
        results = {}
        if "accuracy" in self.metrics:
            threshold = 0.0 if self.loss.from_logits else 0.5  # logit 0 <=> probability 0.5
            results["accuracy"] = ((output > threshold) == (y > 0.5)).mean()
        return results

    def train_on_batch(self, x: Any, y: Any, class_weight: dict[int, float] | None = None) -> dict[str, float]:
        """One optimiser step on exactly this batch; returns {"loss": ..., "accuracy": ...}."""
        self.require_compiled()
        x, y = self.prepare_batch(x, y)
        output = self.forward(x, training=True)
        loss = self.loss.forward(output, y, self.sample_weight(y, class_weight))
        logs = {"loss": float(loss)}
        if not math.isfinite(logs["loss"]):
            # Stop before the update: the weights in memory (and on disk) stay the last good ones.
            raise TrainingDivergedError(
                f"the loss became {logs['loss']} (NaN or infinite); training stopped before applying that update. "
                "Lower the learning rate, or check the inputs for NaN/inf values."
            )
        self.backward()
        self.optimizer.step(self.parameters())
        logs.update({name: float(value) for name, value in self.batch_metrics(output, y).items()})
        return logs

    def test_on_batch(self, x: Any, y: Any) -> dict[str, float]:
        """Loss and metrics of one batch, without training."""
        self.require_compiled()
        x, y = self.prepare_batch(x, y)
        output = self.forward(x, training=False)
        logs = {"loss": float(self.loss.forward(output, y))}
        logs.update({name: float(value) for name, value in self.batch_metrics(output, y).items()})
        return logs

    # ---- fit / evaluate / predict ----------------------------------------------------------
    def as_batches(self, x: Any, y: Any, batch_size: int, shuffle: bool) -> Batches:
        """Arrays become a Batches source; a Batches (or anything with .epoch) passes through."""
        if hasattr(x, "epoch"):
            return x
        if y is None:
            y = numpy.zeros(len(x), dtype=numpy.float32)  # predict: labels unused
        return Batches(x, y, batch_size=batch_size, shuffle=shuffle, seed=self.seed, prefetch=False)

    def fit(self, x: Any, y: Any = None, batch_size: int = 32, epochs: int = 1, verbose: int = 1,
            callbacks: list[Callback] | None = None, validation_split: float = 0.0,
            validation_data: Any = None, shuffle: bool = True,
            class_weight: dict[int, float] | str | None = None, initial_epoch: int = 0) -> History:
        """Train for ``epochs`` epochs (counting from ``initial_epoch``); returns the History.

        Parameters
        ----------
        x, y : arrays (N, H, W, C) and (N,) or (N, 1); or ``x`` a :class:`~minicnn.data.batches.Batches`.
        validation_split : fraction of (x, y) held out from the end, before shuffling (as Keras).
        validation_data : (x_val, y_val) or a Batches.
        class_weight : {label: weight}, or "balanced" for n_samples / (2 * n_label).
        initial_epoch : epochs already done (to resume); shuffling and dropout continue exactly.
        verbose : 0 silent, 1 progress bar per epoch, 2 one line per epoch.
        """
        self.require_compiled()
        if validation_split:
            if hasattr(x, "epoch"):
                raise ValueError("validation_split needs arrays; pass validation_data with a Batches source")
            if not 0.0 < validation_split < 1.0:
                raise ValueError(f"validation_split must be in (0, 1), got {validation_split}")
            split = len(x) - int(round(len(x) * validation_split))
            validation_data = (x[split:], y[split:])
            x, y = x[:split], y[:split]
        train = self.as_batches(x, y, batch_size, shuffle)
        if class_weight == "balanced":
            class_weight = balanced_class_weight(train.y)
        history = History()
        if initial_epoch and self.history is not None:
            # Resuming: keep the epochs already trained so the history reads as one run.
            history.history = {key: values[:initial_epoch] for key, values in self.history.history.items()}
            history.epoch = self.history.epoch[:initial_epoch]
        self.history = history
        callbacks = [history, *(callbacks or [])]
        for callback in callbacks:
            callback.set_model(self)
        self.stop_training = False
        for callback in callbacks:
            callback.on_train_begin()
        for epoch in range(initial_epoch, epochs):
            for callback in callbacks:
                callback.on_epoch_begin(epoch)
            started = time.perf_counter()
            logs = self.run_epoch(train, epoch, epochs, class_weight, verbose, callbacks)
            if validation_data is not None:
                validation = self.evaluate(*self.split_xy(validation_data), batch_size=batch_size, verbose=0)
                logs.update({f"val_{key}": value for key, value in validation.items()})
            logs["seconds"] = time.perf_counter() - started
            self.completed_epochs = epoch + 1
            if verbose:
                figures = " - ".join(f"{key}: {value:.4f}" for key, value in logs.items() if key != "seconds")
                print(f"Epoch {epoch + 1}/{epochs} - {logs['seconds']:.1f}s - {figures}", file=sys.stderr)
            for callback in callbacks:
                callback.on_epoch_end(epoch, logs)
            if self.stop_training:
                break
        for callback in callbacks:
            callback.on_train_end()
        return history

    @staticmethod
    def split_xy(data: Any) -> tuple[Any, Any]:
        return (data, None) if hasattr(data, "epoch") else (data[0], data[1])

    def run_epoch(self, train: Batches, epoch: int, epochs: int, class_weight: dict[int, float] | None,
                  verbose: int, callbacks: list[Callback]) -> dict[str, float]:
        """One pass over the training batches; returns the sample-weighted mean of each log.

        After every batch, ``self.partial_epoch`` records how far the epoch got, so a checkpoint
        saved mid-epoch (Ctrl-C) resumes at the very next batch.
        """
        resumed = self.partial_epoch if self.partial_epoch and self.partial_epoch["epoch"] == epoch else None
        done = resumed["batches"] if resumed else 0
        totals: dict[str, float] = dict(resumed["totals"]) if resumed else {}
        seen: int = resumed["seen"] if resumed else 0
        with tqdm(total=len(train), initial=done, desc=f"Epoch {epoch + 1}/{epochs}", disable=verbose != 1,
                  leave=False, file=sys.stderr, dynamic_ncols=True) as bar:
            for index, (x_batch, y_batch) in enumerate(train.epoch(epoch, start=done), start=done):
                logs = self.train_on_batch(x_batch, y_batch, class_weight=class_weight)
                size = len(x_batch)
                seen += size
                for key, value in logs.items():
                    totals[key] = totals.get(key, 0.0) + value * size
                self.partial_epoch = {"epoch": epoch, "batches": index + 1, "totals": dict(totals), "seen": seen}
                bar.set_postfix({key: f"{total / seen:.4f}" for key, total in totals.items()})
                bar.update(1)
                for callback in callbacks:
                    callback.on_train_batch_end(index, logs)
        self.partial_epoch = None
        return {key: total / seen for key, total in totals.items()}

    def evaluate(self, x: Any, y: Any = None, batch_size: int = 32, verbose: int = 0) -> dict[str, float]:
        """Loss and metrics over all of (x, y), in batches; returns {"loss": ..., "accuracy": ...}."""
        self.require_compiled()
        source = self.as_batches(x, y, batch_size, shuffle=False)
        totals: dict[str, float] = {}
        seen = 0
        for x_batch, y_batch in tqdm(source.epoch(0), total=len(source), disable=verbose != 1,
                                     leave=False, file=sys.stderr, desc="evaluate"):
            logs = self.test_on_batch(x_batch, y_batch)
            seen += len(x_batch)
            for key, value in logs.items():
                totals[key] = totals.get(key, 0.0) + value * len(x_batch)
        return {key: total / seen for key, total in totals.items()}

    def predict(self, x: Any, batch_size: int = 32, verbose: int = 0) -> numpy.ndarray:
        """Outputs (probabilities for a sigmoid model) for every sample, as a host NumPy array (N, 1)."""
        source = self.as_batches(x, None, batch_size, shuffle=False)
        outputs = []
        for x_batch, _ in tqdm(source.epoch(0), total=len(source), disable=verbose != 1,
                               leave=False, file=sys.stderr, desc="predict"):
            x_batch, _ = self.prepare_batch(x_batch)
            # .copy(): on NumPy, to_numpy returns the layer's own buffer, reused by the next batch
            outputs.append(backend.to_numpy(self.forward(x_batch, training=False)).copy())
        return numpy.concatenate(outputs, axis=0)

    # ---- weights, config, files ---------------------------------------------------------
    def get_weights(self) -> dict[str, numpy.ndarray]:
        """Host copies of every parameter, keyed "layer/param"."""
        return {name: backend.to_numpy(value).copy() for name, value, _ in self.parameters()}

    def set_weights(self, weights: dict[str, numpy.ndarray], source: str = "weights") -> None:
        """Copy ``weights`` into the parameters in place; names and shapes must match exactly."""
        expected = {name: value for name, value, _ in self.parameters()}
        missing = sorted(set(expected) - set(weights))
        unexpected = sorted(set(weights) - set(expected))
        if missing or unexpected:
            raise io.ModelFileError(
                f"{source} do not fit model {self.name!r}: missing {missing or 'nothing'}, "
                f"unexpected {unexpected or 'nothing'}"
            )
        for name, value in expected.items():
            if tuple(weights[name].shape) != tuple(value.shape):
                raise io.ModelFileError(
                    f"{source}: layer parameter {name!r} has shape {tuple(weights[name].shape)} "
                    f"but the model expects {tuple(value.shape)}"
                )
        for name, value in expected.items():
            value[...] = backend.to_device(weights[name], dtype=value.dtype)

    def get_config(self) -> dict[str, Any]:
        """The architecture (and compile settings) as JSON-able data."""
        config: dict[str, Any] = {
            "name": self.name,
            "seed": self.seed,
            "input_shape": list(self.input_shape),
            "dtype": self.dtype,
            "layers": [{"class_name": type(layer).__name__, "config": layer.get_config()} for layer in self.layers],
        }
        if self.optimizer is not None and self.loss is not None:
            config["compile"] = {"optimizer": self.optimizer.get_config(), "loss": self.loss.get_config(),
                                 "metrics": self.metrics}
        return config

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "Sequential":
        """Rebuild a model (with fresh weights) from :meth:`get_config`."""
        layers = []
        for entry in config["layers"]:
            class_name = entry["class_name"]
            if class_name not in LAYER_CLASSES:
                raise io.ModelFileError(f"unknown layer class {class_name!r} in saved config")
            layer_config = {key: tuple(value) if isinstance(value, list) else value
                            for key, value in entry["config"].items()}
            layers.append(LAYER_CLASSES[class_name](**layer_config))
        previous = backend.default_dtype()
        backend.set_default_dtype(config.get("dtype", previous))
        try:
            model = cls(layers, seed=config["seed"], name=config["name"])
            if not model.built:
                model.build(tuple(config["input_shape"]))
        finally:
            backend.set_default_dtype(previous)
        compile_config = config.get("compile")
        if compile_config:
            loss_config = dict(compile_config["loss"])
            loss_config.pop("class_name")
            model.compile(optimizer=optimizers.from_config(compile_config["optimizer"]),
                          loss=losses.BinaryCrossentropy(**loss_config), metrics=compile_config["metrics"])
        return model

    def save_weights(self, path: str | Path) -> Path:
        """Write the parameters (and the architecture, for checking) to ``path`` atomically."""
        arrays = {"format": numpy.array(io.FORMAT), "config": io.encode_json(self.get_config())}
        arrays.update({f"weights/{name}": value for name, value in self.get_weights().items()})
        return io.write_npz_atomic(path, arrays)

    def load_weights(self, path: str | Path) -> None:
        """Load parameters written by save_weights/save; names and shapes must match this model."""
        arrays = io.read_npz(path)
        weights = {key[len("weights/"):]: value for key, value in arrays.items() if key.startswith("weights/")}
        self.set_weights(weights, source=f"weights in {path}")

    def save(self, path: str | Path, include_optimizer: bool = True) -> Path:
        """Write everything needed to resume training exactly: weights, architecture, optimiser
        state, layer state (dropout counters), completed epochs and history. Atomic."""
        arrays = {"format": numpy.array(io.FORMAT), "config": io.encode_json(self.get_config())}
        arrays.update({f"weights/{name}": value for name, value in self.get_weights().items()})
        arrays["state"] = io.encode_json({layer.name: layer.get_state() for layer in self.layers})
        history = self.history.history if self.history is not None else {}
        arrays["training"] = io.encode_json({"completed_epochs": self.completed_epochs, "history": history,
                                             "partial_epoch": self.partial_epoch})
        if include_optimizer and self.optimizer is not None:
            arrays.update({f"optimizer/{key}": numpy.asarray(value)
                           for key, value in self.optimizer.get_state().items()})
        return io.write_npz_atomic(path, arrays)


def balanced_class_weight(labels: Any) -> dict[int, float]:
    """{label: n_samples / (n_classes * n_label)}: rare classes weigh more (sklearn's 'balanced')."""
    labels = numpy.asarray(backend.to_numpy(labels)).reshape(-1).astype(int)
    classes, counts = numpy.unique(labels, return_counts=True)
    return {int(label): float(len(labels) / (len(classes) * count)) for label, count in zip(classes, counts)}


def load_model(path: str | Path) -> Sequential:
    """Rebuild a model saved with :meth:`Sequential.save`, with its optimiser state when present."""
    arrays = io.read_npz(path)
    try:
        config = io.decode_json(arrays["config"])
        model = Sequential.from_config(config)
    except (KeyError, TypeError, json.JSONDecodeError) as error:
        raise io.ModelFileError(f"{path}: the saved architecture cannot be read ({error!r})") from error
    model.load_weights(path)
    if "state" in arrays:
        states = io.decode_json(arrays["state"])
        for layer in model.layers:
            layer.set_state(states.get(layer.name, {}))
    if "training" in arrays:
        training = io.decode_json(arrays["training"])
        model.completed_epochs = int(training["completed_epochs"])
        model.partial_epoch = training.get("partial_epoch")
        model.history = History()
        model.history.history = training["history"]
        model.history.epoch = list(range(len(next(iter(training["history"].values()), []))))
    optimizer_state = {key[len("optimizer/"):]: value for key, value in arrays.items() if key.startswith("optimizer/")}
    if optimizer_state and model.optimizer is not None:
        model.optimizer.set_state(optimizer_state)
    return model
