"""The one place where minicnn chooses between NumPy (CPU) and CuPy (GPU).

Every layer asks this module for its array module instead of importing NumPy:

    xp = backend.array_module()      # numpy or cupy
    y = xp.maximum(x, 0)

CuPy mirrors NumPy's API, so the same layer code runs on both. The choice is
made once, with :func:`set_backend` or the environment variable
``MINICNN_BACKEND`` ("numpy" when unset). The default float type is float32,
as in Keras; gradient checks switch to float64 with :func:`set_default_dtype`.

Where CuPy behaves differently from NumPy, and what minicnn does about it:

* A CuPy array never turns into a NumPy array by itself: ``numpy.asarray(device_array)``
  raises. The one way back to the host is :func:`to_numpy` (``.get()``).
* CuPy functions return as soon as the GPU work is *queued*. Call :func:`synchronize`
  before reading a clock, or the time measured is only the time to queue.
* The same seed gives other random numbers in ``cupy.random`` than in ``numpy.random``,
  so :func:`random_uniform` draws on the host and copies: a NumPy and a CuPy run with the
  same seed see the same dropout masks.

* Float32 matrix products on CuPy run in full float32 unless TF32 is asked for with
  :func:`set_tf32` (or ``MINICNN_TF32=1``) *before* :func:`set_backend` ("cupy"): CuPy reads
  its switch, the environment variable ``CUPY_TF32``, once per process, at its first float32
  product, and :func:`set_backend` computes one at once. Off by default (docs/gpu.md says why).
  :func:`run_settings` says what a run computed with, for its settings file.

docs/gpu.md says how to install CuPy and what has been verified on a GPU.
"""

from __future__ import annotations

import os
from types import ModuleType
from typing import Any

import numpy

BACKENDS = ("numpy", "cupy")
"""The backends :func:`set_backend` accepts."""
DTYPES = ("float32", "float64")
"""The float types :func:`set_default_dtype` accepts."""

_state: dict[str, Any] = {"name": "numpy", "module": numpy, "dtype": "float32", "tf32": False}


class BackendError(RuntimeError):
    """The requested backend cannot be used on this machine."""


# How to get CuPy, for the error raised when it is missing. The extras are defined in pyproject.toml;
# `pip install 'minicnn[gpu]'` (CUDA 12) is kept for older instructions.
# Every BackendError ends with this advice; the command-line examples swap it for "--backend numpy".
CPU_FALLBACK = "Or use set_backend('numpy') to run on the CPU."
GPU_INSTALL_HELP = (
    "Install the CuPy wheel that matches the CUDA version of your NVIDIA driver (`nvidia-smi` prints it "
    "top right as 'CUDA Version'): pip install 'minicnn[gpu-cuda13]' for CUDA 13.x, "
    "pip install 'minicnn[gpu-cuda12]' for CUDA 12.x (pip install 'minicnn[gpu]' is the CUDA 12 one too); "
    'from a checkout: pip install -e ".[gpu-cuda13]". Without a CUDA Toolkit on the machine, take the '
    "-ctk extra (e.g. gpu-cuda13-ctk), which brings NVIDIA's CUDA libraries from PyPI. See docs/gpu.md."
)

# Set once CuPy has computed correctly in this process, so the check below runs only once.
_cupy_checked: dict[str, bool] = {"done": False}


def _check_cupy_computes(cupy: ModuleType) -> None:
    """Run one elementwise kernel, one reduction and one matrix product on the GPU.

    Why: CuPy loads its CUDA libraries lazily. ``import cupy`` and counting the devices work
    with the driver alone, but the first elementwise kernel needs NVRTC (the runtime compiler)
    and the first matrix product cuBLAS. CuPy 14 wheels bring neither unless installed with the
    ``ctk`` extra, so without a CUDA Toolkit the failure would otherwise come in the middle of
    training instead of here, with advice.
    """
    if _cupy_checked["done"]:
        return
    try:
        ones = cupy.ones((2, 2), dtype=cupy.float32)
        elementwise = float((ones * 2 + 1).sum())  # compiled by NVRTC on first use: 4 * 3 = 12
        product = float((ones @ ones).sum())  # cuBLAS: every entry is 2, so 8
    except Exception as error:  # a missing library shows up as OSError, RuntimeError or CuPy's own errors
        raise BackendError(
            f"backend 'cupy': CuPy sees a GPU but cannot compute on it ({type(error).__name__}: {error}). "
            "Usually a CUDA library (NVRTC, cuBLAS) is missing: install a CUDA Toolkit of the same major "
            "version as the CuPy wheel, or reinstall CuPy with NVIDIA's libraries, e.g. "
            "pip install 'minicnn[gpu-cuda13-ctk]' (or \"cupy-cuda13x[ctk]\"). See docs/gpu.md. "
            f"{CPU_FALLBACK}"
        ) from error
    if elementwise != 12.0 or product != 8.0:
        raise BackendError(
            f"backend 'cupy': a test computation gave wrong results ({elementwise} instead of 12, "
            f"{product} instead of 8); the GPU or its driver is not working. {CPU_FALLBACK}"
        )
    _cupy_checked["done"] = True


