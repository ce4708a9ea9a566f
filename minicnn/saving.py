"""Loading models and checkpoints (writing them is ``Sequential.save``; the file format is :mod:`minicnn.files`).

* ``load_model``: rebuild a model from a file written by ``model.save``: the architecture,
  the weights, the optimiser state, each layer's state (Dropout's mask counter), the
  completed epochs, the position inside an interrupted epoch, and the history.
* ``save_model``, ``save_weights``, ``load_weights``: the same as the model's methods of
  those names, as functions (Keras has both forms).

This file sits above the model (it builds one), and the model writes its own files with
:mod:`minicnn.files`, below both: every import points one way, saving -> model -> files.
Files written by earlier versions of minicnn keep loading (a layer class renamed since,
such as ``Linear``, is read under its new name).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from minicnn import files
from minicnn.callbacks import History
from minicnn.model import Sequential


def save_model(model: Sequential, path: str | Path, include_optimizer: bool = True) -> Path:
    """Write everything needed to resume training exactly: :meth:`Sequential.save`, as a function."""
    return model.save(path, include_optimizer=include_optimizer)


def save_weights(model: Sequential, path: str | Path) -> Path:
    """Write the parameters (and the architecture, for checking): :meth:`Sequential.save_weights`, as a function."""
    return model.save_weights(path)


def load_weights(model: Sequential, path: str | Path) -> None:
    """Load parameters into ``model``: :meth:`Sequential.load_weights`, as a function."""
    model.load_weights(path)


def load_model(path: str | Path) -> Sequential:
    """Rebuild a model saved with :meth:`Sequential.save`, with its optimiser and training state when present.

    Parameters
    ----------
    path : str or os.PathLike
        A file written by ``model.save`` or ``model.save_weights``.

    Returns
    -------
    Sequential
        The model with its weights; compiled, with its optimiser state, completed epochs and
        history, when the file holds them.

    Raises
    ------
    ModelFileError
        The file is missing, not a minicnn model file, or its architecture cannot be read.
    """
    arrays = files.read_npz(path)
    weights = files.entries_under(arrays, files.WEIGHTS)
    stored_shapes = {name: value.shape for name, value in weights.items()}
    try:
        # The config is checked against the file's own arrays before any layer allocates a parameter.
        model = Sequential.from_config(files.decode_json(arrays["config"]), stored_shapes)
        model.set_named_weights(weights, source="its weights")
        if "state" in arrays:
            states = files.decode_json(arrays["state"])
            for layer in model.layers:
                layer.set_state(states.get(layer.name, {}))
        if "training" in arrays:
            restore_training_state(model, files.decode_json(arrays["training"]))
        optimizer_state = files.entries_under(arrays, files.OPTIMIZER)
        if optimizer_state and model.optimizer is not None:
            check_optimizer_state(model, optimizer_state)
            model.optimizer.set_state(optimizer_state)
    except (KeyError, TypeError, ValueError, AttributeError, json.JSONDecodeError) as error:
        # ModelFileError is a ValueError too: every problem is reported with the file's name.
        reason = f"the entry {error} is missing" if isinstance(error, KeyError) else str(error)
        raise files.ModelFileError(f"load_model: {path}: {reason}") from error
    return model


def check_optimizer_state(model: Sequential, state: dict[str, np.ndarray]) -> None:
    """Every optimiser slot ("m/conv2d/kernel") must have the shape of its parameter; a step counter must be there.

    Raises
    ------
    ModelFileError
        A slot of another shape, or of a parameter the model does not have.
    """
    shapes = {name: tuple(value.shape) for name, value, _ in model.parameters()}
    for key, value in state.items():
        if key == "iterations":
            continue
        _, _, name = key.partition("/")
        if shapes.get(name) != tuple(value.shape):
            raise files.ModelFileError(
                f"the optimiser slot {key!r} has shape {tuple(value.shape)}, but the model's parameter {name!r} "
                f"has {shapes.get(name, 'no shape: there is none')}"
            )
    if "iterations" not in state:
        raise files.ModelFileError("the optimiser state has no step counter ('optimizer/iterations')")


def restore_training_state(model: Sequential, training: dict[str, Any]) -> None:
    """Completed epochs, the position inside an interrupted epoch, and the history."""
    model.completed_epochs = int(training["completed_epochs"])
    model.partial_epoch = training.get("partial_epoch")
    model.history = History()
    model.history.history = training["history"]
    model.history.epoch = list(range(len(next(iter(training["history"].values()), []))))
