"""The backend: one place chooses NumPy or CuPy, and no layer goes around it."""

from __future__ import annotations

import os
import sys
import types

import numpy as np
import pytest
from strict_backend import (
    HostArrayMixed,
    HostConversionRefused,
    HostFunctionCalled,
    StrictArray,
    strict_module,
    use_strict_backend,
)
from test_model import toy_data

import minicnn as mc
from minicnn import backend, layers
from minicnn.im2col import im2col
from minicnn.layers.base import model_owns_memory, reuse_or_allocate


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
    model = mc.Sequential(
        [
            layers.Conv2D(3, 3, padding="same", activation="relu", input_shape=(8, 8, 1)),
            layers.MaxPool2D(2),
            layers.Conv2D(4, (2, 3), strides=2, activation="sigmoid"),
            layers.ReLU(),
            layers.Flatten(),
            layers.Dropout(0.3),
            layers.Dense(5, activation="relu"),
            layers.Dense(1),
            layers.Sigmoid(),
        ],
        seed=0,
    )
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
    model.compile(
        optimizer=mc.optimizers.SGD(0.1, momentum=0.9),
        loss=mc.losses.BinaryCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    model.train_on_batch(x, y)
    model.train_on_batch(x, y)
    assert all(type(slot) is StrictArray for slot in model.optimizer.slots.values())


def test_cupy_request_without_cupy_explains_how_to_fix_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "cupy", None)  # makes `import cupy` fail like a missing package
    with pytest.raises(backend.BackendError) as raised:
        backend.set_backend("cupy")
    message = str(raised.value)
    # the extras for both CUDA majors, how to tell which one the driver needs, and the old name still works
    for advice in (
        "minicnn[gpu-cuda13]",
        "minicnn[gpu-cuda12]",
        'pip install -e ".[gpu-cuda13]"',
        "nvidia-smi",
        "pip install 'minicnn[gpu]'",
        "ctk",
    ):
        assert advice in message
    assert backend.backend_name() == "numpy"  # a failed switch changes nothing


def fake_cupy(device_count=1, compute_error: Exception | None = None, count_error: Exception | None = None):
    """A module that looks enough like CuPy for backend._import_cupy: it counts devices and
    computes with NumPy, or raises the given errors where real CuPy would."""

    def get_device_count():
        if count_error is not None:
            raise count_error
        return device_count

    def ones(shape, dtype):
        if compute_error is not None:
            raise compute_error  # CuPy raises at the first kernel when NVRTC or cuBLAS cannot be loaded
        return np.ones(shape, dtype)

    runtime = types.SimpleNamespace(getDeviceCount=get_device_count)
    synchronized = []
    device = types.SimpleNamespace(synchronize=lambda: synchronized.append(True))
    cuda = types.SimpleNamespace(runtime=runtime, Device=lambda: device)
    module = types.SimpleNamespace(cuda=cuda, ones=ones, float32=np.float32, synchronized=synchronized)
    return module


def test_cupy_that_cannot_compute_points_to_the_ctk_extra(monkeypatch):
    """CuPy 14 without a CUDA Toolkit imports and counts devices, then fails at the first kernel."""
    monkeypatch.setitem(backend._cupy_checked, "done", False)
    monkeypatch.setitem(sys.modules, "cupy", fake_cupy(compute_error=OSError("CuPy failed to load libnvrtc.so.13")))
    with pytest.raises(backend.BackendError, match=r"libnvrtc.*minicnn\[gpu-cuda13-ctk\]"):
        backend.set_backend("cupy")
    assert backend.backend_name() == "numpy"


def test_a_driver_too_old_for_the_wheel_says_how_to_check_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "cupy", fake_cupy(count_error=RuntimeError("cudaErrorInsufficientDriver")))
    with pytest.raises(backend.BackendError, match=r"cudaErrorInsufficientDriver.*nvidia-smi.*'CUDA Version'"):
        backend.set_backend("cupy")


def test_a_working_cupy_is_checked_once_and_synchronize_waits_for_it(monkeypatch):
    monkeypatch.setitem(backend._cupy_checked, "done", False)
    cupy = fake_cupy()
    monkeypatch.setitem(sys.modules, "cupy", cupy)
    assert backend._import_cupy() is cupy and backend._cupy_checked["done"]
    backend.synchronize()  # NumPy is still the active backend: nothing to wait for
    assert cupy.synchronized == []
    monkeypatch.setitem(backend._state, "name", "cupy")
    monkeypatch.setitem(backend._state, "module", cupy)
    backend.synchronize()
    assert cupy.synchronized == [True]


def test_no_cuda_device_is_an_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "cupy", fake_cupy(device_count=0))
    with pytest.raises(backend.BackendError, match="no CUDA device"):
        backend.set_backend("cupy")


# ---- the stand-in itself: each test below is a CuPy behaviour the first stand-in missed ----------------


