"""Callbacks: code that ``fit`` calls at the start and end of training and of every epoch.

Each callback gets ``self.model`` before training starts. ``logs`` is the dict of the
epoch's figures: loss, accuracy, val_loss, val_accuracy, seconds.
"""

from __future__ import annotations

import csv
import io
import math
import os
import signal
import string
from pathlib import Path
from typing import Any

import numpy as np

from minicnn import checks, files


class Callback:
    """Base class: override the hooks you need.

    ``epoch`` and ``batch`` count from 0. The hooks run in this order: on_train_begin; for
    each epoch on_epoch_begin, on_train_batch_end after every batch, on_epoch_end; then
    on_train_end (also when a callback stops training early).
    """

    model: Any = None

    def set_model(self, model: Any) -> None:
        """Called by ``fit`` before training: the model the hooks can reach as ``self.model``."""
        self.model = model

    def on_train_begin(self, logs: dict[str, float] | None = None) -> None:
        """Called once, before the first epoch."""

    def on_epoch_begin(self, epoch: int, logs: dict[str, float] | None = None) -> None:
        """Called at the start of epoch ``epoch``."""

    def on_train_batch_end(self, batch: int, logs: dict[str, float]) -> None:
        """Called after every optimiser step; ``logs`` holds that batch's loss and metrics."""

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> None:
        """Called after every epoch with its figures: loss, accuracy, val_loss, val_accuracy, seconds."""

    def on_train_end(self, logs: dict[str, float] | None = None) -> None:
        """Called once, after the last epoch."""


class History(Callback):
    """Records every epoch's logs: ``history.history["val_loss"][k]`` is epoch k's validation loss."""

    def __init__(self) -> None:
        self.history: dict[str, list[float]] = {}
        self.epoch: list[int] = []

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> None:
        """Append every figure of the epoch to its list."""
        self.epoch.append(epoch)
        for key, value in logs.items():
            self.history.setdefault(key, []).append(value)


class Monitor:
    """Tracks the best value of one log entry ('min' for losses, 'max' for accuracies).

    Parameters
    ----------
    monitor : str
        The log entry, e.g. "val_loss".
    mode : str, one of {"auto", "min", "max"}
        Whether lower or higher is better; "auto" takes "max" for names with "acc" in them.
    min_delta : float, default 0.0
        How much better a value must be to count as an improvement.
    best : float, optional
        The best value so far; by default +inf ("min") or -inf ("max").
    """

    def __init__(
        self, monitor: str, mode: str, min_delta: float = 0.0, best: float | None = None, where: str = "Monitor"
    ) -> None:
        if not isinstance(monitor, str) or not monitor:
            raise TypeError(f"{where}: monitor must be the name of a log entry such as 'val_loss', got {monitor!r}")
        checks.check_choice(where, "mode", mode, ("auto", "min", "max"))
        if mode == "auto":
            mode = "max" if "acc" in monitor else "min"
        self.monitor, self.mode = monitor, mode
        self.min_delta = abs(checks.check_number(where, "min_delta", min_delta))
        if best is None:
            best = math.inf if mode == "min" else -math.inf
        elif not checks.is_real_number(best):
            raise TypeError(f"{where}: initial_value_threshold must be a number or None, got {checks.describe(best)}")
        self.best = float(best)
        self.where = where

    def check_available(self, names: list[str] | None) -> None:
        """Before training: the monitored entry must be among ``names``, the entries fit's logs will hold.

        Raises
        ------
        ValueError
            It is not (``val_loss`` without validation data, a misspelt name).
        """
        if names is not None and self.monitor not in names:
            raise ValueError(
                f"{self.where}: monitor {self.monitor!r} will not be in the logs of this fit, which hold "
                f"{', '.join(names)}; val_ entries need validation_data or validation_split"
            )

    def value(self, logs: dict[str, float]) -> float:
        """The monitored entry of ``logs``; a KeyError that lists the entries there is when it is missing."""
        if self.monitor not in logs:
            raise KeyError(
                f"cannot monitor {self.monitor!r}: the logs only have {sorted(logs)} "
                "(val_ entries need validation data)"
            )
        return logs[self.monitor]

    def improved(self, logs: dict[str, float]) -> bool:
        """True (and remember it) when this epoch beats the best so far by more than min_delta."""
        value = self.value(logs)
        better = value < self.best - self.min_delta if self.mode == "min" else value > self.best + self.min_delta
        if better:
            self.best = value
        return better


