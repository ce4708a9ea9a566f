"""Softmax and Tanh: central-difference gradients, stability, their plain twins and Keras's values."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import minicnn as mc
from minicnn import backend, layers, plain
from minicnn.gradcheck import check_layer
from minicnn.layers import activations

REFERENCE = Path(__file__).parents[1] / "fixtures" / "keras_reference.npz"

batches = st.tuples(st.integers(1, 6), st.integers(2, 6))


@pytest.fixture(scope="module")
def keras_reference():
    with np.load(REFERENCE, allow_pickle=False) as archive:
        return {key: archive[key] for key in archive.files}


@settings(max_examples=40)
@given(x=batches.flatmap(lambda shape: arrays(np.float64, shape, elements=st.floats(-3, 3))))
def test_softmax_gradient_matches_central_differences(x, float64, backend_name):
    """Logits within 6 of each other: at a gap of 10 a probability is 4.5e-5 and its central
    difference keeps too few digits for 1e-6 (hypothesis found [[10, 0]]: 1.9e-6), as for tanh."""
    report = check_layer(layers.Softmax(), backend.to_device(x))
    assert report.passed(1e-6), str(report)


@settings(max_examples=40)
@given(x=arrays(np.float64, st.lists(st.integers(1, 5), min_size=1, max_size=4).map(tuple), elements=st.floats(-4, 4)))
def test_tanh_gradient_matches_central_differences(x, float64, backend_name):
    """Beyond |x| ~ 5, tanh is within 2e-4 of +-1 and central differences lose their digits (as for sigmoid)."""
    report = check_layer(layers.Tanh(), backend.to_device(x))
    assert report.passed(1e-6), str(report)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_softmax_is_stable_for_huge_logits(dtype):
    x = backend.to_device(np.array([[1000.0, 999.0, -1000.0], [-1000.0, -1000.0, -1000.0]], dtype))
    with np.errstate(over="raise", invalid="raise"):  # exp(1000) would overflow here
        y = backend.to_numpy(layers.Softmax().forward(x))
    assert y.dtype == dtype
    e = np.exp(-1.0)
    np.testing.assert_allclose(y, [[1 / (1 + e), e / (1 + e), 0.0], [1 / 3, 1 / 3, 1 / 3]], rtol=1e-6, atol=1e-30)
    np.testing.assert_allclose(y.sum(axis=1), 1.0, rtol=1e-6)


def test_softmax_is_over_the_last_axis_and_shift_invariant():
    x = np.random.default_rng(0).normal(size=(4, 5))
    y = backend.to_numpy(activations.softmax(backend.to_device(x)))
    np.testing.assert_allclose(y.sum(axis=-1), 1.0, rtol=1e-12)
    shifted = backend.to_numpy(activations.softmax(backend.to_device(x + 123.0)))
    np.testing.assert_allclose(shifted, y, rtol=1e-12)
    log = backend.to_numpy(activations.log_softmax(backend.to_device(x)))
    np.testing.assert_allclose(log, np.log(y), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", ["softmax", "tanh"])
def test_fast_equals_plain_twin_bit_for_bit(name, dtype):
    """The same operations in the same order: the same numbers."""
    rng = np.random.default_rng(1)
    x, dy = rng.normal(0, 3, size=(2, 7, 4)).astype(dtype)
    layer = {"softmax": layers.Softmax, "tanh": layers.Tanh}[name]()
    y = backend.to_numpy(layer.forward(backend.to_device(x)))
    dx = backend.to_numpy(layer.backward(backend.to_device(dy)))
    plain_forward = getattr(plain, f"{name}_forward")
    plain_backward = getattr(plain, f"{name}_backward")
    y_plain, cache = plain_forward(x)
    np.testing.assert_array_equal(y, y_plain)
    np.testing.assert_array_equal(dx, plain_backward(dy, cache))


@pytest.mark.parametrize("name", ["softmax", "tanh"])
def test_plain_backward_matches_central_differences(name):
    rng = np.random.default_rng(2)
    x, dy = rng.normal(size=(2, 3, 4))
    forward, backward = getattr(plain, f"{name}_forward"), getattr(plain, f"{name}_backward")
    _, cache = forward(x)
    analytic = backward(dy, cache)
    numeric = np.zeros_like(x)
    h = 1e-6
    for index in np.ndindex(x.shape):
        up, down = x.copy(), x.copy()
        up[index] += h
        down[index] -= h
        numeric[index] = ((forward(up)[0] * dy).sum() - (forward(down)[0] * dy).sum()) / (2 * h)
    np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("name", ["softmax", "tanh"])
def test_forward_and_gradient_agree_with_keras(name, keras_reference, backend_name):
    """Keras computed in float64 (benchmarks/keras_reference.py; one softmax row has logits near 1000):
    a few operations per value, so a few eps apart (tolerance 1e-12)."""
    layer = {"softmax": layers.Softmax, "tanh": layers.Tanh}[name]()
    y = layer.forward(backend.to_device(keras_reference[f"{name}/x"]))
    dx = layer.backward(backend.to_device(keras_reference[f"{name}/dy"]))
    for key, value in (("y", y), ("dx", dx)):
        expected = keras_reference[f"{name}/{key}"]
        np.testing.assert_allclose(backend.to_numpy(value), expected, rtol=1e-12, atol=1e-12, err_msg=key)


def test_names_classes_and_dense_activation():
    assert isinstance(activations.get("softmax"), layers.Softmax)
    assert isinstance(activations.get("tanh"), layers.Tanh)
    assert activations.ACTIVATIONS["softmax"] is layers.Softmax and activations.ACTIVATIONS["tanh"] is layers.Tanh
    model = mc.Sequential([layers.Dense(3, activation="softmax", input_shape=(4,))], seed=0)
    out = model.predict(np.random.default_rng(0).normal(size=(5, 4)))
    assert out.shape == (5, 3)
    np.testing.assert_allclose(out.sum(axis=1), 1.0, rtol=1e-5)
    hidden = mc.Sequential([layers.Dense(4, activation="tanh", input_shape=(2,)), layers.Dense(2)], seed=0)
    assert np.all(np.abs(hidden.layers[0].forward(backend.to_device(np.full((1, 2), 50.0, np.float32)))) <= 1)
