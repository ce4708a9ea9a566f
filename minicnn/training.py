"""The training loop: compile, fit, evaluate, predict, train_on_batch.

One training step (``train_on_batch``) is the whole algorithm of deep learning:

1. forward:  run x through every layer, each keeping what its backward needs;
2. loss:     compare the output with y;
3. backward: run dL/doutput back through the layers in reverse, filling every grads dict;
4. update:   the optimiser moves every parameter a little against its gradient.

:class:`Trainer` holds this loop; :class:`minicnn.Sequential` inherits it, as Keras's
``Model`` inherits its ``Trainer``. It needs from the model: ``layers``, ``forward``,
``backward``, ``parameters`` and the shapes.

Every method here runs the layers in their fast mode (``model_owns_memory``): the loop
owns every array between the layers, so the layers may reuse buffers and overwrite
gradients. The mode is switched off again when the method returns or raises.
"""

from __future__ import annotations

import math
import sys
import time
from typing import Any

import numpy as np

from minicnn import backend, losses, metrics, optimizers
from minicnn.callbacks import Callback, History
from minicnn.data.batches import Batches
from minicnn.functions import sigmoid
from minicnn.layers import Sigmoid
from minicnn.layers.base import model_owns_memory

METRIC_NAMES = {"accuracy": "accuracy", "acc": "accuracy", "binary_accuracy": "accuracy"}


class TrainingDivergedError(FloatingPointError):
    """The loss became NaN or infinite; training stopped before the bad update was applied."""


def balanced_class_weight(labels: Any) -> dict[int, float]:
    """{label: n_samples / (n_classes * n_label)}: rare classes weigh more (sklearn's 'balanced')."""
    labels = np.asarray(backend.to_numpy(labels)).reshape(-1).astype(int)
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