class EarlyStopping(Callback):
    """Stop after ``patience`` epochs in a row in which ``monitor`` did not improve (Keras's rule).

    With ``restore_best_weights=True`` the model ends with the weights of its best epoch.

    Parameters
    ----------
    monitor : str, default "val_loss"
        The log entry to watch.
    patience : int, default 0
        Epochs in a row without improvement before training stops.
    min_delta : float, default 0.0
        How much better a value must be to count as an improvement.
    mode : str, one of {"auto", "min", "max"}, default "auto"
        Whether lower or higher is better ("auto": "max" for accuracies, else "min").
    restore_best_weights : bool, default False
        At the end of training, set the weights of the best epoch.
    """

    def __init__(
        self,
        monitor: str = "val_loss",
        patience: int = 0,
        min_delta: float = 0.0,
        mode: str = "auto",
        restore_best_weights: bool = False,
    ) -> None:
        self.tracker = Monitor(monitor, mode, min_delta, where="EarlyStopping")
        self.patience = checks.check_whole_number("EarlyStopping", "patience", patience, 0)
        self.restore_best_weights = checks.check_bool("EarlyStopping", "restore_best_weights", restore_best_weights)
        self.best_weights: list[np.ndarray] | None = None
        self.best_epoch = -1
        self.stopped_epoch: int | None = None

    def on_train_begin(self, logs: dict[str, float] | None = None) -> None:
        """Check that the monitored entry will be logged; start counting epochs without improvement from 0."""
        self.tracker.check_available(getattr(self.model, "epoch_log_names", None))
        self.wait = 0

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> None:
        """Remember an improvement (and its weights); stop the model after ``patience`` epochs without one."""
        if self.tracker.improved(logs):
            self.wait, self.best_epoch = 0, epoch
            if self.restore_best_weights:
                self.best_weights = self.model.get_weights()
            return
        self.wait += 1
        if self.wait >= self.patience:  # as Keras: `patience` epochs in a row without improvement
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def on_train_end(self, logs: dict[str, float] | None = None) -> None:
        """Set the best epoch's weights, with ``restore_best_weights``."""
        if self.restore_best_weights and self.best_weights is not None:
            self.model.set_weights(self.best_weights)


class ModelCheckpoint(Callback):
    """Save the model (weights, optimizer state, epoch) after each epoch, atomically.

    ``filepath`` may contain ``{epoch}`` (1-based) and log names, e.g.
    "ckpt-{epoch:02d}-{val_loss:.3f}.npz". With ``save_best_only`` a file is written only
    when ``monitor`` improves, so the file always holds the best model so far;
    ``initial_value_threshold`` is the best value already reached (when resuming).

    Parameters
    ----------
    filepath : str or os.PathLike
        Where to write; may hold ``{epoch}`` and log names as format fields.
    monitor : str, default "val_loss"
        The log entry that decides what "best" is.
    save_best_only : bool, default False
        Write only when ``monitor`` improves.
    save_weights_only : bool, default False
        Write the weights alone (``model.save_weights``), not a full checkpoint (``model.save``).
    mode : str, one of {"auto", "min", "max"}, default "auto"
        Whether lower or higher is better.
    initial_value_threshold : float, optional
        The best value reached before (a resumed run); only better ones are saved.
    """

    def __init__(
        self,
        filepath: str | os.PathLike,
        monitor: str = "val_loss",
        save_best_only: bool = False,
        save_weights_only: bool = False,
        mode: str = "auto",
        initial_value_threshold: float | None = None,
    ) -> None:
        where = "ModelCheckpoint"
        if not isinstance(filepath, (str, os.PathLike)):
            raise TypeError(f"{where}: filepath must be a str or a path, got {checks.describe(filepath)}")
        files.check_model_path(where, filepath)  # a Keras name is refused now, not after the first epoch
        self.filepath = str(filepath)
        self.save_best_only = checks.check_bool(where, "save_best_only", save_best_only)
        self.save_weights_only = checks.check_bool(where, "save_weights_only", save_weights_only)
        self.tracker = Monitor(monitor, mode, best=initial_value_threshold, where=where)
        try:
            self.fields = [field for _, field, _, _ in string.Formatter().parse(self.filepath) if field is not None]
        except ValueError as error:
            raise ValueError(f"{where}: filepath {self.filepath!r} is not a valid format string ({error})") from None
        if "" in self.fields or any(field.isdigit() for field in self.fields):
            raise ValueError(f"{where}: filepath {self.filepath!r} may only hold named fields such as {{epoch}}")

    def on_train_begin(self, logs: dict[str, float] | None = None) -> None:
        """Check, before epoch 1, that every field of ``filepath`` and the monitored entry will be logged."""
        names = getattr(self.model, "epoch_log_names", None)
        if self.save_best_only:
            self.tracker.check_available(names)
        if names is None:
            return
        for field in self.fields:
            base = field.split(".")[0].split("[")[0]
            if base != "epoch" and base not in names:
                raise ValueError(
                    f"ModelCheckpoint: filepath field {{{base}}} will not be in the logs of this fit, which hold "
                    f"epoch, {', '.join(names)}; val_ entries need validation_data or validation_split"
                )

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> None:
        """Write the model (or its weights) to ``filepath``, unless ``save_best_only`` and no improvement."""
        if self.save_best_only and not self.tracker.improved(logs):
            return
        path = self.filepath.format(epoch=epoch + 1, **logs)
        if self.save_weights_only:
            self.model.save_weights(path)
        else:
            self.model.save(path)


