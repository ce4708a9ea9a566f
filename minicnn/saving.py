"""Saving and loading models and checkpoints (the file format itself is in :mod:`minicnn.io`).

* ``save_model``: everything needed to resume training exactly: the architecture, the
  weights, the optimiser state, each layer's state (Dropout's mask counter), the
  completed epochs, the position inside an interrupted epoch, and the history.
* ``save_weights`` / ``load_weights``: the parameters only (plus the architecture, so
  a file that does not fit is refused with the names that differ).
* ``load_model``: rebuild a model from a file written by ``save_model``.

Every write is atomic; files written by earlier versions of minicnn keep loading.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from minicnn import io
from minicnn.callbacks import History
from minicnn.model import Sequential


def model_arrays(model: Sequential) -> dict[str, np.ndarray]:
    """The entries every minicnn model file has: format, config and ``weights/<layer>/<param>``."""
    arrays = {"format": np.array(io.FORMAT), "config": io.encode_json(model.get_config())}
    arrays.update({f"weights/{name}": value for name, value in model.get_named_weights().items()})
    return arrays


def save_weights(model: Sequential, path: str | Path) -> Path:
    """Write the parameters (and the architecture, for checking) to ``path`` atomically."""
    return io.write_npz_atomic(path, model_arrays(model))


def load_weights(model: Sequential, path: str | Path) -> None:
    """Load parameters written by save_weights/save_model; names and shapes must match ``model``."""
    arrays = io.read_npz(path)
    weights = {key[len("weights/") :]: value for key, value in arrays.items() if key.startswith("weights/")}
    model.set_named_weights(weights, source=f"weights in {path}")


def save_model(model: Sequential, path: str | Path, include_optimizer: bool = True) -> Path:
    """Write everything needed to resume training exactly to ``path`` atomically.

    Parameters
    ----------
    model : Sequential
        A built model.
    path : str or os.PathLike
        The ``.npz`` file to write or replace.
    include_optimizer : bool, default True
        Also store the optimiser's step counter and slots (needed to resume exactly).

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    arrays = model_arrays(model)
    arrays["state"] = io.encode_json({layer.name: layer.get_state() for layer in model.layers})
    history = model.history.history if model.history is not None else {}
    arrays["training"] = io.encode_json(
        {"completed_epochs": model.completed_epochs, "history": history, "partial_epoch": model.partial_epoch}
    )
    if include_optimizer and model.optimizer is not None:
        arrays.update({f"optimizer/{key}": np.asarray(value) for key, value in model.optimizer.get_state().items()})
    return io.write_npz_atomic(path, arrays)


def load_model(path: str | Path) -> Sequential:
    """Rebuild a model saved with :func:`save_model`, with its optimiser and training state when present.

    Parameters
    ----------
    path : str or os.PathLike
        A file written by :func:`save_model` or :func:`save_weights`.

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
    arrays = io.read_npz(path)
    stored_shapes = {key[len("weights/") :]: value.shape for key, value in arrays.items() if key.startswith("weights/")}
    try:
        # The config is checked against the file's own arrays before any layer allocates a parameter.
        model = Sequential.from_config(io.decode_json(arrays["config"]), stored_shapes)
        model.set_named_weights({name: arrays[f"weights/{name}"] for name in stored_shapes}, source="its weights")
        if "state" in arrays:
            states = io.decode_json(arrays["state"])
            for layer in model.layers:
                layer.set_state(states.get(layer.name, {}))
        if "training" in arrays:
            restore_training_state(model, io.decode_json(arrays["training"]))
        optimizer_state = {
            key[len("optimizer/") :]: value for key, value in arrays.items() if key.startswith("optimizer/")
        }
        if optimizer_state and model.optimizer is not None:
            check_optimizer_state(model, optimizer_state)
            model.optimizer.set_state(optimizer_state)
    except (KeyError, TypeError, ValueError, AttributeError, json.JSONDecodeError) as error:
        # ModelFileError is a ValueError too: every problem is reported with the file's name.
        reason = f"the entry {error} is missing" if isinstance(error, KeyError) else str(error)
        raise io.ModelFileError(f"load_model: {path}: {reason}") from error
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
            raise io.ModelFileError(
                f"the optimiser slot {key!r} has shape {tuple(value.shape)}, but the model's parameter {name!r} "
                f"has {shapes.get(name, 'no shape: there is none')}"
            )
    if "iterations" not in state:
        raise io.ModelFileError("the optimiser state has no step counter ('optimizer/iterations')")


def restore_training_state(model: Sequential, training: dict[str, Any]) -> None:
    """Completed epochs, the position inside an interrupted epoch, and the history."""
    model.completed_epochs = int(training["completed_epochs"])
    model.partial_epoch = training.get("partial_epoch")
    model.history = History()
    model.history.history = training["history"]
    model.history.epoch = list(range(len(next(iter(training["history"].values()), []))))
