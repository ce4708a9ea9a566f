"""Saving and loading: one ``.npz`` file per model, no pickle.

An ``.npz`` is a zip of ``.npy`` arrays. We store:

* ``format``            the string "minicnn-1", so foreign files are recognised;
* ``config``            the architecture (and compile settings) as a JSON string;
* ``weights/<layer>/<param>``  every parameter;
* ``state``             JSON of non-trainable layer state (e.g. Dropout's mask counter);
* ``optimizer/...``     optimiser slots and step counter (checkpoints only);
* ``training``          JSON with the completed epochs and the history (checkpoints only).

Strings are stored as NumPy unicode arrays, so ``np.load(..., allow_pickle=False)``
reads everything: loading a file can never run code.

Writes are atomic: the file is written under a temporary name in the same folder,
flushed to disk, then renamed over the target. A crash mid-write leaves the old
file untouched, never half a checkpoint.
"""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import numpy

FORMAT = "minicnn-1"


class ModelFileError(ValueError):
    """A model file is missing, corrupt, foreign, or does not fit the model."""


def encode_json(value: Any) -> numpy.ndarray:
    """A JSON-able value as a 0-d unicode array (loadable without pickle)."""
    return numpy.array(json.dumps(value))


def decode_json(array: numpy.ndarray) -> Any:
    return json.loads(str(array))


def write_npz_atomic(path: str | os.PathLike, arrays: dict[str, numpy.ndarray]) -> Path:
    """Write ``arrays`` to ``path`` (.npz) so that readers see either the old or the new file, never a mix."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as file:
            numpy.savez(file, **arrays)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        # Also on Ctrl-C: never leave the temporary file behind.
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def read_npz(path: str | os.PathLike) -> dict[str, numpy.ndarray]:
    """Read a minicnn ``.npz`` into a dict, with an error that names the file when it is not one."""
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"model file not found: {path}")
    try:
        with numpy.load(path, allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in archive.files}
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as error:
        raise ModelFileError(f"{path} is not a readable .npz file (corrupt or truncated?): {error}") from error
    if "format" not in arrays or str(arrays["format"]) != FORMAT:
        found = str(arrays["format"]) if "format" in arrays else "no 'format' entry"
        raise ModelFileError(f"{path} is not a minicnn model file (expected format {FORMAT!r}, found {found})")
    return arrays
