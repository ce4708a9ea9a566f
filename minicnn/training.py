"""The training loop: compile, fit, evaluate, predict, train_on_batch.

One training step (``train_on_batch``) is the whole algorithm of deep learning:

1. forward:  run x through every layer, each keeping what its backward needs;
2. loss:     compare the output with y;
3. backward: run dL/doutput back through the layers in reverse, filling every grads dict;
4. update:   the optimiser moves every parameter a little against its gradient.

:class:`Trainer` holds this loop; :class:`minicnn.Sequential` inherits it, as Keras's
``Model`` inherits its ``Trainer``. What it needs from the model is declared in
:class:`TrainableModel`: ``layers``, ``forward``, ``backward``, ``parameters``, the
shapes, the name, the seed and the shared ``workspace``.

Every method here runs the layers in their fast mode (:meth:`Trainer.owns_memory`): the
loop owns every array between the layers, so the layers may reuse buffers and overwrite
gradients. The mode is switched off again when the method returns or raises.
"""

from __future__ import annotations

import math
import sys
import time
from contextlib import AbstractContextManager
from typing import Any, Protocol, runtime_checkable

import numpy as np

from minicnn import backend, checks, losses, metrics, optimizers
from minicnn.callbacks import Callback, History
from minicnn.data.batches import Batches
from minicnn.layers.activations import sigmoid, softmax
from minicnn.layers.base import Layer, Shape, model_owns_memory

METRIC_NAMES = {
    "accuracy": "accuracy",
    "acc": "accuracy",
    "binary_accuracy": "accuracy",
    "categorical_accuracy": "accuracy",
    "sparse_categorical_accuracy": "accuracy",
}
"""Keras's names of the accuracy metric, all logged as "accuracy": which accuracy it is follows from the loss
(binary cross-entropy: p >= 0.5 against 0/1 labels; categorical: the most probable class against the label)."""


class TrainingDivergedError(FloatingPointError):
    """The loss or a gradient became NaN or infinite; training stopped before the bad update was applied."""


def balanced_class_weight(labels: Any) -> dict[int, float]:
    """{label: n_samples / (n_classes * n_label)}: rare classes weigh more (sklearn's 'balanced').

    ``labels``: (N,) or (N, 1) class labels, or one-hot rows (N, K) with K > 1 (their argmax is the label).
    """
    labels = np.asarray(backend.to_numpy(labels))
    if labels.ndim == 2 and labels.shape[1] > 1:
        labels = labels.argmax(axis=1)
    labels = labels.reshape(-1).astype(int)
    classes, counts = np.unique(labels, return_counts=True)
    return {
        int(label): float(len(labels) / (len(classes) * count)) for label, count in zip(classes, counts, strict=True)
    }


def progress_bar(total: int, initial: int, description: str, enabled: bool) -> Any:
    """A tqdm progress bar on stderr (tqdm is imported only when a bar is shown)."""
    from tqdm.auto import tqdm

    return tqdm(
        total=total,
        initial=initial,
        desc=description,
        disable=not enabled,
        leave=False,
        file=sys.stderr,
        dynamic_ncols=True,
    )


@runtime_checkable
class TrainableModel(Protocol):
    """What :class:`Trainer` uses of the model that inherits it, and nothing more (Sequential has all of it).

    ``tests/spec/test_model.py`` checks that Trainer uses no other attribute of the model.
    """

    name: str
    seed: int
    layers: list[Layer]
    workspace: dict[str, Any]  # the scratch arrays the layers share in the fast mode

    @property
    def input_shape(self) -> Shape:
        """The shape of one input sample."""

    @property
    def output_shape(self) -> Shape:
        """The shape of one output sample."""

    @property
    def dtype(self) -> str:
        """The float type of the parameters."""

    def require_built(self) -> None:
        """Raise RuntimeError when the model is not built."""

    def forward(self, x: Any, training: bool = False) -> Any:
        """x (N, *input_shape) -> output (N, *output_shape)."""

    def backward(self, gradient: Any, from_dz: bool = False) -> Any:
        """Backpropagate dL/doutput (or dL/dz past the last activation, ``from_dz``); fill every layer's grads."""

    def parameters(self) -> list[tuple[str, Any, Any]]:
        """(name, value, gradient) for every parameter."""


