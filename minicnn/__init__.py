"""minicnn: a small, readable CNN framework on NumPy (CPU) and CuPy (GPU).

    import minicnn as mc
    from minicnn import layers, losses, optimizers

    model = mc.Sequential([layers.Conv2D(32, 3, activation="relu", input_shape=(300, 300, 1)), ...])

``import minicnn`` loads NumPy and nothing heavier. ``mc.data`` (pandas, Pillow),
``mc.plots`` (matplotlib), ``mc.metrics`` and ``mc.gradcheck`` are loaded the first
time they are used.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from minicnn import backend, callbacks, files, layers, losses, optimizers
from minicnn.backend import set_backend
from minicnn.layers import Input
from minicnn.model import Sequential
from minicnn.parallel import set_threads
from minicnn.saving import load_model
from minicnn.training import TrainingDivergedError

__version__ = "0.1.0"

__all__ = [
    "Input",
    "Sequential",
    "TrainingDivergedError",
    "load_model",
    "set_backend",
    "set_threads",
    "backend",
    "callbacks",
    "files",
    "layers",
    "losses",
    "optimizers",
    "data",
    "gradcheck",
    "metrics",
    "models",
    "plots",
]

# Submodules reached as attributes (mc.plots, ...) but imported only on first use.
LAZY_SUBMODULES = ("data", "gradcheck", "metrics", "models", "plots")


def __getattr__(name: str) -> ModuleType:
    """``mc.plots`` etc.: import the submodule the first time it is asked for (PEP 562)."""
    if name in LAZY_SUBMODULES:
        return importlib.import_module(f"minicnn.{name}")
    raise AttributeError(f"module 'minicnn' has no attribute {name!r}")
