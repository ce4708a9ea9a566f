"""A stand-in for CuPy that runs on the CPU and catches code that bypasses the backend.

On a GPU, an array made by ``numpy.zeros`` lives on the host; mixing it with device
arrays raises, and ``numpy.some_function(device_array)`` does not work either. A
NumPy-only test run cannot notice either mistake, because there everything is NumPy.

This module makes them visible without a GPU:

* ``StrictArray`` is an ndarray subclass standing for "an array on the device";
* ``strict_module`` is an array module like ``cupy``: every function it offers takes
  and returns StrictArrays;
* a ufunc that mixes a StrictArray with a plain ndarray raises ``HostArrayMixed``;
* a top-level ``numpy.*`` function called on a StrictArray raises ``HostFunctionCalled``.

Install it with ``use_strict_backend(monkeypatch)`` and run real training through it.
"""

from __future__ import annotations

import types
from typing import Any

import numpy as np

from minicnn import backend


class HostArrayMixed(TypeError):
    """A plain NumPy (host) array met a backend (device) array in one operation."""


class HostFunctionCalled(TypeError):
    """numpy.<function> was called directly on a backend array instead of backend.array_module()."""


class StrictArray(np.ndarray):
    """An ndarray that insists on staying inside the strict backend."""

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        for value in inputs:
            if type(value) is np.ndarray and value.ndim > 0:
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


def strict_function(function):
    def call(*args, **kwargs):
        args = unwrap(args)
        kwargs = {key: unwrap(value) for key, value in kwargs.items()}
        return wrap(function(*args, **kwargs))

    call.__name__ = getattr(function, "__name__", "function")
    return call


class StrictModule(types.ModuleType):
    """Looks like ``numpy`` (as ``cupy`` does) but every array in and out is a StrictArray."""

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(np, name)
        if isinstance(attribute, type) or not callable(attribute):
            return attribute  # dtypes such as np.uint8, constants such as np.pi
        return strict_function(attribute)


strict_module = StrictModule("strict_numpy")


def use_strict_backend(monkeypatch) -> None:
    monkeypatch.setitem(backend._state, "name", "strict")
    monkeypatch.setitem(backend._state, "module", strict_module)