class Trainer:
    """compile / fit / evaluate / predict for a model that has what :class:`TrainableModel` lists."""

    def __init__(self) -> None:
        self.optimizer: optimizers.Optimizer | None = None
        self.loss: losses.Loss | None = None
        self.metrics: list[str] = []
        self.stop_training = False
        self.completed_epochs = 0
        self.partial_epoch: dict[str, Any] | None = None  # progress inside an interrupted epoch
        self.history: History | None = None
        self.epoch_log_names: list[str] | None = None  # what fit's epoch logs will hold (for callbacks)

    # ---- compile ---------------------------------------------------------------------
    def compile(
        self,
        optimizer: str | optimizers.Optimizer = "adam",
        loss: str | losses.Loss = "binary_crossentropy",
        metrics: list[str] | None = None,
    ) -> None:
        """Choose the optimiser, the loss and the metrics reported by fit/evaluate.

        Compiling starts a new count of epochs: ``completed_epochs`` becomes 0 and the
        position inside an interrupted epoch is forgotten (the weights stay).

        Parameters
        ----------
        optimizer : str or Optimizer, default "adam"
            "adam", "sgd", "rmsprop", or an object from :mod:`minicnn.optimizers`.
        loss : str or Loss, default "binary_crossentropy"
            The loss to minimise: its Keras name ("binary_crossentropy", "categorical_crossentropy",
            "sparse_categorical_crossentropy", "mse"), or an object from :mod:`minicnn.losses`
            (``BinaryCrossentropy(from_logits=True)`` for a model without a final sigmoid).
        metrics : list of str, optional
            ["accuracy"] (also spelt "acc", "binary_accuracy", "categorical_accuracy" or
            "sparse_categorical_accuracy"; logged as "accuracy", the kind following the loss).

        Raises
        ------
        TypeError
            An optimiser, loss or metrics of the wrong type (``metrics="accuracy"``, not a list).
        ValueError
            An unknown optimiser, loss or metric name, or accuracy with the mean squared error.
        """
        where = "compile"
        if not isinstance(optimizer, (str, optimizers.Optimizer)):
            raise TypeError(
                f"{where}: optimizer must be 'adam', 'sgd' or an Optimizer object (or 'rmsprop'), "
                f"got {checks.describe(optimizer)}"
            )
        if not isinstance(loss, (str, losses.Loss)):
            raise TypeError(
                f"{where}: loss must be 'binary_crossentropy' (or another name in minicnn.losses.LOSSES, such as "
                f"'sparse_categorical_crossentropy') or a Loss object, got {checks.describe(loss)}"
            )
        if isinstance(metrics, str) or not isinstance(metrics, (list, tuple, type(None))):
            raise TypeError(
                f"{where}: metrics must be a list of names such as ['accuracy'], got {checks.describe(metrics)}"
            )
        names = []
        for metric in metrics or []:
            if not isinstance(metric, str) or metric not in METRIC_NAMES:
                raise ValueError(
                    f"{where}: unknown metric {metric!r} in metrics; choose from {', '.join(map(repr, METRIC_NAMES))}"
                )
            names.append(METRIC_NAMES[metric])
        loss = losses.get(loss)
        if names and isinstance(loss, losses.MeanSquaredError):
            raise ValueError(
                f"{where}: metrics=['accuracy'] needs a classification loss (binary or categorical cross-entropy), "
                "got mean squared error; compile without the metric"
            )
        self.optimizer = optimizers.get(optimizer)
        self.loss = loss
        self.metrics = names
        self.completed_epochs = 0
        self.partial_epoch = None

    def get_compile_config(self) -> dict[str, Any] | None:
        """The compile settings as JSON-able data (None before compile)."""
        if self.optimizer is None or self.loss is None:
            return None
        return {"optimizer": self.optimizer.get_config(), "loss": self.loss.get_config(), "metrics": self.metrics}

    def compile_from_config(self, config: dict[str, Any]) -> None:
        """compile() again from :meth:`get_compile_config`'s data."""
        self.compile(
            optimizer=optimizers.from_config(config["optimizer"]),
            loss=losses.from_config(config["loss"]),
            metrics=config["metrics"],
        )

    def require_compiled(self, where: str) -> None:
        """Raise RuntimeError, saying what to call, when the model is not compiled."""
        if self.optimizer is None or self.loss is None:
            raise RuntimeError(f"{where}: the model is not compiled; call model.compile(optimizer=..., loss=...) first")

    @property
    def fused_sigmoid(self) -> bool:
        """True when the last activation fuses with the loss: then backward starts from dL/dz = (p - y) / N.

        A sigmoid output into a probability BCE, or a softmax output into a probability (sparse)
        categorical cross-entropy (the name is older than the softmax).

        The decision of :func:`minicnn.losses.start_backward`, which ``train_on_batch`` calls.
        """
        return self.loss is not None and losses.fuses_with_last_layer(self.loss, self.layers[-1])

    def owns_memory(self) -> AbstractContextManager[None]:
        """``with model.owns_memory():`` the layers in their fast mode, sharing this model's ``workspace``.

        :func:`minicnn.layers.base.model_owns_memory` for this model; every method of the loop runs inside it.
        """
        return model_owns_memory(self.layers, self.workspace)

    # ---- checking and moving data ------------------------------------------------------
    def check_image_shape(self, where: str, name: str, shape: tuple[int, ...]) -> None:
        """Images must be (N, *input_shape): say which shape the model expects."""
        shape = tuple(shape)
        if len(shape) != len(self.input_shape) + 1 or shape[1:] != self.input_shape:
            raise ValueError(
                f"{where}: {name} must have shape (N, {', '.join(map(str, self.input_shape))}) for model "
                f"{self.name!r}, got {shape}"
            )

    def checked_images(self, where: str, name: str, x: Any) -> Any:
        """``x`` as a numeric array of shape (N, *input_shape) without NaN or infinite values.

        Lists are converted (as Keras does); an array is never copied. The finiteness check
        goes through x a chunk at a time, as it will be cast to the model's dtype.
        """
        x = checks.as_numeric_array(where, name, x)
        self.check_image_shape(where, name, x.shape)
        checks.check_finite(where, name, x, self.dtype)
        return x

    @property
    def num_classes(self) -> int:
        """K, the classes the labels name: the model's outputs per sample for a categorical loss, else 2."""
        if isinstance(self.loss, losses.CategoricalCrossentropy):
            return int(self.output_shape[-1])
        return 2

    def checked_labels(self, where: str, name: str, y: Any, samples: int | None) -> Any:
        """``y`` as a numeric array of the labels the loss takes, one per sample.

        Binary cross-entropy: (N,) or (N, 1) in [0, 1] (exactly 0 or 1 with accuracy). Categorical:
        one-hot rows (N, K). Sparse categorical: class indices (N,) or (N, 1) in [0, K). Mean
        squared error: (N, *output_shape). K is the model's outputs per sample.
        """
        y = checks.as_numeric_array(where, name, y)
        whole = "accuracy" in self.metrics
        if isinstance(self.loss, losses.SparseCategoricalCrossentropy):
            checks.check_class_index_labels(where, name, y, samples, self.num_classes)
        elif isinstance(self.loss, losses.CategoricalCrossentropy):
            checks.check_one_hot_labels(where, name, y, samples, self.num_classes, whole)
        else:
            checks.check_label_shape(where, name, y, samples, self.output_shape)
        if isinstance(self.loss, losses.BinaryCrossentropy):
            checks.check_binary_labels(where, name, y, whole=whole)
        elif isinstance(self.loss, losses.MeanSquaredError):
            checks.check_finite(where, name, y, self.dtype)
        return y

    def checked_class_weight(self, where: str, class_weight: Any, allow_balanced: bool = True) -> Any:
        """class_weight checked for this loss's classes (K for a softmax model); refused with the mean squared error."""
        if class_weight and isinstance(self.loss, losses.MeanSquaredError):
            raise ValueError(f"{where}: class_weight needs class labels, but the loss is the mean squared error")
        return checks.check_class_weight(where, class_weight, allow_balanced, num_classes=self.num_classes)

    def check_source(self, where: str, name: str, source: Any, with_labels: bool = True) -> None:
        """A Batches source: its labels as :meth:`checked_labels` (``with_labels``), its images finite."""
        if not hasattr(source, "__len__"):
            raise TypeError(f"{where}: {name} must be an array or a Batches source, got {checks.describe(source)}")
        labels = getattr(source, "y", None)
        images = getattr(source, "x", None)
        if labels is not None and with_labels:
            self.checked_labels(where, f"{name} (its labels)", labels, len(images) if images is not None else None)
        if images is not None and hasattr(images, "dtype"):
            checks.check_finite(where, f"{name} (its images)", images, self.dtype)

    def prepare_batch(self, x: Any, y: Any = None, where: str = "fit") -> tuple[Any, Any]:
        """Check a host batch's shape and move it to the backend in the model's dtype.

        y becomes (N, *output_shape), e.g. (N, 1); sparse class indices become (N,).
        """
        self.require_built()
        self.check_image_shape(where, "x", x.shape)
        if x.dtype.kind not in "biuf":
            raise TypeError(f"{where}: x must hold int or float numbers, got dtype {x.dtype}")
        x = backend.to_device(x, dtype=self.dtype)
        if y is None:
            return x, None
        if len(y) != len(x):
            raise ValueError(f"{where}: x has {len(x)} samples but y has {len(y)}; give one label per sample")
        y = backend.to_device(y, dtype=self.dtype)
        if isinstance(self.loss, losses.SparseCategoricalCrossentropy):
            return x, y.reshape(len(x))  # one class index per sample (exact in float32 below 2**24)
        return x, y.reshape(len(x), *self.output_shape)

    def sample_weight(self, y: Any, class_weight: dict[int, float] | None) -> Any:
        """Per-sample weights (N,) from a class_weight dict such as {0: 0.67, 1: 1.97}, or None.

        ``y``: (N, 1) or (N,) labels, or one-hot rows (N, K) (categorical), whose label is the argmax.
        """
        if not class_weight:
            return None
        xp = backend.array_module()
        if isinstance(self.loss, losses.CategoricalCrossentropy) and y.ndim == 2 and y.shape[1] > 1:
            labels = y.argmax(axis=1).astype(y.dtype)
        else:
            labels = y.reshape(-1)
        weights = xp.ones_like(labels)
        for label, weight in class_weight.items():
            weights[labels == label] = weight
        return weights

    def batch_metrics(self, output: Any, y: Any) -> dict[str, float]:
        """The compiled metrics of one batch (accuracy comes from :mod:`minicnn.metrics`, as everywhere).

        Binary cross-entropy: p >= 0.5 against 0/1 labels. Categorical (one-hot rows or class
        indices): the most probable class (argmax) against the label.
        """
        results = {}
        if "accuracy" in self.metrics:
            if isinstance(self.loss, losses.CategoricalCrossentropy):
                probabilities = softmax(output) if self.loss.from_logits else output
                results["accuracy"] = metrics.categorical_accuracy(backend.to_numpy(y), backend.to_numpy(probabilities))
            else:
                probabilities = sigmoid(output) if self.loss.from_logits else output
                results["accuracy"] = metrics.binary_accuracy(backend.to_numpy(y), backend.to_numpy(probabilities))
        return results

    # ---- one batch -----------------------------------------------------------------------
    def train_on_batch(self, x: Any, y: Any, class_weight: dict[int, float] | None = None) -> dict[str, float]:
        """One optimiser step on exactly this batch: forward, loss, backward, update.

        Parameters
        ----------
        x : ndarray of shape (N, *input_shape), or nested lists
            A host (NumPy) batch of numbers; cast to the model's dtype and moved to the backend.
        y : ndarray of shape (N,) or (N, 1), or (N, K), or a list
            Labels as the loss takes them: in [0, 1] (binary), class indices (sparse
            categorical), one-hot rows (categorical), targets (mean squared error).
        class_weight : dict of int to float, optional
            Weight of each label's samples in the loss, e.g. {0: 0.67, 1: 1.97}.

        Returns
        -------
        dict of str to float
            {"loss": ..., "accuracy": ...}: the loss before the update, and the compiled metrics.

        Raises
        ------
        TypeError, ValueError
            An argument that cannot be trained on (the message names it).
        TrainingDivergedError
            The loss or a gradient is NaN or infinite; no weight is changed.
        """
        where = "train_on_batch"
        self.require_compiled(where)
        self.require_built()
        x = self.checked_images(where, "x", x)
        y = self.checked_labels(where, "y", y, len(x))
        class_weight = self.checked_class_weight(where, class_weight, allow_balanced=False)
        if len(x) == 0:
            raise ValueError(f"{where}: x holds no samples; pass at least one")
        return self.train_step(x, y, class_weight)

    def train_step(self, x: Any, y: Any, class_weight: dict[int, float] | None) -> dict[str, float]:
        """:meth:`train_on_batch` without its checks of the arguments (``fit`` has made them once)."""
        x, y = self.prepare_batch(x, y, "fit")
        with self.owns_memory():
            output = self.forward(x, training=True)
            loss = self.loss.forward(output, y, self.sample_weight(y, class_weight))
            logs = {"loss": float(loss)}
            if not math.isfinite(logs["loss"]):
                # Stop before the update: the weights in memory (and on disk) stay the last good ones.
                raise TrainingDivergedError(
                    f"the loss became {logs['loss']} (NaN or infinite); training stopped before applying that "
                    "update. Lower the learning rate, or check the inputs for NaN/inf values."
                )
            gradient, from_dz = losses.start_backward(self.loss, self.layers[-1])  # (p - y) / N for sigmoid + BCE
            self.backward(gradient, from_dz=from_dz)
            parameters = self.parameters()
            self.check_gradients(parameters)
            self.optimizer.step(parameters)
            logs.update(self.batch_metrics(output, y))
        return logs

    @staticmethod
    def check_gradients(parameters: list[tuple[str, Any, Any]]) -> None:
        """Raise TrainingDivergedError, before any update, when a gradient holds NaN or infinite values.

        The loss can be finite while a gradient is not (an input so large that it overflows in
        dL/dkernel = x.T @ dz). One sum per gradient, in the gradient's own dtype, finds it: a sum
        is NaN or infinite whenever a value is. No copy is made, and on a GPU the sums are added
        there, so the host waits once per step, not once per array. Only when the total is not
        finite are the arrays looked at value by value (``isfinite``): a float32 sum of finite but
        huge values can overflow by itself, and that alone is not a reason to stop. (A float64
        sum would never overflow, but costs 40 ms for the study's 16.8-million-value Dense kernel
        on a 2-core CPU, against 3 ms in float32: 1 % of a training step.)
        """
        total = None
        with np.errstate(over="ignore", invalid="ignore"):  # an overflow here is what we look for
            for _, _, gradient in parameters:
                if gradient is not None:
                    part = gradient.sum()
                    total = part if total is None else total + part
        if total is None or math.isfinite(float(total)):
            return
        xp = backend.array_module()
        bad = [
            name for name, _, gradient in parameters if gradient is not None and not bool(xp.isfinite(gradient).all())
        ]
        if not bad:  # finite values whose sum overflowed: nothing diverged
            return
        raise TrainingDivergedError(
            f"the gradient of {', '.join(bad)} became NaN or infinite; training stopped before applying that "
            "update, so no weight changed. Lower the learning rate, or check the inputs for very large values."
        )

    def test_on_batch(self, x: Any, y: Any) -> dict[str, float]:
        """Loss and metrics of one batch, without training (the arguments are checked as in ``evaluate``)."""
        where = "test_on_batch"
        self.require_compiled(where)
        self.require_built()
        x = self.checked_images(where, "x", x)
        y = self.checked_labels(where, "y", y, len(x))
        if len(x) == 0:
            raise ValueError(f"{where}: x holds no samples; the loss of nothing is not defined")
        return self.test_step(x, y)

    def test_step(self, x: Any, y: Any) -> dict[str, float]:
        """:meth:`test_on_batch` without its checks of the arguments (``evaluate`` has made them once)."""
        x, y = self.prepare_batch(x, y, "evaluate")
        with self.owns_memory():
            output = self.forward(x, training=False)
            logs = {"loss": float(self.loss.forward(output, y))}
            logs.update(self.batch_metrics(output, y))
        return logs

    # ---- fit / evaluate / predict ----------------------------------------------------------
    def checked_data(self, where: str, x: Any, y: Any, batch_size: int, shuffle: bool) -> Any:
        """(x, y) arrays checked and turned into a Batches source; a Batches source checked and passed through.

        ``y`` must be given with arrays and left out with a source, which yields (x, y) pairs.
        """
        if hasattr(x, "epoch"):
            if y is not None:
                raise ValueError(
                    f"{where}: y must be left out when x is a Batches source (it yields (x, y) pairs), "
                    f"got {checks.describe(y)}"
                )
            self.check_source(where, "x", x)
            return x
        if y is None:
            raise ValueError(
                f"{where}: y is missing; pass the labels (0 = Pneumonia, 1 = Normal) with x, "
                "or a Batches source that yields (x, y) pairs"
            )
        x = self.checked_images(where, "x", x)
        y = self.checked_labels(where, "y", y, len(x))
        return Batches(x, y, batch_size=batch_size, shuffle=shuffle, seed=self.seed, prefetch=False)

    def checked_validation(self, where: str, data: Any, batch_size: int) -> Any:
        """validation_data checked: a Batches source, or an (x_val, y_val) pair made into one."""
        if hasattr(data, "epoch"):
            self.check_source(where, "validation_data", data)
            return data
        if not isinstance(data, (tuple, list)) or len(data) != 2:
            raise TypeError(
                f"{where}: validation_data must be a pair (x_val, y_val) or a Batches source, "
                f"got {checks.describe(data)}"
            )
        x_val = self.checked_images(where, "validation_data x", data[0])
        y_val = self.checked_labels(where, "validation_data y", data[1], len(x_val))
        if len(x_val) == 0:
            raise ValueError(f"{where}: validation_data holds no samples; pass at least one, or None")
        return Batches(x_val, y_val, batch_size=batch_size, shuffle=False, seed=self.seed, prefetch=False)

    def fit(
        self,
        x: Any,
        y: Any = None,
        batch_size: int | None = 32,
        epochs: int = 1,
        verbose: int | str = "auto",
        callbacks: list[Callback] | None = None,
        validation_split: float = 0.0,
        validation_data: Any = None,
        shuffle: bool = True,
        class_weight: dict[int, float] | str | None = None,
        initial_epoch: int | None = None,
    ) -> History:
        """Train for ``epochs`` epochs (counting from ``initial_epoch``); returns the History.

        Every argument is checked before training starts: a value that cannot be trained on
        (no y, NaN pixels, labels outside [0, 1], epochs=2.5 ...) is an error that names it.

        **Resuming.** An epoch that was interrupted (Ctrl-C, a time budget, a diverged step)
        is continued from its next batch only when you ask for it: by passing
        ``initial_epoch`` equal to that epoch, as after ``load_model`` of a checkpoint,
        ``fit(..., initial_epoch=model.completed_epochs)``. Any other fit (``initial_epoch``
        left out, or another epoch), and every ``compile()``, starts its epochs afresh.

        Parameters
        ----------
        x : ndarray of shape (N, H, W, C), nested lists, or Batches
            The training images (host arrays; lists are converted as by ``np.asarray``), or
            a :class:`~minicnn.data.batches.Batches` source that serves (x, y) batches
            (augmented, say); ``y`` must then be left out.
        y : ndarray of shape (N,) or (N, 1), or (N, K), or a list
            The labels, needed with arrays: in [0, 1] for binary cross-entropy (exactly 0 or 1
            with the accuracy metric); class indices in [0, K) for sparse categorical
            cross-entropy; one-hot rows (N, K) for categorical cross-entropy.
        batch_size : int, default 32
            Samples per optimiser step (with arrays); larger than N means one batch of N;
            None means 32, as in Keras.
        epochs : int, default 1
            The epoch number to stop at (so with ``initial_epoch=k``, ``epochs - k`` are run).
        verbose : int or str, one of {"auto", 0, 1, 2}, default "auto"
            0 silent, 1 a progress bar per epoch, 2 one line per epoch; "auto" is 1 when
            stderr is a terminal and 2 otherwise (a log file gets no progress-bar lines).
        callbacks : list of Callback, optional
            Called at the start and end of training, of every epoch and after every batch;
            a :class:`~minicnn.callbacks.History` is always added first.
        validation_split : float, default 0
            Fraction of (x, y) held out from the end, before shuffling (as Keras); it must
            leave at least one sample on each side.
        validation_data : tuple of (x_val, y_val), or Batches, optional
            Evaluated after every epoch: its figures appear in the logs as val_loss, val_accuracy.
        shuffle : bool, default True
            Visit the samples in a new seeded order each epoch (with arrays).
        class_weight : dict of int to float, or "balanced", optional
            {label: weight} for the labels 0 and 1 (0 .. K-1 with a categorical loss), weights
            >= 0; or "balanced" for n_samples / (n_classes * n_label).
        initial_epoch : int, optional
            Epochs already done, to resume (see above); shuffling and dropout continue exactly.
            Left out, training counts from epoch 0.

        Returns
        -------
        History
            ``history.history["val_loss"][k]`` is epoch k's validation loss, and so on.

        Raises
        ------
        TypeError, ValueError
            An argument that cannot be trained on; the message names it and what is allowed.
        TrainingDivergedError
            The loss or a gradient became NaN or infinite; the weights are those of the last
            good step (the bad update is never applied).
        """
        where = "fit"
        self.require_compiled(where)
        self.require_built()
        batch_size = 32 if batch_size is None else checks.check_whole_number(where, "batch_size", batch_size, 1)
        epochs = checks.check_whole_number(where, "epochs", epochs, 1)
        resuming = initial_epoch is not None
        if resuming:
            initial_epoch = checks.check_whole_number(where, "initial_epoch", initial_epoch, 0)
        else:
            initial_epoch = 0
        if epochs <= initial_epoch:
            raise ValueError(
                f"{where}: epochs must be more than initial_epoch (epochs is the epoch to stop at), "
                f"got epochs={epochs} with initial_epoch={initial_epoch}"
            )
        verbose = checks.check_verbose(where, verbose)
        shuffle = checks.check_bool(where, "shuffle", shuffle)
        callbacks = checks.check_list_of(where, "callbacks", [] if callbacks is None else callbacks, Callback)
        validation_split = checks.check_number(where, "validation_split", validation_split, 0, 1, include_high=False)
        class_weight = self.checked_class_weight(where, class_weight)
        if validation_split and hasattr(x, "epoch"):
            raise ValueError(
                f"{where}: validation_split needs arrays, got a Batches source; pass validation_data instead"
            )
        train = self.checked_data(where, x, y, batch_size, shuffle)
        if len(train) == 0:
            raise ValueError(f"{where}: x holds no samples; pass at least one")
        if validation_split:
            if validation_data is not None:
                raise ValueError(f"{where}: validation_split and validation_data were both given; pass one of them")
            samples = len(train.x)
            held_out = int(round(samples * validation_split))
            if held_out == 0 or held_out == samples:
                raise ValueError(
                    f"{where}: validation_split={validation_split:g} of {samples} samples leaves "
                    f"{'no validation' if held_out == 0 else 'no training'} sample; choose a fraction that "
                    "leaves at least one sample on each side"
                )
            split = samples - held_out
            validation_data = (train.x[split:], train.y[split:])
            train = Batches(train.x[:split], train.y[:split], batch_size, shuffle, seed=self.seed, prefetch=False)
        validation = None if validation_data is None else self.checked_validation(where, validation_data, batch_size)
        if verbose == "auto":
            verbose = 1 if sys.stderr.isatty() else 2
        if class_weight == "balanced":
            if getattr(train, "y", None) is None:
                raise ValueError(f"{where}: class_weight='balanced' needs the labels; pass a dict {{0: w0, 1: w1}}")
            class_weight = balanced_class_weight(train.y)
        if not (resuming and self.partial_epoch and self.partial_epoch["epoch"] == initial_epoch):
            self.partial_epoch = None  # the rule in the docstring: continue an epoch only on purpose
        history = History()
        if resuming and initial_epoch and self.history is not None:
            # Resuming: keep the epochs already trained so the history reads as one run.
            history.history = {key: values[:initial_epoch] for key, values in self.history.history.items()}
            history.epoch = self.history.epoch[:initial_epoch]
        self.history = history
        figures = ["loss", *self.metrics]
        # What every epoch's logs will hold, so that callbacks can check their settings before epoch 1.
        self.epoch_log_names = [*figures, *(f"val_{name}" for name in figures if validation is not None), "seconds"]
        callbacks = [history, *callbacks]
        for callback in callbacks:
            callback.set_model(self)
        self.stop_training = False
        with self.owns_memory():
            for callback in callbacks:
                callback.on_train_begin()
            for epoch in range(initial_epoch, epochs):
                for callback in callbacks:
                    callback.on_epoch_begin(epoch)
                started = time.perf_counter()
                logs = self.run_epoch(train, epoch, epochs, class_weight, verbose, callbacks)
                if validation is not None:
                    results = self.evaluate_source(validation, verbose=0)
                    logs.update({f"val_{key}": value for key, value in results.items()})
                logs["seconds"] = time.perf_counter() - started
                self.completed_epochs = epoch + 1
                if verbose:
                    shown = " - ".join(f"{key}: {value:.4f}" for key, value in logs.items() if key != "seconds")
                    print(f"Epoch {epoch + 1}/{epochs} - {logs['seconds']:.1f}s - {shown}", file=sys.stderr)
                for callback in callbacks:
                    callback.on_epoch_end(epoch, logs)
                if self.stop_training:
                    break
            for callback in callbacks:
                callback.on_train_end()
        return history

    def run_epoch(
        self,
        train: Batches,
        epoch: int,
        epochs: int,
        class_weight: dict[int, float] | None,
        verbose: int,
        callbacks: list[Callback],
    ) -> dict[str, float]:
        """One pass over the training batches; returns the sample-weighted mean of each log.

        After every batch, ``self.partial_epoch`` records how far the epoch got, so a checkpoint
        saved mid-epoch (Ctrl-C) resumes at the very next batch.
        """
        resumed = self.partial_epoch if self.partial_epoch and self.partial_epoch["epoch"] == epoch else None
        done = resumed["batches"] if resumed else 0
        totals: dict[str, float] = dict(resumed["totals"]) if resumed else {}
        seen: int = resumed["seen"] if resumed else 0
        with progress_bar(len(train), done, f"Epoch {epoch + 1}/{epochs}", enabled=verbose == 1) as bar:
            for index, (x_batch, y_batch) in enumerate(train.epoch(epoch, start=done), start=done):
                logs = self.train_step(x_batch, y_batch, class_weight)
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

    def evaluate(
        self, x: Any, y: Any = None, batch_size: int = 32, verbose: int = 0, return_dict: bool = False
    ) -> float | list[float] | dict[str, float]:
        """Loss and metrics over all of (x, y), in batches.

        Parameters
        ----------
        x : ndarray of shape (N, H, W, C), nested lists, or Batches
            Images (host arrays), or a Batches source of (x, y) batches (then leave out y).
        y : ndarray of shape (N,) or (N, 1), or (N, K), or a list
            Labels as in :meth:`fit`; needed with arrays.
        batch_size : int, default 32
            Samples per forward pass.
        verbose : int, one of {"auto", 0, 1, 2}, default 0
            1 shows a progress bar.
        return_dict : bool, default False
            Return a dict instead of a number or list.

        Returns
        -------
        float or list of float or dict of str to float
            As Keras: the loss alone when no metric was compiled, else ``[loss, *metrics]``
            in compile order; with ``return_dict=True``, ``{"loss": ..., "accuracy": ...}``.

        Raises
        ------
        TypeError, ValueError
            An argument that cannot be evaluated on (no y, no samples, NaN pixels ...).
        """
        where = "evaluate"
        self.require_compiled(where)
        self.require_built()
        batch_size = 32 if batch_size is None else checks.check_whole_number(where, "batch_size", batch_size, 1)
        verbose = checks.check_verbose(where, verbose)
        return_dict = checks.check_bool(where, "return_dict", return_dict)
        source = self.checked_data(where, x, y, batch_size, shuffle=False)
        if len(source) == 0:
            raise ValueError(f"{where}: x holds no samples; the loss of nothing is not defined")
        results = self.evaluate_source(source, verbose=verbose)
        if return_dict:
            return results
        if not self.metrics:
            return results["loss"]
        return [results["loss"], *(results[name] for name in self.metrics)]

    def evaluate_source(self, source: Any, verbose: int | str = 0) -> dict[str, float]:
        """The sample-weighted mean loss and metrics over a checked Batches source."""
        totals: dict[str, float] = {}
        seen = 0
        with progress_bar(len(source), 0, "evaluate", enabled=verbose == 1) as bar:
            for x_batch, y_batch in source.epoch(0):
                logs = self.test_step(x_batch, y_batch)
                seen += len(x_batch)
                for key, value in logs.items():
                    totals[key] = totals.get(key, 0.0) + value * len(x_batch)
                bar.update(1)
        return {key: total / seen for key, total in totals.items()}

    def predict(self, x: Any, batch_size: int = 32, verbose: int = 0) -> np.ndarray:
        """Outputs (probabilities for a sigmoid or softmax model) for every sample, as a host NumPy array.

        Parameters
        ----------
        x : ndarray of shape (N, H, W, C), nested lists, or Batches
            Images (host arrays, any numeric dtype), or a Batches source. N may be 0.
        batch_size : int, default 32
            Samples per forward pass.
        verbose : int, one of {"auto", 0, 1, 2}, default 0
            1 shows a progress bar.

        Returns
        -------
        numpy.ndarray of shape (N, *output_shape)
            (N, 1) for the study's model: P(Normal) of each image; (N, K) for a softmax model,
            each row the K class probabilities.

        Raises
        ------
        TypeError, ValueError
            Images of the wrong shape or type, or with NaN or infinite values.
        """
        where = "predict"
        self.require_built()
        batch_size = 32 if batch_size is None else checks.check_whole_number(where, "batch_size", batch_size, 1)
        verbose = checks.check_verbose(where, verbose)
        if hasattr(x, "epoch"):
            self.check_source(where, "x", x, with_labels=False)  # predict does not use the labels
            source = x
        else:
            x = self.checked_images(where, "x", x)
            source = Batches(x, np.zeros(len(x), np.float32), batch_size, shuffle=False, prefetch=False)
        outputs = [np.zeros((0, *self.output_shape), dtype=self.dtype)]  # the result for N = 0
        with self.owns_memory(), progress_bar(len(source), 0, "predict", enabled=verbose == 1) as bar:
            for x_batch, _ in source.epoch(0):
                x_batch, _ = self.prepare_batch(x_batch, where=where)
                # .copy(): on NumPy, to_numpy returns the layer's kept buffer, reused by the next batch
                outputs.append(backend.to_numpy(self.forward(x_batch, training=False)).copy())
                bar.update(1)
        return np.concatenate(outputs, axis=0)
