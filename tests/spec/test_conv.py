"""Conv2D: equals the textbook formula, has the Keras output shape, and its gradients are exact."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from reference_layers import conv2d_reference

from minicnn import backend
from minicnn.gradcheck import check_layer
from minicnn.layers import Conv2D, Flatten, MaxPool2D, conv
from minicnn.layers.base import model_owns_memory

conv_cases = st.fixed_dictionaries(
    {
        "batch": st.integers(1, 3),
        "height": st.integers(1, 8),
        "width": st.integers(1, 8),
        "channels": st.integers(1, 3),
        "filters": st.integers(1, 4),
        "kernel": st.tuples(st.integers(1, 4), st.integers(1, 4)),
        "strides": st.tuples(st.integers(1, 3), st.integers(1, 3)),
        "padding": st.sampled_from(["valid", "same"]),
        "seed": st.integers(0, 2**16),
    }
)


def fits(case) -> bool:
    """'valid' needs the kernel to fit inside the image; 'same' always has an output."""
    return case["padding"] == "same" or (case["kernel"][0] <= case["height"] and case["kernel"][1] <= case["width"])


def build_conv(case):
    layer = Conv2D(case["filters"], case["kernel"], strides=case["strides"], padding=case["padding"])
    layer.build((case["height"], case["width"], case["channels"]), np.random.default_rng(case["seed"]))
    # Non-zero biases, so that a bias bug cannot hide behind Keras's zero initialisation.
    layer.params["bias"][...] = backend.to_device(np.random.default_rng(case["seed"] + 1).normal(size=case["filters"]))
    return layer


def random_input(case):
    rng = np.random.default_rng(case["seed"] + 2)
    return rng.normal(size=(case["batch"], case["height"], case["width"], case["channels"]))


@settings(max_examples=40, deadline=None)
@given(case=conv_cases.filter(fits))
def test_forward_equals_nested_loop_reference(case, float64, backend_name):
    layer = build_conv(case)
    x = random_input(case)
    expected = conv2d_reference(
        x,
        backend.to_numpy(layer.params["kernel"]),
        backend.to_numpy(layer.params["bias"]),
        case["strides"],
        case["padding"],
    )
    actual = backend.to_numpy(layer.forward(backend.to_device(x)))
    np.testing.assert_allclose(actual, expected, rtol=1e-10, atol=1e-12)


@settings(max_examples=30, deadline=None)
@given(case=conv_cases.filter(fits), activation=st.sampled_from([None, "sigmoid"]))
def test_gradients_match_central_differences(case, activation, float64, backend_name):
    layer = Conv2D(
        case["filters"], case["kernel"], strides=case["strides"], padding=case["padding"], activation=activation
    )
    layer.build((case["height"], case["width"], case["channels"]), np.random.default_rng(case["seed"]))
    layer.params["bias"][...] = backend.to_device(np.random.default_rng(case["seed"]).normal(size=case["filters"]))
    report = check_layer(layer, backend.to_device(random_input(case)))
    assert report.passed(1e-6), str(report)


@settings(max_examples=30, deadline=None)
@given(case=conv_cases.filter(fits))
def test_relu_activation_gradients_away_from_zero(case, float64):
    """ReLU has no derivative at 0: only cases whose pre-activations all stay 1e-3 away from it count."""
    linear = build_conv(case)
    x = backend.to_device(random_input(case))
    assume(float(np.abs(backend.to_numpy(linear.forward(x))).min()) > 1e-3)
    relu = Conv2D(case["filters"], case["kernel"], strides=case["strides"], padding=case["padding"], activation="relu")
    relu.build((case["height"], case["width"], case["channels"]))
    for name in ("kernel", "bias"):
        relu.params[name][...] = linear.params[name]
    report = check_layer(relu, x)
    assert report.passed(1e-6), str(report)


@given(size=st.integers(1, 400), kernel=st.integers(1, 7), stride=st.integers(1, 5))
def test_output_shape_follows_keras_formula(size, kernel, stride):
    same = Conv2D(1, kernel, strides=stride, padding="same").compute_output_shape((size, size, 1))
    assert same == (math.ceil(size / stride),) * 2 + (1,)
    if kernel <= size:
        valid = Conv2D(1, kernel, strides=stride).compute_output_shape((size, size, 1))
        assert valid == (math.floor((size - kernel) / stride) + 1,) * 2 + (1,)


@pytest.mark.parametrize("batch", [1, 5, 7])
def test_chunked_batch_equals_one_chunk(batch, float64, monkeypatch):
    """A tiny workspace forces chunks of 2 images (not dividing 5 or 7): results must not change."""
    case = dict(height=9, width=8, channels=3, filters=4, kernel=(3, 3), strides=(2, 1), padding="same", seed=3)
    x = backend.to_device(np.random.default_rng(0).normal(size=(batch, 9, 8, 3)))
    dy = backend.to_device(np.random.default_rng(1).normal(size=(batch, 5, 8, 4)))
    whole = build_conv(case)
    y_whole, dx_whole = whole.forward(x), whole.backward(dy)
    chunked = build_conv(case)
    monkeypatch.setattr(conv, "WORKSPACE_BYTES", 2 * chunked.cols_bytes_per_image())
    assert chunked.chunk_size(batch) == min(2, batch)
    y_chunked, dx_chunked = chunked.forward(x), chunked.backward(dy)
    np.testing.assert_allclose(backend.to_numpy(y_chunked), backend.to_numpy(y_whole), rtol=1e-12)
    np.testing.assert_allclose(backend.to_numpy(dx_chunked), backend.to_numpy(dx_whole), rtol=1e-12)
    for name in ("kernel", "bias"):
        np.testing.assert_allclose(
            backend.to_numpy(chunked.grads[name]), backend.to_numpy(whole.grads[name]), rtol=1e-12
        )


def test_buffers_are_reused_between_training_steps_only_when_the_model_owns_memory(float64):
    layer = build_conv(
        dict(height=6, width=6, channels=2, filters=3, kernel=(3, 3), strides=(1, 1), padding="valid", seed=0)
    )
    x = backend.to_device(np.ones((4, 6, 6, 2)))
    xp = backend.array_module()
    with model_owns_memory([layer]):
        first = layer.forward(x, training=True)
        buffers = dict(layer._buffers)
        layer.backward(layer.forward(x, training=True).copy())
        assert all(layer._buffers[name] is buffer for name, buffer in buffers.items())
        again = layer.forward(x, training=False)
        assert xp.shares_memory(again, first)  # the same memory: valid until the next forward
    direct = layer.forward(x, training=False)
    assert not xp.shares_memory(direct, first)  # called directly: a fresh array
    other = Conv2D(2, 2)
    other.build((5, 5, 3))
    workspace = {}  # a model's: one im2col workspace for all its Conv2D layers, kept from step to step
    with model_owns_memory([layer, other], workspace):
        cols = layer.cols_workspace(4)
        assert np.shares_memory(other.cols_workspace(1), cols)  # the smaller one: a view of the same buffer
        assert np.shares_memory(workspace["cols"], cols)
    assert not np.shares_memory(layer.cols_workspace(4), layer.cols_workspace(4))  # called directly: fresh


@pytest.mark.parametrize("layer_kind", ["conv", "pool"])
def test_a_smaller_batch_after_a_larger_one_uses_a_view_and_stays_correct(layer_kind, float64):
    """The last batch of an epoch is smaller: the kept buffers must serve it without stale values."""
    if layer_kind == "conv":
        layer = build_conv(
            dict(height=7, width=7, channels=2, filters=3, kernel=(3, 3), strides=(2, 2), padding="same", seed=0)
        )
    else:
        layer = MaxPool2D(2)
        layer.build((7, 7, 2))
    rng = np.random.default_rng(0)
    big = backend.to_device(rng.normal(size=(5, 7, 7, 2)))
    small = backend.to_device(rng.normal(size=(1, 7, 7, 2)))
    with model_owns_memory([Flatten(), layer]):  # not the first layer: dL/dx is computed
        layer.backward(layer.forward(big, training=True).copy())
        y = layer.forward(small, training=True).copy()
        dx = backend.to_numpy(layer.backward(backend.to_device(np.ones(y.shape)))).copy()
    fresh = copy.deepcopy(layer)
    fresh._buffers = {}
    np.testing.assert_array_equal(backend.to_numpy(y), backend.to_numpy(fresh.forward(small, training=True)))
    np.testing.assert_array_equal(dx, backend.to_numpy(fresh.backward(backend.to_device(np.ones(y.shape)))))


def test_study_layer_workspace_stays_bounded():
    """conv2 of the study at batch 32 would need 0.8 GB of im2col; the chunked layer needs at most WORKSPACE_BYTES."""
    layer = Conv2D(64, 3)
    layer.build((149, 149, 32))
    assert 32 * layer.cols_bytes_per_image() > 700 * 2**20
    assert layer.workspace_bytes(32) <= conv.WORKSPACE_BYTES


def test_first_layer_of_a_model_skips_input_gradient_but_a_direct_call_never_does(float64):
    layer = build_conv(
        dict(height=5, width=5, channels=1, filters=2, kernel=(3, 3), strides=(1, 1), padding="valid", seed=0)
    )
    x = backend.to_device(np.ones((2, 5, 5, 1)))
    with model_owns_memory([layer]):
        y = layer.forward(x)
        assert layer.backward(y.copy()) is None
        assert layer.grads["kernel"].shape == (3, 3, 1, 2)
    assert layer.backward(layer.forward(x)).shape == (2, 5, 5, 1)


def test_kernel_larger_than_input_is_a_clear_error():
    layer = Conv2D(8, 5, name="conv_big")
    with pytest.raises(ValueError, match=r"conv_big \(Conv2D\).*kernel \(5, 5\) is larger than its input 4x4"):
        layer.build((4, 4, 1))


def test_wrong_input_shape_and_dtype_name_the_layer():
    layer = Conv2D(2, 3, name="c1")
    layer.build((8, 8, 1))
    with pytest.raises(
        ValueError, match=r"c1 \(Conv2D\): expected input of shape \(None, 8, 8, 1\), got \(2, 8, 8, 3\)"
    ):
        layer.forward(backend.to_device(np.zeros((2, 8, 8, 3), np.float32)))
    with pytest.raises(TypeError, match="expected input dtype float32, got float64"):
        layer.forward(backend.to_device(np.zeros((2, 8, 8, 1))))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"padding": "full"}, "unknown padding 'full'"),
        ({"activation": "gelu"}, "unknown activation 'gelu'"),
        ({"kernel_size": 0}, "kernel_size must be a positive int"),
        ({"strides": (1, 2, 3)}, "strides must be a positive int or a pair"),
        ({"kernel_initializer": "ones"}, "unknown initializer 'ones'"),
    ],
)
def test_bad_arguments_are_rejected(kwargs, message):
    arguments = {"filters": 4, "kernel_size": 3, **kwargs}
    with pytest.raises(ValueError, match=message):
        Conv2D(**arguments)


def test_float32_stays_float32():
    layer = Conv2D(4, 3, activation="relu")
    layer.build((7, 7, 2))
    x = backend.to_device(np.random.default_rng(0).normal(size=(3, 7, 7, 2)).astype(np.float32))
    y = layer.forward(x)
    dx = layer.backward(y)
    assert y.dtype == np.float32 and dx.dtype == np.float32
    assert layer.grads["kernel"].dtype == np.float32 and layer.grads["bias"].dtype == np.float32


@settings(deadline=None, max_examples=40)
@given(
    shape=st.tuples(st.integers(1, 4), st.integers(1, 9), st.integers(1, 9), st.integers(2, 40)),
    dtype=st.sampled_from(["float32", "float64"]),
    seed=st.integers(0, 2**16),
)
def test_bias_gradient_sum_is_the_plain_sum_bit_for_bit(shape, dtype, seed):
    """sum_over_pixels (einsum, 4x faster) adds the rows in the same order as dz.sum(axis=(0, 1, 2)).

    For F >= 2 NumPy sums over the non-contiguous axes row after row, and so does einsum: the
    same additions in the same order give the same bits, so the speed-up changes no result.
    """
    rng = np.random.default_rng(seed)
    dz = (rng.standard_normal(shape) * rng.exponential(1.0, shape)).astype(dtype)
    np.testing.assert_array_equal(Conv2D.sum_over_pixels(dz), dz.sum(axis=(0, 1, 2)))


def test_bias_gradient_sum_of_a_single_filter_is_the_sum_within_rounding():
    """With F = 1 the sum runs along the contiguous axis, where NumPy adds pairwise: not the same order."""
    dz = np.random.default_rng(0).standard_normal((5, 7, 7, 1))
    np.testing.assert_allclose(Conv2D.sum_over_pixels(dz), dz.sum(axis=(0, 1, 2)), rtol=1e-12)


def test_on_a_gpu_the_bias_gradient_sum_and_the_workspace_take_the_gpu_way(backend_name, monkeypatch):
    """Off NumPy the sum is a product with ones (within rounding of dz.sum) and the workspace bound is 1 GiB.

    The NumPy case runs this through the CPU stand-in for CuPy (tests/strict_backend.py), the
    CuPy case on a GPU.
    """
    if backend_name == "numpy":
        from strict_backend import use_strict_backend

        use_strict_backend(monkeypatch)
    host = np.random.default_rng(0).standard_normal((3, 5, 4, 6))
    dz = backend.to_device(host)
    np.testing.assert_allclose(backend.to_numpy(Conv2D.sum_over_pixels(dz)), host.sum(axis=(0, 1, 2)), rtol=1e-12)
    assert conv.workspace_limit() == conv.GPU_WORKSPACE_BYTES
    layer = Conv2D(64, 3)
    layer.build((149, 149, 32))
    assert layer.chunk_size(32) == 32  # the study's largest im2col (0.8 GB) is one chunk on a GPU
