"""AveragePooling2D and GlobalAveragePooling2D: central differences, their plain twins, Keras's numbers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import minicnn as mc
from minicnn import backend, layers, plain
from minicnn.gradcheck import check_layer, numerical_gradient, relative_error
from minicnn.layers import AveragePooling2D, AvgPool2D, GlobalAveragePooling2D, GlobalAvgPool2D
from minicnn.layers.base import model_owns_memory

REFERENCE = Path(__file__).parents[1] / "fixtures" / "keras_reference.npz"

pool_cases = st.fixed_dictionaries(
    {
        "batch": st.integers(1, 3),
        "height": st.integers(1, 7),
        "width": st.integers(1, 7),
        "channels": st.integers(1, 3),
        "pool": st.tuples(st.integers(1, 3), st.integers(1, 3)),
        "strides": st.tuples(st.integers(1, 3), st.integers(1, 3)),
        "seed": st.integers(0, 2**16),
    }
).filter(lambda c: c["pool"][0] <= c["height"] and c["pool"][1] <= c["width"])


def host(array):
    return backend.to_numpy(array).copy()


def shape_of(case):
    return (case["batch"], case["height"], case["width"], case["channels"])


def build(case, kind):
    layer = AveragePooling2D(case["pool"], strides=case["strides"]) if kind == "average" else GlobalAveragePooling2D()
    layer.build((case["height"], case["width"], case["channels"]))
    return layer


@settings(max_examples=40)
@given(case=pool_cases, kind=st.sampled_from(["average", "global"]))
def test_gradients_match_central_differences(case, kind, float64, backend_name):
    x = np.random.default_rng(case["seed"]).normal(size=shape_of(case))
    report = check_layer(build(case, kind), backend.to_device(x))
    assert report.passed(1e-6), str(report)


def plain_twin(case, kind, x, dy):
    if kind == "average":
        y, cache = plain.average_pool_forward(x, case["pool"], case["strides"])
        return y, plain.average_pool_backward(dy, cache)
    y, cache = plain.global_average_pool_forward(x)
    return y, plain.global_average_pool_backward(dy, cache)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@settings(max_examples=40)
@given(case=pool_cases, kind=st.sampled_from(["average", "global"]))
def test_the_fast_layers_equal_their_plain_twins_called_directly_and_in_a_model(case, kind, dtype):
    """Within rounding: a mean of K terms added in another order differs by at most about K eps of their size.

    K = PH*PW for the window (the plain twin sums one window, the fast layer one offset at a time) and
    H*W for the global pool; the bound 4 (K + 1) eps max|x| has room to spare. In the backward each
    element receives dy / K from each of at most ceil(PH/SH) ceil(PW/SW) windows, added in another order.
    """
    previous = backend.default_dtype()
    backend.set_default_dtype(dtype)
    try:
        layer = build(case, kind)
        rng = np.random.default_rng(case["seed"])
        x = rng.normal(size=shape_of(case)).astype(dtype)
        dy = rng.normal(size=(case["batch"], *layer.output_shape)).astype(dtype)
        direct = host(layer.forward(x)), host(layer.backward(dy))
        model = mc.Sequential([layers.Identity(input_shape=x.shape[1:]), layer])
        for _ in range(2):  # the second step writes into the buffers kept from the first
            with model_owns_memory(model.layers):
                owned = host(model.forward(x)), host(model.backward(dy.copy()))
    finally:
        backend.set_default_dtype(previous)
    expected = plain_twin(case, kind, x, dy)
    terms = case["pool"][0] * case["pool"][1] if kind == "average" else case["height"] * case["width"]
    eps = np.finfo(dtype).eps
    for name, fast, fast_owned, reference, size in zip(
        ("y", "dx"), direct, owned, expected, (np.abs(x).max(), np.abs(dy).max()), strict=True
    ):
        np.testing.assert_array_equal(fast_owned, fast, err_msg=f"{name}: the fast mode must not change a bit")
        np.testing.assert_allclose(fast, reference, rtol=0, atol=4 * (terms + 1) * eps * size, err_msg=name)


@settings(max_examples=25)
@given(case=pool_cases, kind=st.sampled_from(["average", "global"]))
def test_the_plain_backwards_equal_central_differences(case, kind):
    rng = np.random.default_rng(case["seed"])
    x = rng.normal(size=shape_of(case))
    forward = plain.average_pool_forward if kind == "average" else plain.global_average_pool_forward
    arguments = (case["pool"], case["strides"]) if kind == "average" else ()
    dy = rng.normal(size=forward(x, *arguments)[0].shape)

    def loss() -> float:
        return float((forward(x, *arguments)[0] * dy).sum())

    error = relative_error(plain_twin(case, kind, x, dy)[1], numerical_gradient(loss, x))
    assert error < 1e-6


def test_a_window_shares_its_gradient_equally_and_the_dropped_edge_gets_none(float64):
    layer = AveragePooling2D(2)
    layer.build((3, 4, 1))
    x = np.arange(12.0).reshape(1, 3, 4, 1)
    np.testing.assert_array_equal(host(layer.forward(x)).ravel(), [2.5, 4.5])  # rows 0-1: (0+1+4+5)/4, (2+3+6+7)/4
    dx = host(layer.backward(np.array([4.0, 8.0]).reshape(1, 1, 2, 1)))[0, :, :, 0]
    np.testing.assert_array_equal(dx, [[1, 1, 2, 2], [1, 1, 2, 2], [0, 0, 0, 0]])


def test_the_global_pool_keeps_the_dims_when_asked(float64):
    layer = GlobalAveragePooling2D(keepdims=True)
    assert layer.build((3, 2, 4)) == (1, 1, 4)
    x = np.random.default_rng(0).normal(size=(2, 3, 2, 4))
    np.testing.assert_allclose(host(layer.forward(x)), x.mean(axis=(1, 2), keepdims=True))
    dx = host(layer.backward(np.ones((2, 1, 1, 4))))
    np.testing.assert_allclose(dx, np.full(x.shape, 1 / 6))


@pytest.fixture(scope="module")
def keras_reference():
    with np.load(REFERENCE, allow_pickle=False) as archive:
        return {key: archive[key] for key in archive.files}


CASES = {
    "global_average_pooling2d": lambda: GlobalAveragePooling2D(),
    "average_pooling2d_tiling": lambda: AveragePooling2D((2, 2), strides=(2, 2), padding="valid"),
    "average_pooling2d_overlapping": lambda: AveragePooling2D((2, 3), strides=(1, 2), padding="valid"),
}


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_outputs_and_input_gradients_agree_with_keras(case, dtype, keras_reference, backend_name):
    """Keras computed in float64 (benchmarks/keras_reference.py). A mean of at most 20 terms: in float64
    the two agree to a few eps (tolerance 1e-12); in float32 each term carries a rounding of 6e-8, so
    rtol 1e-6 and an absolute 1e-6 of the largest value for sums that nearly cancel."""
    tolerance = {"float64": 1e-12, "float32": 1e-6}[dtype]
    previous = backend.default_dtype()
    backend.set_default_dtype(dtype)
    try:
        layer = CASES[case]()
        x = keras_reference[f"{case}/x"].astype(dtype)
        layer.build(x.shape[1:])
        y = layer.forward(backend.to_device(x))
        dx = layer.backward(backend.to_device(keras_reference[f"{case}/dy"].astype(dtype)))
    finally:
        backend.set_default_dtype(previous)
    for name, value in (("y", y), ("dx", dx)):
        expected = keras_reference[f"{case}/{name}"]
        assert value.shape == expected.shape
        atol = tolerance * np.abs(expected).max()
        np.testing.assert_allclose(host(value), expected, rtol=tolerance, atol=atol, err_msg=name)


def test_keras_s_other_names_and_bad_arguments():
    assert AvgPool2D is AveragePooling2D and GlobalAvgPool2D is GlobalAveragePooling2D
    assert layers.AvgPool2D is AveragePooling2D and layers.GlobalAvgPool2D is GlobalAveragePooling2D
    with pytest.raises(ValueError, match="AveragePooling2D: padding must be one of 'valid', got 'same'"):
        AveragePooling2D(2, padding="same")
    with pytest.raises(ValueError, match="AveragePooling2D: pool_size must be a positive int or a pair of them"):
        AveragePooling2D(0)
    with pytest.raises(TypeError, match="GlobalAveragePooling2D: keepdims must be True or False, got 1"):
        GlobalAveragePooling2D(keepdims=1)
    with pytest.raises(ValueError, match=r"expects images \(H, W, C\) per sample, got shape \(5,\)"):
        GlobalAveragePooling2D().build((5,))
    with pytest.raises(ValueError, match=r"pool \(3, 3\) is larger than its input 2x2"):
        AveragePooling2D(3).build((2, 2, 1))


def test_a_model_with_the_new_layers_saves_loads_and_summarises(tmp_path):
    model = mc.Sequential(
        [
            layers.Conv2D(2, 3, activation="relu", input_shape=(9, 9, 1)),
            layers.AveragePooling2D(2),
            layers.BatchNormalization(),
            layers.GlobalAveragePooling2D(),
            layers.Dense(1, activation="sigmoid"),
        ]
    )
    assert model.relu_folds() == []  # a mean does not commute with ReLU: nothing is folded into it
    x = np.random.default_rng(0).normal(size=(4, 9, 9, 1)).astype("float32")
    loaded = mc.load_model(model.save(tmp_path / "m.npz"))
    assert [type(layer).__name__ for layer in loaded.layers] == [type(layer).__name__ for layer in model.layers]
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    lines = []
    model.summary(print_fn=lines.append)
    assert "(None, 3, 3, 2)" in lines[0] and "(None, 2)" in lines[0]
