"""A stand-in for CuPy that runs on the CPU and catches code that bypasses the backend.

On a GPU, an array made by ``numpy.zeros`` lives on the host, and mixing it with device
arrays raises. ``numpy.some_function(device_array)`` works for many functions (CuPy
implements NumPy's ``__array_function__``), but minicnn's own rule is stricter: array math
goes through ``backend.array_module()``. A NumPy-only test run cannot notice a break of
either rule, because there everything is NumPy.

This module makes them visible without a GPU:

* ``StrictArray`` is an ndarray subclass standing for "an array on the device";
* ``strict_module`` is an array module like ``cupy``: every function it offers, also in
  its submodules (``lib.stride_tricks.as_strided``, ``linalg``, ...), takes and returns
  StrictArrays, and its ``ndarray`` is StrictArray, so ``isinstance(x, xp.ndarray)`` is
  False for a host array, as it is for ``cupy.ndarray``;
* a ufunc that mixes a StrictArray with a plain ndarray raises ``HostArrayMixed`` (even a
  0-d one: CuPy accepts Python and NumPy *scalars* only), and so do a function of
  ``strict_module`` given a host array (except ``asarray`` and ``array``, the copies to the
  device) and assigning a host array into a StrictArray (``device[...] = host``);
* a top-level ``numpy.*`` function called on a StrictArray raises ``HostFunctionCalled``;
* ``numpy.asarray`` / ``numpy.array`` (and their variants) refuse a StrictArray with
  ``HostConversionRefused``, as CuPy refuses to be turned into a NumPy array implicitly:
  the only way to the host is ``.get()`` (``backend.to_numpy``).

Install it with ``use_strict_backend(monkeypatch)`` and run real training through it.
"""

from __future__ import annotations

import functools
import types
from typing import Any

import numpy as np

from minicnn import backend


class HostArrayMixed(TypeError):
    """A plain NumPy (host) array met a backend (device) array in one operation."""


class HostFunctionCalled(TypeError):
    """numpy.<function> was called directly on a backend array instead of backend.array_module()."""


class HostConversionRefused(TypeError):
    """numpy.asarray / numpy.array was given a backend array: CuPy raises here, use backend.to_numpy."""


def _is_host_array(value: Any) -> bool:
    """True for a plain NumPy array (0-d included), the kind of array that lives on the host."""
    return type(value) is np.ndarray


class StrictArray(np.ndarray):
    """An ndarray that insists on staying inside the strict backend."""

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        outputs = kwargs.get("out", ())
        for value in (*inputs, *outputs):
            if _is_host_array(value):
                raise HostArrayMixed(
                    f"{ufunc.__name__}: a host numpy array of shape {value.shape} was mixed with a backend array"
                )
        inputs = tuple(unwrap(value) for value in inputs)
        if "out" in kwargs:
            kwargs["out"] = tuple(unwrap(value) for value in kwargs["out"])
        result = getattr(ufunc, method)(*inputs, **kwargs)
        return wrap(result)

    def __array_function__(self, func, types_, args, kwargs):
        raise HostFunctionCalled(
            f"numpy.{func.__name__} was called on a backend array; use backend.array_module().{func.__name__}"
        )

    def __setitem__(self, index: Any, value: Any) -> None:
        # CuPy refuses `device[...] = host_array` (only scalars and 0-d arrays may be assigned from the
        # host); NumPy would copy silently. A 0-d host array is a scalar there, so it passes here too.
        if _is_host_array(value) and value.ndim > 0:
            raise HostArrayMixed(
                f"a host numpy array of shape {value.shape} was assigned into a backend array; "
                "move it with backend.to_device first"
            )
        super().__setitem__(index, value)

    def get(self) -> np.ndarray:
        """Like cupy.ndarray.get(): an explicit copy to the host."""
        return np.array(self.view(np.ndarray))


def unwrap(value: Any) -> Any:
    if isinstance(value, StrictArray):
        return value.view(np.ndarray)
    if isinstance(value, (list, tuple)):
        return type(value)(unwrap(item) for item in value)
    return value


