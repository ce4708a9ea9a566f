"""The one place where minicnn chooses between NumPy (CPU) and CuPy (GPU).

Every layer asks this module for its array module instead of importing NumPy::

    xp = backend.array_module()      # numpy or cupy
    y = xp.maximum(x, 0)

CuPy mirrors NumPy's API, so the same layer code runs on both. The choice is
made once, with :func:`set_backend` or the environment variable
``MINICNN_BACKEND`` ("numpy" when unset). The default float type is float32,
as in Keras; gradient checks switch to float64 with :func:`set_default_dtype`.
"""

from __future__ import annotations

import os
from types import ModuleType
from typing import Any

import numpy

BACKENDS = ("numpy", "cupy")
DTYPES = ("float32", "float64")

_state: dict[str, Any] = {"name": "numpy", "module": numpy, "dtype": "float32"}


class BackendError(RuntimeError):
    """The requested backend cannot be used on this machine."""


def _import_cupy() -> ModuleType:
    """Import CuPy and check that a CUDA device answers; explain what is missing if not."""
    try:
        import cupy
    except ImportError as error:
        raise BackendError(
            "backend 'cupy' needs the CuPy package, which is not installed. "
            "Install it with: pip install 'minicnn[gpu]'  (CuPy for CUDA 12), "
            "or use set_backend('numpy') to run on the CPU."
        ) from error
    try:
        device_count = cupy.cuda.runtime.getDeviceCount()
    except Exception as error:  # CUDA driver missing or broken
        raise BackendError(
            f"backend 'cupy': CuPy is installed but CUDA is not usable ({error}). "
            "Check the NVIDIA driver with `nvidia-smi`, or use set_backend('numpy')."
        ) from error
    if device_count == 0:
        raise BackendError("backend 'cupy': no CUDA device found. Use set_backend('numpy').")
    return cupy


def set_backend(name: str) -> None:
    """Choose the array library for every layer created or run from now on.

    Parameters
    ----------
    name : {"numpy", "cupy"}
        "cupy" raises :class:`BackendError` at once when CuPy or a CUDA device is missing.
    """
    if name not in BACKENDS:
        raise ValueError(f"unknown backend {name!r}; choose one of {', '.join(BACKENDS)}")
    module = numpy if name == "numpy" else _import_cupy()
    _state["name"] = name
    _state["module"] = module


def backend_name() -> str:
    """The name of the active backend: "numpy" or "cupy"."""
    return _state["name"]


def array_module() -> ModuleType:
    """The active array module (``numpy`` or ``cupy``); layers do their math with it."""
    return _state["module"]


def set_default_dtype(dtype: str) -> None:
    """Set the float type of new parameters and of inputs cast by the model ("float32" or "float64")."""
    dtype = str(numpy.dtype(dtype)) if dtype in DTYPES else dtype
    if dtype not in DTYPES:
        raise ValueError(f"unknown dtype {dtype!r}; choose one of {', '.join(DTYPES)}")
    _state["dtype"] = dtype


def default_dtype() -> str:
    """The float type used for new parameters: "float32" (default) or "float64"."""
    return _state["dtype"]


def to_device(array: Any, dtype: str | None = None) -> Any:
    """Copy a host array (or anything array-like) to the active backend, cast to ``dtype``."""
    return array_module().asarray(array, dtype=dtype)


def to_numpy(array: Any) -> numpy.ndarray:
    """Return ``array`` as a NumPy array on the host (a no-op for NumPy arrays)."""
    if hasattr(array, "get"):  # a CuPy array: copy device -> host
        return array.get()
    return numpy.asarray(array)


def random_uniform(shape: tuple[int, ...], seed: tuple[int, ...], dtype: str) -> Any:
    """Uniform numbers in [0, 1) on the active backend, fixed by ``seed`` (a tuple of ints).

    They are drawn on the host with NumPy and then copied, so that NumPy and CuPy
    runs with the same seed see the same dropout masks and can be compared.
    """
    generator = numpy.random.default_rng(list(seed))
    return to_device(generator.random(shape, dtype=dtype))


# The environment picks the starting backend, so scripts and CI can switch without code changes.
_env_backend = os.environ.get("MINICNN_BACKEND", "").strip().lower()
if _env_backend:
    set_backend(_env_backend)
