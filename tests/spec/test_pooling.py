"""MaxPool2D: equals the textbook max, drops odd edges like Keras, routes each gradient to one winner."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from reference_layers import maxpool_reference
from strategies import distinct_values

from minicnn import backend
from minicnn.gradcheck import check_layer
from minicnn.layers import MaxPool2D

pool_cases = st.fixed_dictionaries(
    {
        "batch": st.integers(1, 3),
        "height": st.integers(1, 9),
        "width": st.integers(1, 9),
        "channels": st.integers(1, 3),
        "pool": st.tuples(st.integers(1, 3), st.integers(1, 3)),
        "strides": st.tuples(st.integers(1, 3), st.integers(1, 3)),
    }
).filter(lambda c: c["pool"][0] <= c["height"] and c["pool"][1] <= c["width"])


def build_pool(case):
    layer = MaxPool2D(case["pool"], strides=case["strides"])
    layer.build((case["height"], case["width"], case["channels"]))
    return layer


def shape_of(case):
    return (case["batch"], case["height"], case["width"], case["channels"])


@settings(max_examples=50)
@given(data=st.data(), case=pool_cases)
def test_forward_equals_nested_loop_reference(data, case, float64, backend_name):
    x = data.draw(distinct_values(shape_of(case)))
    layer = build_pool(case)
    actual = backend.to_numpy(layer.forward(backend.to_device(x)))
    np.testing.assert_array_equal(actual, maxpool_reference(x, case["pool"], case["strides"]))


@settings(max_examples=40)
@given(data=st.data(), case=pool_cases)
def test_gradients_match_central_differences(data, case, float64, backend_name):
    """Values are drawn at least 1e-3 apart, so a 1e-6 nudge never changes which element wins."""
    x = data.draw(distinct_values(shape_of(case)))
    report = check_layer(build_pool(case), backend.to_device(x))
    assert report.passed(1e-6), str(report)


def test_ties_send_the_gradient_to_one_element_only(float64):
    """A window of four equal values passes its gradient to the first (top-left) one, once."""
    layer = MaxPool2D(2)
    layer.build((2, 4, 1))
    x = np.array([[5.0, 5.0, 1.0, 7.0], [5.0, 5.0, 7.0, 7.0]]).reshape(1, 2, 4, 1)
    y = layer.forward(backend.to_device(x))
    np.testing.assert_array_equal(backend.to_numpy(y).ravel(), [5.0, 7.0])
    dx = backend.to_numpy(layer.backward(backend.to_device(np.array([2.0, 3.0]).reshape(1, 1, 2, 1))))
    expected = np.array([[2.0, 0.0, 0.0, 3.0], [0.0, 0.0, 0.0, 0.0]]).reshape(1, 2, 4, 1)
    np.testing.assert_array_equal(dx, expected)
    assert dx.sum() == 5.0  # the total gradient is preserved: nothing counted twice


def test_overlapping_windows_accumulate_gradient(float64):
    """With stride 1 the centre of a 3x3 image wins all four 2x2 windows and gets all four gradients."""
    layer = MaxPool2D(2, strides=1)
    layer.build((3, 3, 1))
    x = np.zeros((1, 3, 3, 1))
    x[0, 1, 1, 0] = 9.0
    layer.forward(backend.to_device(x))
    dx = backend.to_numpy(layer.backward(backend.to_device(np.ones((1, 2, 2, 1)))))
    assert dx[0, 1, 1, 0] == 4.0 and dx.sum() == 4.0


def test_odd_rows_and_columns_are_dropped_like_keras():
    layer = MaxPool2D(2)
    assert layer.compute_output_shape((299, 298, 32)) == (149, 149, 32)
    layer.build((3, 3, 1))
    x = backend.to_device(np.arange(9, dtype=np.float32).reshape(1, 3, 3, 1))
    assert float(layer.forward(x).ravel()[0]) == 4.0  # the last row and column (values 2, 5, 6, 7, 8) are unused


def test_pool_larger_than_input_is_a_clear_error():
    with pytest.raises(ValueError, match=r"max_pool2d \(MaxPool2D\): pool \(3, 3\) is larger than its input 2x2"):
        MaxPool2D(3).build((2, 2, 4))