def wrap(value: Any) -> Any:
    if type(value) is np.ndarray:
        return value.view(StrictArray)
    if isinstance(value, tuple):
        return tuple(wrap(item) for item in value)
    return value


# The array-module functions that take host data on purpose: cupy.asarray(host_array) is the copy to the
# device. Every other function of CuPy raises when it is handed a NumPy array (cupy.concatenate([device,
# host]), cupy.multiply(device, 2, out=host), ...).
HOST_TO_DEVICE = ("array", "asarray", "asanyarray", "ascontiguousarray")


def _find_host_array(value: Any) -> np.ndarray | None:
    """The first plain NumPy array in ``value`` (looking inside lists, tuples and dicts), else None."""
    if _is_host_array(value):
        return value
    items = value.values() if isinstance(value, dict) else value if isinstance(value, (list, tuple)) else ()
    for item in items:
        found = _find_host_array(item)
        if found is not None:
            return found
    return None


def strict_function(function):
    name = getattr(function, "__name__", "function")

    def call(*args, **kwargs):
        host = None if name in HOST_TO_DEVICE else _find_host_array((args, kwargs))
        if host is not None:
            raise HostArrayMixed(
                f"xp.{name} was given a host numpy array of shape {host.shape}; move it with backend.to_device"
            )
        args = unwrap(args)
        kwargs = {key: unwrap(value) for key, value in kwargs.items()}
        return wrap(function(*args, **kwargs))

    call.__name__ = name
    return call


class StrictModule(types.ModuleType):
    """Looks like ``numpy`` (as ``cupy`` does) but every array in and out is a StrictArray.

    Submodules are wrapped the same way, so ``xp.lib.stride_tricks.as_strided(x, ...)`` returns a
    backend view, as ``cupy.lib.stride_tricks.as_strided`` does, rather than a plain NumPy array.
    """

    def __init__(self, name: str, wrapped: types.ModuleType = np) -> None:
        super().__init__(name)
        self._wrapped = wrapped

    def __getattr__(self, name: str) -> Any:
        if name == "ndarray" and self._wrapped is np:
            return StrictArray  # isinstance(host_array, xp.ndarray) is False, as for cupy.ndarray
        attribute = getattr(self._wrapped, name)
        if isinstance(attribute, types.ModuleType):
            return StrictModule(f"{self.__name__}.{name}", attribute)  # lib, lib.stride_tricks, linalg, ...
        if isinstance(attribute, type) or not callable(attribute):
            return attribute  # dtypes such as np.uint8, constants such as np.pi
        return strict_function(attribute)


strict_module = StrictModule("strict_numpy")

# The NumPy functions that turn anything array-like into a host array. Given a CuPy array they
# raise (cupy.ndarray.__array__ refuses); given an ndarray subclass they silently return a host
# view, and no hook of the subclass can stop them. So the stand-in replaces them while it is active.
HOST_CONVERTERS = ("array", "asarray", "asanyarray", "ascontiguousarray")


def _contains_backend_array(value: Any) -> bool:
    if isinstance(value, StrictArray):
        return True
    if isinstance(value, (list, tuple)):
        return any(_contains_backend_array(item) for item in value)
    return False


def refusing_backend_arrays(converter):
    """``converter`` (e.g. numpy.asarray) that raises HostConversionRefused for a backend array."""

    @functools.wraps(converter)
    def convert(value: Any, *args: Any, **kwargs: Any) -> Any:
        if _contains_backend_array(value):
            raise HostConversionRefused(
                f"numpy.{converter.__name__} was given a backend array; CuPy refuses implicit conversion "
                "to the host: use backend.to_numpy(array)"
            )
        return converter(value, *args, **kwargs)

    return convert


def use_strict_backend(monkeypatch) -> None:
    """Make the stand-in the active backend for one test (monkeypatch undoes everything after it)."""
    monkeypatch.setitem(backend._state, "name", "strict")
    monkeypatch.setitem(backend._state, "module", strict_module)
    for name in HOST_CONVERTERS:
        monkeypatch.setattr(np, name, refusing_backend_arrays(getattr(np, name)))