def _import_cupy() -> ModuleType:
    """Import CuPy and check that a CUDA device answers and computes; explain what is missing if not."""
    try:
        import cupy
    except ImportError as error:
        raise BackendError(
            f"backend 'cupy' needs the CuPy package, which is not installed. {GPU_INSTALL_HELP} {CPU_FALLBACK}"
        ) from error
    try:
        device_count = cupy.cuda.runtime.getDeviceCount()
    except Exception as error:  # CUDA driver missing, broken, or older than the wheel's CUDA
        raise BackendError(
            f"backend 'cupy': CuPy is installed but CUDA is not usable ({error}). "
            "Check the NVIDIA driver with `nvidia-smi`: the 'CUDA Version' it prints must be at least the "
            "major version of the CuPy wheel (cupy-cuda13x needs 13.x, cupy-cuda12x 12.x; "
            f"`pip list | grep cupy` shows which is installed). {CPU_FALLBACK}"
        ) from error
    if device_count == 0:
        raise BackendError(f"backend 'cupy': no CUDA device found. {CPU_FALLBACK}")
    _check_cupy_computes(cupy)
    return cupy


def set_backend(name: str) -> None:
    """Choose the array library for every layer created or run from now on.

    Parameters
    ----------
    name : str, one of {"numpy", "cupy"}
        "numpy" computes on the CPU; "cupy" on an NVIDIA GPU, and raises :class:`BackendError`
        at once when CuPy or a CUDA device is missing, or when the GPU cannot compute.

    Raises
    ------
    ValueError
        ``name`` is neither "numpy" nor "cupy".
    BackendError
        "cupy" was asked for and cannot be used; the message says what is missing.
    """
    if name not in BACKENDS:
        raise ValueError(f"unknown backend {name!r}; choose one of {', '.join(BACKENDS)}")
    module = numpy if name == "numpy" else _import_cupy()
    _state["name"] = name
    _state["module"] = module


def set_tf32(enabled: bool) -> None:
    """Let CuPy's float32 matrix products use TF32 (10-bit mantissa, on GPUs of compute capability 8.0+).

    TF32 is what PyTorch lets cuDNN use for convolutions by default; cuBLAS then rounds each
    float32 factor to 10 bits of mantissa (products to about 1e-3 relative) and runs on the
    tensor cores. It only changes CuPy's products (``@``, ``dot``, ``einsum``, ``tensordot``);
    on NumPy it is recorded and has no effect. Off by default: see docs/gpu.md.

    Parameters
    ----------
    enabled : bool
        True for TF32, False for full float32.

    Raises
    ------
    TypeError
        ``enabled`` is not a bool.
    BackendError
        CuPy has already computed in this process with the other setting: CuPy reads
        ``CUPY_TF32`` once, at its first float32 product, so choose before ``set_backend("cupy")``.
    """
    if type(enabled) is not bool:
        raise TypeError(f"set_tf32: enabled must be True or False, got {enabled!r}")
    if _cupy_checked["done"] and enabled != _state["tf32"]:
        raise BackendError(
            f"set_tf32({enabled}): CuPy has already computed in this process with TF32 "
            f"{'on' if _state['tf32'] else 'off'}, and it reads its setting (CUPY_TF32) only once, at its first "
            "float32 product; call set_tf32 before set_backend('cupy'), or set MINICNN_TF32=1 before starting"
        )
    os.environ["CUPY_TF32"] = "1" if enabled else "0"  # read by CuPy at its first float32 product
    _state["tf32"] = enabled


def tf32_enabled() -> bool:
    """Whether TF32 was asked for (:func:`set_tf32`); it only acts on the CuPy backend."""
    return _state["tf32"]


def run_settings() -> dict[str, Any]:
    """What the model computes with, for a run's settings file: backend, dtype, TF32.

    Returns
    -------
    dict
        ``{"backend": "numpy" | "cupy", "dtype": "float32" | "float64", "tf32": bool}``, where
        "tf32" is True only when TF32 was asked for *and* the backend is CuPy (the products it acts on).
    """
    return {"backend": _state["name"], "dtype": _state["dtype"], "tf32": _state["tf32"] and _state["name"] == "cupy"}