def test_numpy_asarray_refuses_a_backend_array(monkeypatch):
    """cupy.ndarray refuses implicit conversion (np.asarray raises TypeError); an ndarray subclass cannot
    refuse by itself, so the stand-in replaces numpy's converters while it is active."""
    use_strict_backend(monkeypatch)
    device = strict_module.ones(3)
    for convert in (np.asarray, np.array, np.asanyarray, np.ascontiguousarray):
        with pytest.raises(HostConversionRefused, match="backend.to_numpy"):
            convert(device)
    with pytest.raises(HostConversionRefused):
        np.asarray([device, device])  # a list of device arrays too
    assert type(backend.to_numpy(device)) is np.ndarray  # the explicit way still works
    assert type(np.asarray([1.0, 2.0])) is np.ndarray  # and host data is untouched
    assert type(strict_module.asarray(np.ones(2))) is StrictArray  # xp.asarray copies host -> device


def test_as_strided_returns_a_backend_view(monkeypatch):
    """cupy.lib.stride_tricks.as_strided returns a device view; the stand-in's submodules must too."""
    use_strict_backend(monkeypatch)
    xp = backend.array_module()
    x = xp.arange(6.0)
    windows = xp.lib.stride_tricks.as_strided(x, shape=(4, 3), strides=(x.strides[0], x.strides[0]))
    assert type(windows) is StrictArray
    np.testing.assert_array_equal(windows.get(), [[0, 1, 2], [1, 2, 3], [2, 3, 4], [3, 4, 5]])
    x[0] = 7.0
    assert windows[0, 0] == 7.0  # a view, not a copy


def test_assigning_a_host_array_into_a_backend_array_raises(monkeypatch):
    """CuPy refuses `device[...] = host_array` (it only takes scalars from the host); NumPy copies silently."""
    use_strict_backend(monkeypatch)
    device = strict_module.zeros(3)
    with pytest.raises(HostArrayMixed, match="assigned into a backend array"):
        device[...] = np.ones(3)
    device[...] = 2.0  # scalars are fine, on CuPy too
    device[1:] = strict_module.ones(2)  # and device arrays
    np.testing.assert_array_equal(device.get(), [2.0, 1.0, 1.0])


def test_a_zero_dimensional_host_array_in_a_ufunc_raises(monkeypatch):
    """CuPy's ufuncs take Python and NumPy scalars, but not NumPy arrays, not even 0-d ones."""
    use_strict_backend(monkeypatch)
    device = strict_module.ones(3)
    with pytest.raises(HostArrayMixed):
        device * np.array(2.0)
    with pytest.raises(HostArrayMixed):
        strict_module.multiply(device, 2.0, out=np.empty(3))  # a host `out=` as well
    assert type(device * np.float32(2.0)) is StrictArray  # a NumPy scalar is fine


def test_a_buffer_kept_from_a_numpy_run_is_replaced_on_the_device(monkeypatch):
    """isinstance(host_array, cupy.ndarray) is False, so buffers kept by layers (reuse_or_allocate) are
    reallocated after a switch to the GPU; the stand-in's xp.ndarray must be the device type for this."""
    assert not isinstance(np.ones(2), strict_module.ndarray)
    store = {}
    kept = reuse_or_allocate(store, "output", (2, 3), np.float32)  # on NumPy
    use_strict_backend(monkeypatch)
    again = reuse_or_allocate(store, "output", (2, 3), np.float32)
    assert type(kept) is np.ndarray and type(again) is StrictArray


def test_a_models_im2col_workspace_holds_no_device_array_after_a_switch_back(monkeypatch):
    """A StrictArray is a numpy.ndarray subclass: one left in a model's shared im2col workspace must not
    be reused on NumPy after the switch back, where no CuPy array ever could (reuse_or_allocate checks the type)."""
    x = np.ones((2, 5, 5, 1), dtype=np.float32)
    layer = layers.Conv2D(2, 3, input_shape=(5, 5, 1))
    layer.build((5, 5, 1))
    workspace = {}
    with model_owns_memory([layer], workspace):
        layer.cols_workspace(2)  # the NumPy workspace exists before the stand-in
        with monkeypatch.context() as patch:
            use_strict_backend(patch)
            assert type(layer.cols_workspace(2)) is StrictArray
        assert type(layer.cols_workspace(2)) is np.ndarray
    assert type(layer.forward(x)) is np.ndarray


def test_a_buffer_kept_on_the_stand_in_is_not_reused_on_numpy(monkeypatch):
    store = {}
    with monkeypatch.context() as patch:
        use_strict_backend(patch)
        reuse_or_allocate(store, "output", (2, 3), np.float32)
    assert type(reuse_or_allocate(store, "output", (2, 3), np.float32)) is np.ndarray


def test_set_weights_accepts_device_arrays(monkeypatch):
    use_strict_backend(monkeypatch)
    model = mc.Sequential([layers.Flatten(input_shape=(2, 2, 1)), layers.Dense(1)], seed=0)
    doubled = [value * 2 for _, value, _ in model.parameters()]  # arrays on the device
    model.set_weights(doubled)
    np.testing.assert_array_equal(model.get_weights()[0], doubled[0].get())