class Trainer:
    """compile / fit / evaluate / predict for a model with ``layers``, ``forward`` and ``backward``."""

    def __init__(self) -> None:
        self.optimizer: optimizers.Optimizer | None = None
        self.loss: losses.BinaryCrossentropy | None = None
        self.metrics: list[str] = []
        self.stop_training = False
        self.completed_epochs = 0
        self.partial_epoch: dict[str, Any] | None = None  # progress inside an interrupted epoch
        self.history: History | None = None

    # ---- compile ---------------------------------------------------------------------
    def compile(
        self,
        optimizer: str | optimizers.Optimizer = "adam",
        loss: str | losses.BinaryCrossentropy = "binary_crossentropy",
        metrics: list[str] | None = None,
    ) -> None:
        """Choose the optimiser, the loss and the metrics reported by fit/evaluate.

        Parameters
        ----------
        optimizer : str or Optimizer, default "adam"
            "adam", "sgd", or an object from :mod:`minicnn.optimizers`.
        loss : str or BinaryCrossentropy, default "binary_crossentropy"
            The loss to minimise: its name, or an object from :mod:`minicnn.losses`
            (``BinaryCrossentropy(from_logits=True)`` for a model without a final sigmoid).
        metrics : list of str, optional
            ["accuracy"] (also spelt "acc" or "binary_accuracy").

        Raises
        ------
        ValueError
            An unknown optimiser, loss or metric name.
        """
        self.optimizer = optimizers.get(optimizer)
        self.loss = losses.get(loss)
        self.metrics = []
        for metric in metrics or []:
            if metric not in METRIC_NAMES:
                raise ValueError(f"unknown metric {metric!r}; choose one of {', '.join(METRIC_NAMES)}")
            self.metrics.append(METRIC_NAMES[metric])

    def get_compile_config(self) -> dict[str, Any] | None:
        """The compile settings as JSON-able data (None before compile)."""
        if self.optimizer is None or self.loss is None:
            return None
        return {"optimizer": self.optimizer.get_config(), "loss": self.loss.get_config(), "metrics": self.metrics}

    def compile_from_config(self, config: dict[str, Any]) -> None:
        """compile() again from :meth:`get_compile_config`'s data."""
        loss_config = dict(config["loss"])
        loss_config.pop("class_name")
        self.compile(
            optimizer=optimizers.from_config(config["optimizer"]),
            loss=losses.BinaryCrossentropy(**loss_config),
            metrics=config["metrics"],
        )

    def require_compiled(self) -> None:
        """Raise RuntimeError, saying what to call, when the model is not compiled."""
        if self.optimizer is None or self.loss is None:
            raise RuntimeError("the model is not compiled: call model.compile(optimizer=..., loss=...) first")

    @property
    def fused_sigmoid(self) -> bool:
        """True when a sigmoid output feeds a probability BCE: then backward starts from dL/dz = (p - y) / N."""
        last = self.layers[-1]
        activation = getattr(last, "activation", last)
        return (
            isinstance(activation, Sigmoid)
            and isinstance(self.loss, losses.BinaryCrossentropy)
            and not self.loss.from_logits
        )

    # ---- checking and moving data ------------------------------------------------------
    def check_labels(self, y: Any, where: str = "y") -> None:
        """Binary cross-entropy needs labels in [0, 1]: name the values found outside.

        Keras trains on labels such as 2 without a word (the loss just becomes meaningless);
        minicnn refuses them on purpose.
        """
        if not isinstance(self.loss, losses.BinaryCrossentropy) or y is None:
            return
        labels = np.asarray(backend.to_numpy(y), dtype=np.float64).reshape(-1)
        outside = ~((labels >= 0) & (labels <= 1))  # also true for NaN
        if outside.any():
            values = np.unique(labels[outside])
            shown = ", ".join(f"{value:g}" for value in values[:10]) + (" ..." if values.size > 10 else "")
            raise ValueError(
                f"binary cross-entropy needs labels in [0, 1]; found {shown} in {where} "
                f"({int(outside.sum())} of {labels.size} labels)"
            )

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
        y = backend.to_device(y, dtype=self.dtype).reshape(x_shape[0], *self.output_shape)
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

    def batch_metrics(self, output: Any, y: Any) -> dict[str, float]:
        """The compiled metrics of one batch (accuracy comes from :mod:`minicnn.metrics`, as everywhere)."""
        results = {}
        if "accuracy" in self.metrics:
            probabilities = sigmoid(output) if self.loss.from_logits else output
            results["accuracy"] = metrics.binary_accuracy(backend.to_numpy(y), backend.to_numpy(probabilities))
        return results

    # ---- one batch -----------------------------------------------------------------------
    def train_on_batch(self, x: Any, y: Any, class_weight: dict[int, float] | None = None) -> dict[str, float]:
        """One optimiser step on exactly this batch: forward, loss, backward, update.

        Parameters
        ----------
        x : ndarray of shape (N, *input_shape)
            A host (NumPy) batch of numbers; cast to the model's dtype and moved to the backend.
        y : ndarray of shape (N,) or (N, 1)
            Labels in [0, 1].
        class_weight : dict of int to float, optional
            Weight of each label's samples in the loss, e.g. {0: 0.67, 1: 1.97}.

        Returns
        -------
        dict of str to float
            {"loss": ..., "accuracy": ...}: the loss before the update, and the compiled metrics.

        Raises
        ------
        TrainingDivergedError
            The loss is NaN or infinite; the update is not applied.
        """
        self.require_compiled()
        x, y = self.prepare_batch(x, y)
        with model_owns_memory(self.layers):
            output = self.forward(x, training=True)
            loss = self.loss.forward(output, y, self.sample_weight(y, class_weight))
            logs = {"loss": float(loss)}
            if not math.isfinite(logs["loss"]):
                # Stop before the update: the weights in memory (and on disk) stay the last good ones.
                raise TrainingDivergedError(
                    f"the loss became {logs['loss']} (NaN or infinite); training stopped before applying that "
                    "update. Lower the learning rate, or check the inputs for NaN/inf values."
                )
            if self.fused_sigmoid:
                self.backward(self.loss.gradient_before_sigmoid(), from_dz=True)
            else:
                self.backward(self.loss.backward())
            self.optimizer.step(self.parameters())
            logs.update(self.batch_metrics(output, y))
        return logs

    def test_on_batch(self, x: Any, y: Any) -> dict[str, float]:
        """Loss and metrics of one batch, without training."""
        self.require_compiled()
        x, y = self.prepare_batch(x, y)
        with model_owns_memory(self.layers):
            output = self.forward(x, training=False)
            logs = {"loss": float(self.loss.forward(output, y))}
            logs.update(self.batch_metrics(output, y))
        return logs

    # ---- fit / evaluate / predict ----------------------------------------------------------
    def as_batches(self, x: Any, y: Any, batch_size: int, shuffle: bool) -> Batches:
        """Arrays become a Batches source; a Batches (or anything with .epoch) passes through."""
        if hasattr(x, "epoch"):
            return x
        if y is None:
            y = np.zeros(len(x), dtype=np.float32)  # predict: labels unused
        return Batches(x, y, batch_size=batch_size, shuffle=shuffle, seed=self.seed, prefetch=False)

    @staticmethod
    def split_xy(data: Any) -> tuple[Any, Any]:
        """validation_data: a Batches source, or an (x, y) pair."""
        return (data, None) if hasattr(data, "epoch") else (data[0], data[1])

    def fit(
        self,
        x: Any,
        y: Any = None,
        batch_size: int = 32,
        epochs: int = 1,
        verbose: int | str = "auto",
        callbacks: list[Callback] | None = None,
        validation_split: float = 0.0,
        validation_data: Any = None,
        shuffle: bool = True,
        class_weight: dict[int, float] | str | None = None,
        initial_epoch: int = 0,
    ) -> History:
        """Train for ``epochs`` epochs (counting from ``initial_epoch``); returns the History.

        Parameters
        ----------
        x : ndarray of shape (N, H, W, C), or Batches
            The training images (host arrays), or a :class:`~minicnn.data.batches.Batches`
            source that serves (x, y) batches (augmented, say); ``y`` is then ignored.
        y : ndarray of shape (N,) or (N, 1), optional
            The labels, in [0, 1]; needed with arrays.
        batch_size : int, default 32
            Samples per optimiser step (with arrays).
        epochs : int, default 1
            The epoch number to stop at (so with ``initial_epoch=k``, ``epochs - k`` are run).
        verbose : int or str, one of {"auto", 0, 1, 2}, default "auto"
            0 silent, 1 a progress bar per epoch, 2 one line per epoch; "auto" is 1 when
            stderr is a terminal and 2 otherwise (a log file gets no progress-bar lines).
        callbacks : list of Callback, optional
            Called at the start and end of training, of every epoch and after every batch;
            a :class:`~minicnn.callbacks.History` is always added first.
        validation_split : float, default 0
            Fraction of (x, y) held out from the end, before shuffling (as Keras).
        validation_data : tuple of (x_val, y_val), or Batches, optional
            Evaluated after every epoch: its figures appear in the logs as val_loss, val_accuracy.
        shuffle : bool, default True
            Visit the samples in a new seeded order each epoch (with arrays).
        class_weight : dict of int to float, or "balanced", optional
            {label: weight}, or "balanced" for n_samples / (2 * n_label).
        initial_epoch : int, default 0
            Epochs already done (to resume); shuffling and dropout continue exactly.

        Returns
        -------
        History
            ``history.history["val_loss"][k]`` is epoch k's validation loss, and so on.

        Raises
        ------
        ValueError
            Labels outside [0, 1], a validation_split outside (0, 1), or data of the wrong shape.
        TrainingDivergedError
            The loss became NaN or infinite; the weights are those of the last good step.
        """
        self.require_compiled()
        if verbose == "auto":
            verbose = 1 if sys.stderr.isatty() else 2
        if validation_split:
            if hasattr(x, "epoch"):
                raise ValueError("validation_split needs arrays; pass validation_data with a Batches source")
            if not 0.0 < validation_split < 1.0:
                raise ValueError(f"validation_split must be in (0, 1), got {validation_split}")
            split = len(x) - int(round(len(x) * validation_split))
            validation_data = (x[split:], y[split:])
            x, y = x[:split], y[:split]
        train = self.as_batches(x, y, batch_size, shuffle)
        self.check_labels(getattr(train, "y", None), "the training labels")
        if validation_data is not None:
            validation_source, validation_y = self.split_xy(validation_data)
            if validation_y is None:
                validation_y = getattr(validation_source, "y", None)
            self.check_labels(validation_y, "the validation labels")
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
        with model_owns_memory(self.layers):
            for callback in callbacks:
                callback.on_train_begin()
            for epoch in range(initial_epoch, epochs):
                for callback in callbacks:
                    callback.on_epoch_begin(epoch)
                started = time.perf_counter()
                logs = self.run_epoch(train, epoch, epochs, class_weight, verbose, callbacks)
                if validation_data is not None:
                    validation = self.evaluate(
                        *self.split_xy(validation_data), batch_size=batch_size, verbose=0, return_dict=True
                    )
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

    def evaluate(
        self, x: Any, y: Any = None, batch_size: int = 32, verbose: int = 0, return_dict: bool = False
    ) -> float | list[float] | dict[str, float]:
        """Loss and metrics over all of (x, y), in batches.

        Parameters
        ----------
        x : ndarray of shape (N, H, W, C), or Batches
            Images (host arrays), or a Batches source of (x, y) batches.
        y : ndarray of shape (N,) or (N, 1), optional
            Labels in [0, 1]; needed with arrays.
        batch_size : int, default 32
            Samples per forward pass.
        verbose : int, default 0
            1 shows a progress bar.
        return_dict : bool, default False
            Return a dict instead of a number or list.

        Returns
        -------
        float or list of float or dict of str to float
            As Keras: the loss alone when no metric was compiled, else ``[loss, *metrics]``
            in compile order; with ``return_dict=True``, ``{"loss": ..., "accuracy": ...}``.
        """
        self.require_compiled()
        source = self.as_batches(x, y, batch_size, shuffle=False)
        self.check_labels(getattr(source, "y", None))
        totals: dict[str, float] = {}
        seen = 0
        with progress_bar(len(source), 0, "evaluate", enabled=verbose == 1) as bar:
            for x_batch, y_batch in source.epoch(0):
                logs = self.test_on_batch(x_batch, y_batch)
                seen += len(x_batch)
                for key, value in logs.items():
                    totals[key] = totals.get(key, 0.0) + value * len(x_batch)
                bar.update(1)
        results = {key: total / seen for key, total in totals.items()}
        if return_dict:
            return results
        if not self.metrics:
            return results["loss"]
        return [results["loss"], *(results[name] for name in self.metrics)]

    def predict(self, x: Any, batch_size: int = 32, verbose: int = 0) -> np.ndarray:
        """Outputs (probabilities for a sigmoid model) for every sample, as a host NumPy array.

        Parameters
        ----------
        x : ndarray of shape (N, H, W, C), or Batches
            Images (host arrays, any numeric dtype), or a Batches source.
        batch_size : int, default 32
            Samples per forward pass.
        verbose : int, default 0
            1 shows a progress bar.

        Returns
        -------
        numpy.ndarray of shape (N, 1)
            For the study's model: P(Normal) of each image.
        """
        source = self.as_batches(x, None, batch_size, shuffle=False)
        outputs = []
        with model_owns_memory(self.layers), progress_bar(len(source), 0, "predict", enabled=verbose == 1) as bar:
            for x_batch, _ in source.epoch(0):
                x_batch, _ = self.prepare_batch(x_batch)
                # .copy(): on NumPy, to_numpy returns the layer's kept buffer, reused by the next batch
                outputs.append(backend.to_numpy(self.forward(x_batch, training=False)).copy())
                bar.update(1)
        return np.concatenate(outputs, axis=0)
