"""The backend: one place chooses NumPy or CuPy, and no layer goes around it."""

from __future__ import annotations

import sys

import numpy as np
import pytest

import minicnn as mc
from minicnn import backend, layers
from strict_backend import HostArrayMixed, HostFunctionCalled, StrictArray, strict_module, use_strict_backend
from test_model import toy_data


def test_strict_backend_catches_the_mistakes_it_is_meant_to_catch(monkeypatch):
    """The check itself must be able to fail: host arrays and numpy functions on device arrays raise."""
    use_strict_backend(monkeypatch)
    device = strict_module.ones(3)
    assert isinstance(device, StrictArray) and isinstance(device * 2, StrictArray)
    with pytest.raises(HostArrayMixed):
        device + np.ones(3)
    with pytest.raises(HostFunctionCalled):
        np.pad(device, 1)


def test_training_runs_entirely_on_the_backend(monkeypatch, tmp_path):
    """Fit, evaluate, predict, save and load the full layer set through the strict stand-in for CuPy:
    any layer, loss or optimiser that made a NumPy array itself, or called numpy on a
    device array, would raise here; and every parameter, gradient and slot must be a device array."""
    use_strict_backend(monkeypatch)
    x, y = toy_data(24)
    model = mc.Sequential([
        layers.Conv2D(3, 3, padding="same", activation="relu", input_shape=(8, 8, 1)),
        layers.MaxPool2D(2),
        layers.Conv2D(4, (2, 3), strides=2, activation="sigmoid"),
        layers.ReLU(),
        layers.Flatten(),
        layers.Dropout(0.3),
        layers.Dense(5, activation="relu"),
        layers.Dense(1),
        layers.Sigmoid(),
    ], seed=0)
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    model.fit(x, y, batch_size=8, epochs=2, validation_split=0.25, class_weight="balanced", verbose=0)
    for name, value, gradient in model.parameters():
        assert type(value) is StrictArray, name
        assert type(gradient) is StrictArray, name
    assert all(type(slot) is StrictArray for slot in model.optimizer.slots.values())
    assert type(model.predict(x)) is np.ndarray  # predict hands back host arrays
    model.evaluate(x, y)
    model.save(tmp_path / "m.npz")
    loaded = mc.load_model(tmp_path / "m.npz")
    assert all(type(value) is StrictArray for _, value, _ in loaded.parameters())


def test_from_logits_and_sgd_also_stay_on_the_backend(monkeypatch):
    use_strict_backend(monkeypatch)
    x, y = toy_data(8)
    model = mc.Sequential([layers.Flatten(input_shape=(8, 8, 1)), layers.Dense(1)], seed=0)
    model.compile(optimizer=mc.optimizers.SGD(0.1, momentum=0.9),
                  loss=mc.losses.BinaryCrossentropy(from_logits=True), metrics=["accuracy"])
    model.train_on_batch(x, y)
    model.train_on_batch(x, y)
    assert all(type(slot) is StrictArray for slot in model.optimizer.slots.values())


def test_cupy_request_without_cupy_explains_how_to_fix_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "cupy", None)  # makes `import cupy` fail like a missing package
    with pytest.raises(backend.BackendError, match=r"pip install 'minicnn\[gpu\]'"):
        backend.set_backend("cupy")
    assert backend.backend_name() == "numpy"  # a failed switch changes nothing


def test_default_dtype_is_float32_and_float64_is_selectable():
    assert backend.default_dtype() == "float32"
    backend.set_default_dtype("float64")
    try:
        layer = layers.Dense(2)
        layer.build((3,))
        assert layer.params["kernel"].dtype == np.float64
    finally:
        backend.set_default_dtype("float32")
    with pytest.raises(ValueError, match="unknown dtype 'float16'"):
        backend.set_default_dtype("float16")


def test_environment_variable_selects_the_backend(monkeypatch):
    import subprocess

    result = subprocess.run([sys.executable, "-c", "import minicnn; print(minicnn.backend.backend_name())"],
                            env={**__import__("os").environ, "MINICNN_BACKEND": "numpy"},
                            capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "numpy"
    failed = subprocess.run([sys.executable, "-c", "import minicnn"], capture_output=True, text=True,
                            env={**__import__("os").environ, "MINICNN_BACKEND": "tpu"})
    assert failed.returncode != 0 and "unknown backend 'tpu'" in failed.stderr


def test_layer_modules_never_import_numpy_for_math():
    """Layer files may use numpy only for host-side bookkeeping (shapes, seeds, dtypes), never array math."""
    import inspect
    import re

    from minicnn import functions, im2col
    from minicnn.layers import activations, base, conv, dense, dropout, kernel_layer, pooling

    bookkeeping = {"np.random.Generator", "np.random.default_rng", "np.dtype", "np.prod", "np.integer"}
    for module in (functions, im2col, activations, base, conv, dense, dropout, kernel_layer, pooling):
        used = set(re.findall(r"\b(?:np|numpy)\.[\w.]+", inspect.getsource(module)))
        assert used <= bookkeeping, f"{module.__name__} uses {sorted(used - bookkeeping)}"
