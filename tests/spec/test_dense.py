"""Dense and Flatten: the formula, exact gradients, and Keras's layouts."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from minicnn import backend
from minicnn.gradcheck import check_layer
from minicnn.layers import Dense, Flatten

dense_cases = st.fixed_dictionaries(
    {
        "batch": st.integers(1, 5),
        "inputs": st.integers(1, 12),
        "units": st.integers(1, 6),
        "seed": st.integers(0, 2**16),
    }
)


def build_dense(case, activation=None):
    layer = Dense(case["units"], activation=activation)
    layer.build((case["inputs"],), np.random.default_rng(case["seed"]))
    layer.params["bias"][...] = backend.to_device(np.random.default_rng(case["seed"]).normal(size=case["units"]))
    return layer


def random_input(case):
    return np.random.default_rng(case["seed"] + 1).normal(size=(case["batch"], case["inputs"]))


@settings(max_examples=40)
@given(case=dense_cases)
def test_forward_is_x_times_kernel_plus_bias(case, float64, backend_name):
    layer = build_dense(case)
    x = random_input(case)
    kernel, bias = backend.to_numpy(layer.params["kernel"]), backend.to_numpy(layer.params["bias"])
    expected = np.array(
        [
            [sum(x[n, i] * kernel[i, o] for i in range(case["inputs"])) + bias[o] for o in range(case["units"])]
            for n in range(case["batch"])
        ]
    )
    # A sum of terms of order 1 may cancel to nearly 0 (hypothesis found 1.7e-5): judge the rounding
    # against the size of the terms added, not of the result.
    scale = (np.abs(x) @ np.abs(kernel) + np.abs(bias)).max()
    np.testing.assert_allclose(
        backend.to_numpy(layer.forward(backend.to_device(x))), expected, rtol=1e-12, atol=1e-14 * scale
    )


@settings(max_examples=40)
@given(case=dense_cases, activation=st.sampled_from([None, "sigmoid", "linear"]))
def test_gradients_match_central_differences(case, activation, float64, backend_name):
    report = check_layer(build_dense(case, activation), backend.to_device(random_input(case)))
    assert report.passed(1e-6), str(report)


@settings(max_examples=40)
@given(case=dense_cases)
def test_relu_gradients_away_from_zero(case, float64):
    linear = build_dense(case)
    x = backend.to_device(random_input(case))
    assume(float(np.abs(backend.to_numpy(linear.forward(x))).min()) > 1e-3)
    relu = build_dense(case, "relu")
    report = check_layer(relu, x)
    assert report.passed(1e-6), str(report)


@settings(max_examples=30)
@given(shape=st.lists(st.integers(1, 4), min_size=1, max_size=3), batch=st.integers(1, 3))
def test_flatten_is_row_major_and_gradient_reshapes_back(shape, batch, float64):
    layer = Flatten()
    layer.build(tuple(shape))
    x = np.arange(batch * np.prod(shape), dtype=np.float64).reshape(batch, *shape)
    y = backend.to_numpy(layer.forward(backend.to_device(x)))
    np.testing.assert_array_equal(y, x.reshape(batch, -1))  # NHWC flattened in C order, like Keras
    report = check_layer(layer, backend.to_device(x))
    assert report.passed(1e-6), str(report)


def test_kernel_layout_is_keras_in_out():
    layer = Dense(512)
    layer.build((32768,))
    assert layer.params["kernel"].shape == (32768, 512) and layer.params["bias"].shape == (512,)
    assert layer.count_params() == 16_777_728


def test_dense_on_images_asks_for_flatten():
    with pytest.raises(ValueError, match="put a Flatten layer before it"):
        Dense(4, name="head").build((8, 8, 1))


def test_glorot_uniform_limits_and_zero_bias():
    layer = Dense(300)
    layer.build((200,), np.random.default_rng(0))
    kernel = backend.to_numpy(layer.params["kernel"])
    limit = np.sqrt(6 / (200 + 300))
    assert np.abs(kernel).max() <= limit and np.abs(kernel).max() > 0.95 * limit
    assert np.all(backend.to_numpy(layer.params["bias"]) == 0)


def test_writing_into_params_changes_the_layer():
    layer = Dense(2)
    layer.build((3,))
    layer.params["kernel"][...] = 0
    layer.params["bias"][...] = backend.to_device(np.array([1.0, -2.0], np.float32))
    y = backend.to_numpy(layer.forward(backend.to_device(np.ones((1, 3), np.float32))))
    np.testing.assert_array_equal(y, [[1.0, -2.0]])
