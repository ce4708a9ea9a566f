"""Model files and atomic writes: one ``.npz`` file per model, no pickle.

(This file was ``minicnn/io.py``, a name that shadowed the standard library's ``io``.)

An ``.npz`` is a zip of ``.npy`` arrays. We store:

* ``format``            the string "minicnn-1", so foreign files are recognised;
* ``config``            the architecture (and compile settings) as a JSON string;
* ``weights/<layer>/<param>``  every parameter;
* ``state``             JSON of non-trainable layer state (e.g. Dropout's mask counter);
* ``optimizer/...``     optimiser slots and step counter (checkpoints only);
* ``training``          JSON with the completed epochs and the history (checkpoints only).

``Sequential.file_arrays`` (minicnn/model.py) makes these entries and ``Sequential.save``
writes them; ``minicnn.saving.load_model`` reads them back into a model.

Strings are stored as NumPy unicode arrays, so ``np.load(..., allow_pickle=False)``
reads everything: loading a file can never run code.

Writes are atomic (:func:`write_atomic`, which every file writer in minicnn uses:
models, checkpoints, the decode cache, the plots): the file is written under a
temporary name in the same folder, flushed to disk, then renamed over the target.
A crash mid-write leaves the old file untouched, never half a checkpoint.
"""

from __future__ import annotations

import json
import math
import os
import uuid
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

FORMAT = "minicnn-1"
"""The ``format`` entry of every minicnn model file."""


WEIGHTS = "weights/"
"""The prefix of the parameter entries: ``weights/conv2d/kernel``."""

OPTIMIZER = "optimizer/"
"""The prefix of the optimiser entries: ``optimizer/iterations``, ``optimizer/m/conv2d/kernel``."""


class ModelFileError(ValueError):
    """A model file is missing, corrupt, foreign, or does not fit the model."""


def entries_under(arrays: dict[str, np.ndarray], prefix: str) -> dict[str, np.ndarray]:
    """The entries whose name starts with ``prefix``, keyed by the rest: {"conv2d/kernel": ...} for ``WEIGHTS``."""
    return {key[len(prefix) :]: value for key, value in arrays.items() if key.startswith(prefix)}


def encode_json(value: Any) -> np.ndarray:
    """A JSON-able value as a 0-d unicode array (loadable without pickle)."""
    return np.array(json.dumps(value))


def decode_json(array: np.ndarray) -> Any:
    """The value :func:`encode_json` stored."""
    return json.loads(str(array))


KERAS_SUFFIXES = (".keras", ".h5", ".hdf5")
"""File name endings of Keras's own formats (``.weights.h5`` ends in ``.h5``); minicnn writes none of them."""


def check_model_path(where: str, path: str | os.PathLike) -> None:
    """Refuse a model file name that promises a Keras file, before anything is written.

    minicnn's model files are ``.npz`` archives (see the module docstring); a file called
    ``model.keras`` or ``model.h5`` would look like one that Keras can open, and it cannot.

    Raises
    ------
    TypeError
        ``path`` is not a str or os.PathLike.
    ValueError
        ``path`` ends in .keras, .h5 or .hdf5 (any case).
    """
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"{where}: path must be a str or os.PathLike, got {type(path).__name__}")
    name = Path(path).name
    suffix = next((suffix for suffix in KERAS_SUFFIXES if name.lower().endswith(suffix)), None)
    if suffix is not None:
        stem = name[: -len(".weights.h5")] if name.lower().endswith(".weights.h5") else name[: -len(suffix)]
        raise ValueError(
            f"{where}: {str(path)!r} ends in {suffix}, a Keras format; minicnn writes its own .npz format, "
            f"which Keras cannot read: use a name such as {stem + '.npz'!r}"
        )