class CSVLogger(Callback):
    """Append one row per epoch to a CSV file: epoch (1-based) and every log entry.

    Each row is flushed at the end of its epoch, so a crash loses no finished epoch.

    Parameters
    ----------
    filename : str or os.PathLike
        The CSV file; its folder is created.
    append : bool, default False
        Keep the rows already in the file (a resumed run), else start a new file.
    """

    def __init__(self, filename: str | os.PathLike, append: bool = False) -> None:
        if not isinstance(filename, (str, os.PathLike)):
            raise TypeError(f"CSVLogger: filename must be a str or a path, got {checks.describe(filename)}")
        self.path = Path(filename)
        self.append = checks.check_bool("CSVLogger", "append", append)

    def on_train_begin(self, logs: dict[str, float] | None = None) -> None:
        """Create the folder; remove the old file unless appending, else read its columns."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if not self.append and self.path.exists():
            self.path.unlink()
        self.columns: list[str] | None = None
        if self.path.exists() and self.path.stat().st_size > 0:
            with self.path.open(newline="") as file:
                self.columns = next(csv.reader(file))

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> None:
        """Append the epoch's row (with a header line first in a new file).

        When a resumed run logs entries the file has no column for (``val_loss``, once validation
        data is added), the file is rewritten once, atomically, with the new columns at the end
        and the earlier rows left empty there: no figure is dropped.
        """
        row = {"epoch": epoch + 1, **logs}
        new_file = self.columns is None
        if new_file:
            self.columns = list(row)
        elif any(key not in self.columns for key in row):
            self.add_columns([key for key in row if key not in self.columns])
        with self.path.open("a", newline="") as file:
            writer = csv.DictWriter(file, fieldnames=self.columns, extrasaction="ignore")
            if new_file:
                writer.writeheader()
            writer.writerow(row)
            file.flush()  # a crash later must not lose the rows of finished epochs

    def add_columns(self, new_columns: list[str]) -> None:
        """Rewrite the file with ``new_columns`` after its own, the old rows empty there."""
        with self.path.open(newline="") as file:
            rows = list(csv.DictReader(file))
        self.columns = [*self.columns, *new_columns]
        text = io.StringIO(newline="")
        writer = csv.DictWriter(text, fieldnames=self.columns)
        writer.writeheader()
        writer.writerows(rows)
        content = text.getvalue().encode()
        files.write_atomic(self.path, lambda file: file.write(content))


class InterruptAtBatchEnd(Callback):
    """Turn the first Ctrl-C into a clean stop at the end of the current batch.

    Python raises KeyboardInterrupt wherever it happens to be, possibly halfway through
    an optimiser update, leaving some parameters stepped and others not. This callback
    only notes the request and raises at the next batch boundary, where the model,
    the optimiser and ``model.partial_epoch`` agree, so the checkpoint saved then
    resumes exactly. A second Ctrl-C interrupts at once, as usual.
    """

    def on_train_begin(self, logs: dict[str, float] | None = None) -> None:
        """Install the Ctrl-C handler."""
        self.requested = False
        self.previous_handler = signal.signal(signal.SIGINT, self.request)

    def request(self, signum: int, frame: object) -> None:
        """The SIGINT handler: note the request; a second Ctrl-C gets the previous handler."""
        self.requested = True
        signal.signal(signal.SIGINT, self.previous_handler)

    def on_train_batch_end(self, batch: int, logs: dict[str, float]) -> None:
        """Raise KeyboardInterrupt here, at a batch boundary, when Ctrl-C was pressed."""
        if self.requested:
            self.restore_handler()
            raise KeyboardInterrupt

    def on_train_end(self, logs: dict[str, float] | None = None) -> None:
        """Put the previous Ctrl-C handler back."""
        self.restore_handler()

    def restore_handler(self) -> None:
        """Put the SIGINT handler back as it was before training."""
        signal.signal(signal.SIGINT, self.previous_handler)