def backend_name() -> str:
    """The name of the active backend: "numpy" or "cupy"."""
    return _state["name"]


def array_module() -> ModuleType:
    """The active array module (``numpy`` or ``cupy``); layers do their math with it."""
    return _state["module"]


def set_default_dtype(dtype: str) -> None:
    """Set the float type of new parameters and of inputs cast by the model.

    Parameters
    ----------
    dtype : str, one of {"float32", "float64"}
        float32 is the default, as in Keras; gradient checks need float64.
    """
    dtype = str(numpy.dtype(dtype)) if dtype in DTYPES else dtype
    if dtype not in DTYPES:
        raise ValueError(f"unknown dtype {dtype!r}; choose one of {', '.join(DTYPES)}")
    _state["dtype"] = dtype


def default_dtype() -> str:
    """The float type used for new parameters: "float32" (default) or "float64"."""
    return _state["dtype"]


def to_device(array: Any, dtype: str | None = None) -> Any:
    """``array`` as an array of the active backend, cast to ``dtype`` (``asarray``: no copy when none is needed).

    On NumPy this is ``numpy.asarray(array, dtype)``: a NumPy array that already has the
    dtype is returned as it is, not copied, so writing into the result writes into
    ``array``; a list or another dtype gives a new array. On CuPy a host array is copied to
    the GPU, and a CuPy array of the right dtype is again returned as it is.

    Parameters
    ----------
    array : array_like
        A host (NumPy) array, a list or a number; on CuPy also a device array.
    dtype : str, optional
        The float type wanted, e.g. "float32"; None keeps the dtype ``array`` has.

    Returns
    -------
    ndarray
        A ``numpy.ndarray`` or a ``cupy.ndarray``, whichever backend is active.
    """
    return array_module().asarray(array, dtype=dtype)


def to_numpy(array: Any) -> numpy.ndarray:
    """Return ``array`` as a NumPy array on the host (a NumPy array is returned as it is, not copied).

    Always use this rather than ``numpy.asarray`` on a result of the backend: CuPy refuses
    that implicit copy from the device (it raises TypeError). A CuPy array is copied to
    the host; take ``.copy()`` of the result when you keep a NumPy array that its owner
    may overwrite (a layer's kept buffer, say).
    """
    if hasattr(array, "get"):  # a CuPy array: copy device -> host
        return array.get()
    return numpy.asarray(array)


def synchronize() -> None:
    """Wait until the device has finished all the work queued so far (a no-op on NumPy).

    A CuPy call returns as soon as its kernels are queued on the GPU; only copying a result
    to the host (``float(x)``, ``to_numpy``) waits for them. Call this before reading a clock.
    """
    if _state["name"] == "cupy":
        _state["module"].cuda.Device().synchronize()


def random_uniform(shape: tuple[int, ...], seed: tuple[int, ...], dtype: str) -> Any:
    """Uniform numbers in [0, 1) on the active backend, fixed by ``seed``.

    They are drawn on the host with NumPy and then handed to :func:`to_device` (on CuPy, a
    copy to the GPU), so that NumPy and CuPy runs with the same seed see the same dropout
    masks and can be compared. ``cupy.random`` would be faster but gives other numbers for
    the same seed (and hashes a seed tuple down to one number). For the study's dropout the
    copy is 4 MB per step, small beside the step itself.

    Parameters
    ----------
    shape : tuple of int
        Shape of the result.
    seed : tuple of int
        Seeds NumPy's generator, e.g. (layer seed, call number) for Dropout's masks.
    dtype : str
        "float32" or "float64".

    Returns
    -------
    ndarray
        Of ``shape`` and ``dtype``, on the active backend.
    """
    generator = numpy.random.default_rng(list(seed))
    return to_device(generator.random(shape, dtype=dtype))


# The environment picks the starting backend, so scripts and CI can switch without code changes.
# TF32 first: it must be chosen before CuPy's first product.
_env_tf32 = os.environ.get("MINICNN_TF32", "").strip().lower()
if _env_tf32:
    if _env_tf32 not in ("0", "1"):
        raise ValueError(f"MINICNN_TF32 must be 0 or 1, got {_env_tf32!r}")
    set_tf32(_env_tf32 == "1")
elif os.environ.get("CUPY_TF32", "0").strip() not in ("", "0"):
    _state["tf32"] = True  # set for CuPy directly: CuPy will use TF32, so say so
_env_backend = os.environ.get("MINICNN_BACKEND", "").strip().lower()
if _env_backend:
    set_backend(_env_backend)
