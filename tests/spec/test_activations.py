"""ReLU and Sigmoid: values, stability at large |x|, and exact gradients."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from minicnn import backend, layers
from minicnn.gradcheck import check_layer
from minicnn.layers import activations

shapes = st.lists(st.integers(1, 5), min_size=1, max_size=4).map(tuple)
away_from_zero = st.floats(0.01, 10.0).flatmap(lambda v: st.sampled_from([v, -v]))


@settings(max_examples=40)
@given(x=arrays(np.float64, shapes, elements=away_from_zero))
def test_relu_gradient_away_from_zero(x, float64, backend_name):
    report = check_layer(layers.ReLU(), backend.to_device(x))
    assert report.passed(1e-6), str(report)


@settings(max_examples=40)
@given(x=arrays(np.float64, shapes, elements=st.floats(-6, 6)))
def test_sigmoid_gradient(x, float64, backend_name):
    """Beyond |x| ~ 8, sigmoid(x) is within 3e-4 of 0 or 1 and central differences lose their
    digits to cancellation, so the numerical side (not the layer) stops being accurate to 1e-6."""
    report = check_layer(layers.Sigmoid(), backend.to_device(x))
    assert report.passed(1e-6), str(report)


def test_relu_values():
    y = layers.ReLU().forward(backend.to_device(np.array([-2.0, 0.0, 3.0], np.float32)))
    np.testing.assert_array_equal(backend.to_numpy(y), [0.0, 0.0, 3.0])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_sigmoid_is_stable_for_large_inputs(dtype):
    x = backend.to_device(np.array([-1000.0, -100.0, 0.0, 100.0, 1000.0], dtype))
    with np.errstate(over="raise", invalid="raise"):  # an overflow or inf/inf would raise here
        y = backend.to_numpy(layers.Sigmoid().forward(x))
    assert y.dtype == dtype
    np.testing.assert_allclose(y, [0.0, 1 / (1 + np.exp(100.0)), 0.5, 1.0, 1.0], rtol=1e-6, atol=1e-30)
    assert np.all(np.isfinite(y))


def test_unknown_activation_lists_the_known_ones():
    with pytest.raises(ValueError, match="unknown activation 'gelu'; choose one of 'linear', 'relu', 'sigmoid'"):
        activations.get("gelu")


def test_softmax_and_tanh_are_known_by_keras_s_names():
    assert isinstance(activations.get("softmax"), layers.Softmax)
    assert isinstance(activations.get("tanh"), layers.Tanh)
    with pytest.raises(ValueError, match="'tanh', 'softmax' or None"):
        activations.get("gelu")
