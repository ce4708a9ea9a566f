"""Dropout: inverted scaling, identity at inference, seeded masks, exact gradient for a fixed mask."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minicnn import backend
from minicnn.gradcheck import check_layer
from minicnn.layers import Dropout


def built(rate, features=1000, seed=1):
    layer = Dropout(rate, seed=seed)
    layer.build((features,))
    return layer


def test_identity_at_inference():
    x = backend.to_device(np.random.default_rng(0).normal(size=(4, 1000)).astype(np.float32))
    assert built(0.5).forward(x, training=False) is x


def test_inverted_dropout_keeps_the_mean_and_scales_survivors():
    x = backend.to_device(np.ones((50, 1000), np.float32))
    y = backend.to_numpy(built(0.5).forward(x, training=True))
    assert set(np.unique(y)) == {0.0, 2.0}  # kept values are scaled by 1 / (1 - rate)
    assert abs(y.mean() - 1.0) < 0.02
    assert abs((y == 0).mean() - 0.5) < 0.01


def test_masks_are_seeded_and_change_between_calls():
    x = backend.to_device(np.ones((2, 100), np.float32))
    a, b = built(0.5, seed=7), built(0.5, seed=7)
    first, second = a.forward(x, training=True), a.forward(x, training=True)
    assert np.array_equal(backend.to_numpy(first), backend.to_numpy(b.forward(x, training=True)))
    assert not np.array_equal(backend.to_numpy(first), backend.to_numpy(second))
    assert a.get_state() == {"seed": 7, "calls": 2}


def test_restoring_state_replays_the_same_mask():
    x = backend.to_device(np.ones((2, 100), np.float32))
    layer = built(0.3)
    state = layer.get_state()
    first = backend.to_numpy(layer.forward(x, training=True))
    layer.set_state(state)
    np.testing.assert_array_equal(backend.to_numpy(layer.forward(x, training=True)), first)


@settings(max_examples=30)
@given(rate=st.floats(0.0, 0.9), batch=st.integers(1, 4), features=st.integers(1, 20), seed=st.integers(0, 99))
def test_gradient_matches_central_differences_for_a_fixed_mask(rate, batch, features, seed, float64, backend_name):
    layer = Dropout(rate, seed=seed)
    layer.build((features,))
    x = np.random.default_rng(seed).normal(size=(batch, features))
    report = check_layer(layer, backend.to_device(x), training=True)
    assert report.passed(1e-6), str(report)


def test_float32_stays_float32():
    y = built(0.5).forward(backend.to_device(np.ones((2, 1000), np.float32)), training=True)
    assert y.dtype == np.float32


@pytest.mark.parametrize("rate", [-0.1, 1.0, 2.0])
def test_rate_out_of_range(rate):
    with pytest.raises(ValueError, match="rate must be in"):
        Dropout(rate)


# ----------------------------------------------------------------------------
# masks_on_device: the backend's generator instead of NumPy's on the host
# ----------------------------------------------------------------------------


def test_device_masks_are_seeded_scaled_and_off_by_default(backend_name):
    """On NumPy and on CuPy (the `gpu` case): the same inverted-dropout contract as the host masks,
    reproducible from (seed, call number); the host masks stay the default."""
    assert Dropout(0.5).masks_on_device is False and "masks_on_device" not in Dropout(0.5).get_config()
    x = backend.to_device(np.ones((4, 2500), np.float32))
    a, b = Dropout(0.5, seed=7, masks_on_device=True), Dropout(0.5, seed=7, masks_on_device=True)
    for layer in (a, b):
        layer.build((2500,))
    first = backend.to_numpy(a.forward(x, training=True))
    assert first.dtype == np.float32 and set(np.unique(first)) == {0.0, 2.0}
    assert abs((first == 0).mean() - 0.5) < 0.02
    np.testing.assert_array_equal(backend.to_numpy(b.forward(x, training=True)), first)
    assert not np.array_equal(backend.to_numpy(a.forward(x, training=True)), first)
    state = a.get_state()
    replay = backend.to_numpy(a.forward(x, training=True))
    a.set_state(state)
    np.testing.assert_array_equal(backend.to_numpy(a.forward(x, training=True)), replay)
    dy = backend.to_device(np.full((4, 2500), 3.0, np.float32))
    np.testing.assert_array_equal(backend.to_numpy(a.backward(dy)), 3.0 * replay)  # dL/dx = dL/dy * mask / keep
    assert a.get_config()["masks_on_device"] is True


def test_device_masks_stay_on_the_backend(monkeypatch):
    """Through the CPU stand-in for CuPy: the mask is a device array and no NumPy call touches it."""
    from strict_backend import StrictArray, use_strict_backend

    use_strict_backend(monkeypatch)
    layer = Dropout(0.25, seed=3, masks_on_device=True)
    layer.build((50,))
    y = layer.forward(backend.to_device(np.ones((2, 50), np.float32)), training=True)
    assert type(y) is StrictArray and type(layer.scale) is StrictArray


@settings(max_examples=20)
@given(rate=st.floats(0.0, 0.9), batch=st.integers(1, 4), features=st.integers(1, 20), seed=st.integers(0, 99))
def test_device_masks_gradient_matches_central_differences(rate, batch, features, seed, float64, backend_name):
    layer = Dropout(rate, seed=seed, masks_on_device=True)
    layer.build((features,))
    x = np.random.default_rng(seed).normal(size=(batch, features))
    report = check_layer(layer, backend.to_device(x), training=True)
    assert report.passed(1e-6), str(report)


@pytest.mark.parametrize("value", [1, "device", None])
def test_masks_on_device_must_be_a_bool(value):
    with pytest.raises(TypeError, match="masks_on_device must be True or False"):
        Dropout(0.5, masks_on_device=value)