def test_im2col_stays_on_the_backend(monkeypatch):
    use_strict_backend(monkeypatch)
    x = strict_module.arange(2 * 4 * 4 * 3, dtype=np.float32).reshape(2, 4, 4, 3)
    cols = im2col(x, (2, 2), (1, 1))
    assert type(cols) is StrictArray and cols.shape == (2, 3, 3, 2, 2, 3)
    np.testing.assert_array_equal(cols.get()[1, 2, 0], x.get()[1, 2:4, 0:2, :])


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

    result = subprocess.run(
        [sys.executable, "-c", "import minicnn; print(minicnn.backend.backend_name())"],
        env={**__import__("os").environ, "MINICNN_BACKEND": "numpy"},
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.strip() == "numpy"
    failed = subprocess.run(
        [sys.executable, "-c", "import minicnn"],
        capture_output=True,
        text=True,
        env={**__import__("os").environ, "MINICNN_BACKEND": "tpu"},
    )
    assert failed.returncode != 0 and "unknown backend 'tpu'" in failed.stderr


def test_layer_modules_never_import_numpy_for_math():
    """Layer files may use numpy only for host-side bookkeeping (shapes, seeds, dtypes), never array math."""
    import inspect
    import re

    from minicnn import im2col
    from minicnn.layers import activations, base, conv, dense, dropout, kernel_layer, pooling

    bookkeeping = {"np.random.Generator", "np.random.default_rng", "np.dtype", "np.prod", "np.integer"}
    for module in (im2col, activations, base, conv, dense, dropout, kernel_layer, pooling):
        used = set(re.findall(r"\b(?:np|numpy)\.[\w.]+", inspect.getsource(module)))
        assert used <= bookkeeping, f"{module.__name__} uses {sorted(used - bookkeeping)}"


def test_the_study_script_keeps_the_data_path_metrics_and_plots_on_the_host(monkeypatch, tmp_path, xray_mini_dir):
    """examples/train_xray.py end to end on the stand-in: batches go to the device once per step,
    and only host copies (backend.to_numpy) reach checkpoints, metrics.json and the plots."""
    import train_xray

    use_strict_backend(monkeypatch)
    monkeypatch.setattr(backend, "set_backend", lambda name: None)  # keep the stand-in in place of --backend
    monkeypatch.setenv("MINICNN_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "run"
    code = train_xray.main(
        [
            "--data",
            str(xray_mini_dir),
            "--image-size",
            "46",
            "--epochs",
            "1",
            "--limit",
            "12",
            "--batch-size",
            "4",
            "--no-augment",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    assert (out / "metrics.json").is_file() and (out / "curves.png").is_file()


# ----------------------------------------------------------------------------
# TF32: chosen before CuPy's first product, recorded in the run settings
# ----------------------------------------------------------------------------


def test_tf32_is_off_by_default_and_recorded_only_where_it_acts(monkeypatch):
    monkeypatch.setitem(backend._state, "tf32", False)
    monkeypatch.delenv("CUPY_TF32", raising=False)
    assert backend.run_settings() == {"backend": "numpy", "dtype": "float32", "tf32": False}
    monkeypatch.setitem(backend._cupy_checked, "done", False)
    backend.set_tf32(True)
    assert backend.tf32_enabled() and os.environ["CUPY_TF32"] == "1"  # what CuPy reads at its first product
    assert backend.run_settings()["tf32"] is False  # NumPy's products are not changed by it
    monkeypatch.setitem(backend._state, "name", "cupy")
    assert backend.run_settings()["tf32"] is True
    backend.set_tf32(False)
    assert os.environ["CUPY_TF32"] == "0" and backend.run_settings()["tf32"] is False


def test_tf32_cannot_change_once_cupy_has_computed(monkeypatch):
    monkeypatch.setitem(backend._state, "tf32", False)
    monkeypatch.setitem(backend._cupy_checked, "done", True)
    monkeypatch.setenv("CUPY_TF32", "0")
    backend.set_tf32(False)  # the same setting: nothing to change
    with pytest.raises(backend.BackendError, match="before set_backend"):
        backend.set_tf32(True)
    with pytest.raises(TypeError, match="enabled must be True or False, got 1"):
        backend.set_tf32(1)


def test_the_environment_chooses_tf32_before_the_backend(tmp_path):
    """MINICNN_TF32 is read at import, before MINICNN_BACKEND, and a bad value is refused."""
    import subprocess

    code = "from minicnn import backend; import os; print(backend.tf32_enabled(), os.environ['CUPY_TF32'])"
    env = {**os.environ, "MINICNN_TF32": "1", "MINICNN_BACKEND": "numpy"}
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert result.stdout.split() == ["True", "1"], result.stderr
    env["MINICNN_TF32"] = "yes"
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0 and "MINICNN_TF32 must be 0 or 1, got 'yes'" in result.stderr