def write_atomic(path: str | os.PathLike, write: Callable[[BinaryIO], Any]) -> Path:
    """Call ``write(file)`` on a temporary file, then rename it over ``path``; return ``path``.

    Readers see either the old file or the complete new one, never a mix: the temporary
    file lies in the same folder (a rename within one file system is atomic) and is
    flushed to disk before the rename. Parent folders are created. The file gets the
    permissions of an ordinary ``open(path, "w")`` (0666 less the umask).

    Parameters
    ----------
    path : str or os.PathLike
        The file to write or replace.
    write : callable
        ``write(file)`` writes the content into ``file``, opened for binary writing.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # A unique name, so two writers never share a temporary file.
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        with open(temporary, "xb") as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)  # still there only if writing failed (also on Ctrl-C)
    return path


def write_npz_atomic(path: str | os.PathLike, arrays: dict[str, np.ndarray]) -> Path:
    """Write ``arrays`` to ``path`` (.npz) atomically (see :func:`write_atomic`)."""
    return write_atomic(path, lambda file: np.savez(file, **arrays))


def check_entry_sizes(path: Path) -> None:
    """Every array in the archive must fit in the bytes the file holds for it, before NumPy allocates it.

    The header of each ``.npy`` entry declares a shape, and ``np.load`` allocates that much memory
    before it reads the data: a file of a few hundred bytes could declare 67 GiB. minicnn writes
    its archives uncompressed (``np.savez``), so an entry never holds more than the file itself.

    Raises
    ------
    ModelFileError
        A compressed entry, or one whose declared array is larger than its bytes.
    ValueError
        An entry that is not a ``.npy`` array (``read_npz`` reports it as an unreadable file).
    """
    file_size = path.stat().st_size
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            if info.compress_type != zipfile.ZIP_STORED or info.file_size > file_size:
                raise ModelFileError(
                    f"{path}: the entry {info.filename!r} is compressed or larger than the file; "
                    "minicnn's model files are neither"
                )
            with archive.open(info) as member:
                major, _ = np.lib.format.read_magic(member)
                if major == 1:
                    shape, _, dtype = np.lib.format.read_array_header_1_0(member)
                else:
                    shape, _, dtype = np.lib.format.read_array_header_2_0(member)
            if math.prod(shape) * dtype.itemsize > info.file_size:
                raise ModelFileError(
                    f"{path}: the entry {info.filename!r} declares an array of shape {shape} ({dtype}), "
                    f"more than the {info.file_size} bytes it holds"
                )


def keras_hint(path: Path) -> str:
    """'; it looks like a Keras file, ...' for a name ending in a Keras suffix, else ''."""
    if path.name.lower().endswith(KERAS_SUFFIXES):
        return "; its name says Keras format, which minicnn does not read (minicnn reads the .npz files it writes)"
    return ""


def read_npz(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Read a minicnn ``.npz`` into a dict, with an error that names the file when it is not one.

    Parameters
    ----------
    path : str or os.PathLike
        A file written by minicnn.

    Returns
    -------
    dict of str to numpy.ndarray
        Every entry of the archive (see the module docstring for the names).

    Raises
    ------
    ModelFileError
        The file is missing, not an .npz archive, unreadable, or not a minicnn model file.
    """
    path = Path(path)
    if path.is_dir():
        raise ModelFileError(f"{path} is a folder, not a model file; pass the .npz file inside it")
    if not path.is_file():
        raise ModelFileError(f"model file not found: {path}")
    with open(path, "rb") as file:
        starts_like_a_zip = file.read(4) == b"PK\x03\x04"
    if not starts_like_a_zip:
        # np.load would try other formats and end with advice about allow_pickle, which
        # is the wrong advice for a text file or an image given by mistake.
        raise ModelFileError(f"{path} is not a minicnn model file (not an .npz archive){keras_hint(path)}")
    try:
        check_entry_sizes(path)
        with np.load(path, allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in archive.files}
    except ModelFileError:
        raise
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as error:
        raise ModelFileError(f"{path} is not a readable .npz file (corrupt or truncated?): {error}") from error
    if "format" not in arrays or str(arrays["format"]) != FORMAT:
        found = str(arrays["format"]) if "format" in arrays else "no 'format' entry"
        raise ModelFileError(
            f"{path} is not a minicnn model file (expected format {FORMAT!r}, found {found}){keras_hint(path)}"
        )
    return arrays
